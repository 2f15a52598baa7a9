"""Separating images into folders by what was found: MegaDetector's "separate into folders".

After a season's run, people want the empty frames apart from the animals (and from people, for
privacy). Each image goes to ``DIR/<classes found>/<its relative path>`` at a threshold:
``animal``, ``person``, ``animal_person`` (several classes, joined in category order), ``empty``
or ``failed``. The originals are never moved: the sorted tree holds symbolic links (default),
hard links or copies. The results file is untrusted input and ``DIR`` may hold what someone else
put there, so: every original is read inside the images folder (resolved, so neither ``..``, an
absolute name nor a link leads out), ``DIR`` may not lie inside the images folder, nothing is
written through a symbolic link, no existing file is replaced, an image an earlier sort (at another
threshold) put into another class folder is refused rather than left in two, hard links are only
tried on the images' own disk, and every entry is checked before the first file is written (a
refusal sorts nothing). Class names are reduced to safe folder names.

With ``by_episode`` a burst stays together: every frame of an episode (``ssd.camtrap.episodes``)
goes to the folder of the classes seen in any of its frames, so the empty frames of a visit sit
beside the ones showing the animal; a frame that could not be read still goes to ``failed``.
Thresholds may differ per class (a ``ShownFilter`` with ``per_class``), as MegaDetector's
"separate into folders" allows.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ssd.base.safe_paths import (InsideResolver, PathRefused, existing_link, is_inside, open_folder, place,
                                 same_placement)
from ssd.base.text import name_on_disk, terminal_safe
from ssd.camtrap.megadetector import ResultsError, Threshold, image_state, in_category_order, shown_detections
from ssd.camtrap.rebase import CLI_TERMS, recorded_folder_hint, refuse_windows_names
from ssd.camtrap.species import SPECIES_THRESHOLD, species_names, top_classification
from ssd.inference.filtering import ShownFilter

MODES = ("symlink", "hardlink", "copy")


#: The class folder that ``by_species`` divides (MegaDetector's: its "separate into folders" makes
#: species folders only for images whose only class is ``animal``), and the folders it adds beside
#: the species': no species at the species threshold, several.
ANIMAL, UNCLASSIFIED, MULTIPLE = "animal", "unclassified", "multiple"


@dataclass(frozen=True)
class BySpecies:
    """Sorting ``animal/`` into species folders: the file's species classes and the classification
    score at which a detection's top species counts."""

    names: Dict[str, str]
    threshold: float = SPECIES_THRESHOLD

    @classmethod
    def of(cls, doc: Dict[str, Any], threshold: float = SPECIES_THRESHOLD) -> "BySpecies":
        """``ResultsError`` for a file without species classes: its animals have no species to sort by."""
        names = species_names(doc)
        if names is None:
            raise ResultsError("these results hold no species classifications (no classification_categories): "
                               "sort them by class (nothing was sorted)")
        return cls(names, threshold)


def folder_for(entry: Dict[str, Any], names: Dict[str, str], threshold: Threshold, hide_suspect: bool = True,
               by_species: Optional[BySpecies] = None) -> str:
    """The folder an image belongs in at ``threshold`` (a number or a ``ShownFilter``); ``by_species``:
    an image whose only class is ``animal`` goes to ``animal/<species>`` (``species_folder``)."""
    state = image_state(entry, threshold, hide_suspect, names)
    if state != "detections":
        return state
    shown = shown_detections(entry, threshold, hide_suspect, names)
    folder = class_folder({names.get(d["category"], d["category"]) for d in shown}, names)
    if by_species is None or folder != ANIMAL:
        return folder
    return f"{ANIMAL}/{species_folder(shown, by_species)}"


def species_folder(shown: List[Dict[str, Any]], by_species: BySpecies) -> str:
    """The species folder of an image's detections shown: the one top species scoring at least the
    species threshold, as a safe folder name; ``multiple`` for several, ``unclassified`` for none
    (as MegaDetector's "separate into folders" names them)."""
    found = set()
    for d in shown:
        top = top_classification(d, by_species.names)
        if top is not None and top[1] >= by_species.threshold:
            found.add(top[0])
    if not found:
        return UNCLASSIFIED
    return _safe(found.pop(), SPECIES_STATE_FOLDERS) if len(found) == 1 else MULTIPLE


def class_folder(found: Iterable[str], names: Dict[str, str]) -> str:
    """``animal_person``: the class names found, in category order, as one safe folder name."""
    ordered = in_category_order(found, list(names.values()))
    return "_".join(_safe(c) for c in ordered) if ordered else "empty"


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


#: The folders sort makes for states, not classes: a class of such a name gets ``class-NAME`` instead, or its
#: photos would be mixed with those where nothing was seen (compared without case: one folder on most disks).
STATE_FOLDERS = ("empty", "failed")
SPECIES_STATE_FOLDERS = (UNCLASSIFIED, MULTIPLE)     # beside the species folders under animal/


def _safe(name: str, reserved: Tuple[str, ...] = STATE_FOLDERS) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip(".-")
    if cleaned.lower() in reserved:
        return f"class-{cleaned}"
    return cleaned or "class"


@dataclass
class _Placement:
    """One image of a planned sort: its resolved original and where its link or copy goes."""

    folder: str                          # its class folder, ``animal/red-deer`` by species
    src: Optional[str]                   # None: the original is missing (counted, not sorted)
    rel: List[str]                       # its path below the images folder
    done: bool = False                   # already there from an earlier sort of the same kind

    @property
    def parts(self) -> List[str]:
        """The destination below the target: the class folder's parts first, then ``rel``."""
        return self.folder.split("/") + self.rel


def sort_into_folders(doc: Dict[str, Any], image_root: Optional[str], into: str, threshold: Threshold,
                      mode: str = "symlink", hide_suspect: bool = True, by_episode: bool = False,
                      missing: Optional[List[str]] = None, terms: Tuple[str, str] = CLI_TERMS,
                      by_species: Optional[BySpecies] = None) -> Dict[str, int]:
    """Link or copy every image into its class folder under ``into``; returns images per folder.

    ``image_root`` is the folder the results' paths start from; every original is read inside it
    (absolute names too, by resolved path). Every entry is checked before anything is written, so
    a refusal (``ResultsError``) sorts nothing. Missing originals are counted under ``missing``.
    ``by_episode``: each image goes where its episode goes (see the module's docstring).
    ``missing``, when given, gets the names of the originals not found. None found at all is a
    refusal, not an empty sort: the images folder is the wrong one (results saved away from the
    photos are looked up beside the file), and the message names the folder the run recorded.
    ``terms``: the path prefix and images folder settings as the caller names them (flags, or the
    page's fields), for the refusals that ask for them. ``by_species``: ``animal/`` divided into
    species folders (``folder_for``); not by episode, whose frames may show different species.
    """
    if mode not in MODES:
        raise ResultsError(f"unknown sort mode {mode!r}; one of {', '.join(MODES)}")
    if by_species is not None and by_episode:
        raise ResultsError("sort by species or by episode, not both: an episode's frames may show different "
                           "species (nothing was sorted)")
    plan = plan_sort(doc, image_root, into, threshold, mode, hide_suspect, by_episode, terms, by_species)
    lost = ["/".join(p.rel) for p in plan if p.src is None]
    if plan and len(lost) == len(plan):
        raise ResultsError(f"none of the {len(plan)} image(s) of the results is in the images folder '{image_root}' "
                           f"(e.g. '{terminal_safe(lost[0])}'){recorded_folder_hint(doc, image_root, terms[1])} "
                           "(nothing was sorted)")
    if missing is not None:
        missing.extend(lost)
    return _carry_out(plan, os.path.realpath(into), mode)


def plan_sort(doc: Dict[str, Any], image_root: Optional[str], into: str, threshold: Threshold,
              mode: str = "symlink", hide_suspect: bool = True, by_episode: bool = False,
              terms: Tuple[str, str] = CLI_TERMS, by_species: Optional[BySpecies] = None) -> List[_Placement]:
    """Where each image goes, checked: originals inside ``image_root``, a target outside it, no link
    on the way, no file already there (``ResultsError`` naming the first problem; nothing written)."""
    if not image_root or not os.path.isdir(image_root):
        raise ResultsError(f"the images folder {image_root!r} is not a folder: give the folder the results' "
                           "paths start from (nothing was sorted)")
    refuse_windows_names(doc, image_root, terms)
    root, target = os.path.realpath(image_root), os.path.realpath(into)
    if is_inside(root, target):
        raise ResultsError(f"'{into}' is inside the images folder '{image_root}': sort into a folder outside "
                           "it, so that no original can be touched (nothing was sorted)")
    if mode == "hardlink":
        _check_same_disk(root, target, into)
    names = doc.get("detection_categories") or {}
    folders = episode_folders(doc, threshold, hide_suspect) if by_episode else None
    plan: List[_Placement] = []
    seen: Dict[Tuple[str, ...], str] = {}
    checks = _TargetChecks(target, into, _class_folders(target))
    resolver = InsideResolver(root)
    for k, entry in enumerate(doc.get("images", [])):
        file = entry["file"]
        rel, src = _original(resolver, file, image_root)
        folder = folders[k] if folders is not None else folder_for(entry, names, threshold, hide_suspect, by_species)
        p = _Placement(folder, src, rel, False)
        if p.src is not None:
            _check_destination(p, checks, mode, seen.setdefault(tuple(p.parts), file), file)
            _check_not_sorted_elsewhere(p, checks, file)
        plan.append(p)
    return plan


def _original(resolver: InsideResolver, file: str, image_root: str) -> Tuple[List[str], Optional[str]]:
    """``file``'s components below the images folder and its resolved path (None: missing);
    ``ResultsError`` when it lies outside. A name that is not UTF-8 is tried in its escaped form."""
    try:
        rel, src = resolver.resolve(file)
        found = os.path.isfile(src)
        if not found and name_on_disk(file) != file:
            rel, src = resolver.resolve(name_on_disk(file))
            found = os.path.isfile(src)
    except PathRefused as why:
        hint = (" (results written on another machine: give the folder the names begin with there as the "
                "path prefix, --path-prefix)" if file.startswith("/") else "")
        raise ResultsError(f"'{file}' {why}: it lies outside the images folder '{image_root}'{hint}; "
                           "refusing to sort this file (nothing was sorted)") from None
    return rel, (src if found else None)


class _TargetChecks:
    """What is already in the target folder, looked up once per destination folder.

    Why: a season's images share few folders; checking each image's folders for links again (an
    ``lstat`` per component) dominated planning a sort. Nothing is written while a plan is made,
    so a folder's answer stays true for the whole plan.
    """

    def __init__(self, target: str, into: str, earlier: List[str]) -> None:
        self.target, self.into, self.earlier = target, into, earlier
        self._links: Dict[Tuple[str, ...], str] = {}
        self._folders: Dict[Tuple[str, ...], bool] = {}

    def link_on_way(self, folders: List[str]) -> str:
        """``existing_link`` below the target, cached per folder."""
        key = tuple(folders)
        if key not in self._links:
            self._links[key] = existing_link(self.target, folders)
        return self._links[key]

    def folder_exists(self, folders: List[str]) -> bool:
        key = tuple(folders)
        if key not in self._folders:
            self._folders[key] = os.path.isdir(os.path.join(self.target, *folders))
        return self._folders[key]


def _check_same_disk(root: str, target: str, into: str) -> None:
    """``ResultsError`` when hard links cannot be made: the target (or the folder it will be made
    in) lies on another file system than the images, where the first link would fail mid-sort."""
    existing = target
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if os.stat(existing).st_dev != os.stat(root).st_dev:
        raise ResultsError(f"'{into}' is on another disk than the images: hard links cannot cross disks; use "
                           "--mode copy or --mode symlink, or sort into a folder on the images' disk "
                           "(nothing was sorted)")


def _class_folders(target: str) -> List[str]:
    """The class folders an earlier sort made in ``target`` (none when it does not exist yet), with
    each of ``animal``'s folders (``animal/red-deer`` of a sort by species; a sort by class's camera
    folders are there too, and never hold an image's own path again)."""
    try:
        tops = sorted(e.name for e in os.scandir(target) if e.is_dir(follow_symlinks=False))
        below = sorted(f"{ANIMAL}/{e.name}" for e in os.scandir(os.path.join(target, ANIMAL))
                       if e.is_dir(follow_symlinks=False)) if ANIMAL in tops else []
    except OSError:
        return []
    return tops + below


def _check_not_sorted_elsewhere(p: _Placement, checks: _TargetChecks, file: str) -> None:
    """``ResultsError`` when an earlier sort (at another threshold, say) put this image into another
    class folder: sorting on would leave it in two folders, and a count of either would be wrong."""
    for other in checks.earlier:
        if other == p.folder or not checks.folder_exists(other.split("/") + p.rel[:-1]):
            continue
        if os.path.lexists(os.path.join(checks.target, *other.split("/"), *p.rel)):
            raise ResultsError(f"'{file}' is already in '{os.path.join(checks.into, other)}' from an earlier sort, "
                               f"and now belongs in '{p.folder}': sort into a new folder, or delete '{checks.into}' "
                               "(it holds only links or copies) and sort again (nothing was sorted)")


def _check_destination(p: _Placement, checks: _TargetChecks, mode: str, first: str, file: str) -> None:
    """``ResultsError`` when ``p``'s destination goes through a link, exists (unless already the same
    link), or is taken by another entry of the same file."""
    if first != file:
        raise ResultsError(f"'{file}' and '{first}' would both be sorted to {'/'.join(p.parts)} "
                           "(nothing was sorted)")
    link = checks.link_on_way(p.parts[:-1])
    if link:
        raise ResultsError(f"'{link}' is a symbolic link or not a folder: sort never writes through links; "
                           f"sort into a new folder (nothing was sorted)")
    if not checks.folder_exists(p.parts[:-1]):
        return                           # a new folder: nothing in it yet
    dest = os.path.join(checks.target, *p.parts)
    if os.path.lexists(dest):
        if not same_placement(p.src, dest, mode):
            raise ResultsError(f"'{os.path.join(checks.into, *p.parts)}' already exists: sort never replaces a "
                               "file; sort into a new folder (nothing was sorted)")
        p.done = True


def _carry_out(plan: List[_Placement], target: str, mode: str) -> Dict[str, int]:
    """Make the links or copies a checked plan lists (new files only, never through a link)."""
    counts: Dict[str, int] = {}
    os.makedirs(target, exist_ok=True)
    base = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    folders = _OpenFolders(base)
    try:
        for k, p in enumerate(plan):
            if p.src is None:
                counts["missing"] = counts.get("missing", 0) + 1
                continue
            if not p.done:
                _place_one(p, folders, mode, k, len(plan))
            counts[p.folder] = counts.get(p.folder, 0) + 1
    finally:
        folders.close()
        os.close(base)
    return counts


class _OpenFolders:
    """Descriptors of the destination folders last written to, each opened once (``open_folder``).

    Why: a season's images come in walk order, so consecutive images of a class go to the same
    folder; opening it again for each (a ``mkdir`` and an ``open`` per path component) was a third
    of a 200,000-image sort. A descriptor stays the folder it was opened as, so holding it is as
    safe as reopening it: a link put in its place later is not followed.
    """

    LIMIT = 64                           # open descriptors at most: one per class folder in use, and spare

    def __init__(self, base: int) -> None:
        self._base = base
        self._fds: Dict[Tuple[str, ...], int] = {}

    def get(self, parts: List[str]) -> int:
        key = tuple(parts)
        fd = self._fds.pop(key, None)
        if fd is None:
            fd = open_folder(self._base, parts)
            if len(self._fds) >= self.LIMIT:
                os.close(self._fds.pop(next(iter(self._fds))))
        self._fds[key] = fd              # the most recently used last
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _place_one(p: _Placement, folders: _OpenFolders, mode: str, k: int, total: int) -> None:
    try:
        place(p.src, folders.get(p.parts[:-1]), p.parts[-1], mode)
    except (OSError, PathRefused) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ResultsError(f"sorting stopped at {'/'.join(p.parts)} ({why}) after {k} of {total} "
                           "images; what was sorted stays") from None
