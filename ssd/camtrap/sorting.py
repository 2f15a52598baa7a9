"""Separating images into folders by what was found: MegaDetector's "separate into folders".

After a season's run, people want the empty frames apart from the animals (and from people, for
privacy). Each image goes to ``DIR/<classes found>/<its relative path>`` at a threshold:
``animal``, ``person``, ``animal_person`` (several classes, joined in category order), ``empty``
or ``failed``. The originals are never moved: the sorted tree holds symbolic links (default),
hard links or copies. The results file is untrusted input, so a ``file`` that would land outside
``DIR`` (``..``) is refused, and class names are reduced to safe folder names.
"""
from __future__ import annotations

import os
import re
import shutil
from typing import Any, Dict, Optional

from ssd.camtrap.megadetector import ResultsError, image_state, shown_detections

MODES = ("symlink", "hardlink", "copy")


def folder_for(entry: Dict[str, Any], names: Dict[str, str], threshold: float, hide_suspect: bool = True) -> str:
    """The folder an image belongs in at ``threshold``."""
    state = image_state(entry, threshold, hide_suspect)
    if state != "detections":
        return state
    found = {d["category"] for d in shown_detections(entry, threshold, hide_suspect)}
    order = list(names)
    return "_".join(_safe(names.get(c, c)) for c in sorted(found, key=lambda c: (order.index(c) if c in order
                                                                                  else len(order), c)))


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip(".-")
    return cleaned or "class"


def _inside(file: str) -> str:
    """``file`` as a relative path that stays inside the target folder (``ResultsError`` if not)."""
    rel = os.path.normpath(file.replace("\\", "/").lstrip("/"))
    if os.path.splitdrive(rel)[0] or rel == "." or rel.startswith("..") or os.path.isabs(rel):
        raise ResultsError(f"'{file}' would be written outside the target folder; refusing to sort this file")
    return rel


def sort_into_folders(doc: Dict[str, Any], image_root: Optional[str], into: str, threshold: float,
                      mode: str = "symlink", hide_suspect: bool = True) -> Dict[str, int]:
    """Link or copy every image into its class folder under ``into``; returns images per folder.

    ``image_root`` is the folder the results' relative paths start from (absolute paths are used
    as they are). Missing originals are counted under ``missing`` and not linked.
    """
    if mode not in MODES:
        raise ResultsError(f"unknown sort mode {mode!r}; one of {', '.join(MODES)}")
    names = doc.get("detection_categories") or {}
    counts: Dict[str, int] = {}
    into_abs = os.path.abspath(into)
    for entry in doc.get("images", []):
        folder = folder_for(entry, names, threshold, hide_suspect)
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
