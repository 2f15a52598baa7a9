"""Separating images into folders by what was found: MegaDetector's "separate into folders".

After a season's run, people want the empty frames apart from the animals (and from people, for
privacy). Each image goes to ``DIR/<classes found>/<its relative path>`` at a threshold:
``animal``, ``person``, ``animal_person`` (several classes, joined in category order), ``empty``
or ``failed``. The originals are never moved: the sorted tree holds symbolic links (default),
hard links or copies. The results file is untrusted input, so a ``file`` that would land outside
``DIR`` (``..``) is refused, and class names are reduced to safe folder names.

With ``by_episode`` a burst stays together: every frame of an episode (``ssd.camtrap.episodes``)
goes to the folder of the classes seen in any of its frames, so the empty frames of a visit sit
beside the ones showing the animal; a frame that could not be read still goes to ``failed``.
Thresholds may differ per class (a ``ShownFilter`` with ``per_class``), as MegaDetector's
"separate into folders" allows.
"""
from __future__ import annotations

import os
import re
import shutil
from typing import Any, Dict, Iterable, List, Optional

from ssd.camtrap.megadetector import ResultsError, Threshold, image_state, shown_detections
from ssd.inference.filtering import ShownFilter

MODES = ("symlink", "hardlink", "copy")


def folder_for(entry: Dict[str, Any], names: Dict[str, str], threshold: Threshold, hide_suspect: bool = True) -> str:
    """The folder an image belongs in at ``threshold`` (a number or a ``ShownFilter``)."""
    state = image_state(entry, threshold, hide_suspect, names)
    if state != "detections":
        return state
    found = {names.get(d["category"], d["category"]) for d in shown_detections(entry, threshold, hide_suspect, names)}
    return class_folder(found, names)


def class_folder(found: Iterable[str], names: Dict[str, str]) -> str:
    """``animal_person``: the class names found, in category order, as one safe folder name."""
    found = set(found)
    if not found:
        return "empty"
    order = list(names.values())
    return "_".join(_safe(c) for c in sorted(found, key=lambda c: (order.index(c) if c in order else len(order), c)))


def episode_folders(doc: Dict[str, Any], threshold: Threshold, hide_suspect: bool = True) -> List[str]:
    """Per entry, the folder of its episode: the classes seen in any frame ("failed" frames stay apart)."""
    from ssd.camtrap.episodes import episode_classes, episode_groups

    names = doc.get("detection_categories") or {}
    shown = ShownFilter.at(threshold, hide_suspect)
    out = [""] * len(doc.get("images", []))
    for members in episode_groups(doc).values():
        folder = class_folder(episode_classes(doc, members, shown), names)
        for k in members:
            failed = image_state(doc["images"][k], shown, names=names) == "failed"
            out[k] = "failed" if failed else folder
    return out


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip(".-")
    return cleaned or "class"


def _inside(file: str) -> str:
    """``file`` as a relative path that stays inside the target folder (``ResultsError`` if not)."""
    rel = os.path.normpath(file.replace("\\", "/").lstrip("/"))
    if os.path.splitdrive(rel)[0] or rel == "." or rel.startswith("..") or os.path.isabs(rel):
        raise ResultsError(f"'{file}' would be written outside the target folder; refusing to sort this file")
    return rel


def sort_into_folders(doc: Dict[str, Any], image_root: Optional[str], into: str, threshold: Threshold,
                      mode: str = "symlink", hide_suspect: bool = True, by_episode: bool = False) -> Dict[str, int]:
    """Link or copy every image into its class folder under ``into``; returns images per folder.

    ``image_root`` is the folder the results' relative paths start from (absolute paths are used
    as they are). Missing originals are counted under ``missing`` and not linked. ``by_episode``:
    each image goes where its episode goes (see the module's docstring).
    """
    if mode not in MODES:
        raise ResultsError(f"unknown sort mode {mode!r}; one of {', '.join(MODES)}")
    names = doc.get("detection_categories") or {}
    counts: Dict[str, int] = {}
    into_abs = os.path.abspath(into)
    folders = episode_folders(doc, threshold, hide_suspect) if by_episode else None
    for k, entry in enumerate(doc.get("images", [])):
        folder = folders[k] if folders is not None else folder_for(entry, names, threshold, hide_suspect)
        file = entry["file"]
        src = file if os.path.isabs(file) or not image_root else os.path.join(image_root, file)
        dest = os.path.join(into_abs, folder, _inside(file))
        if not os.path.isfile(src):
            counts["missing"] = counts.get("missing", 0) + 1
            continue
        if os.path.abspath(src) == os.path.abspath(dest):
            raise ResultsError(f"'{into}' is the images' own folder; sort into a new folder")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.lexists(dest):
            os.unlink(dest)                      # a re-sort at another threshold replaces old links
        if mode == "symlink":
            os.symlink(os.path.abspath(src), dest)
        elif mode == "hardlink":
            os.link(src, dest)
        else:
            shutil.copy2(src, dest)
        counts[folder] = counts.get(folder, 0) + 1
    return counts
