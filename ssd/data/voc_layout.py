"""Where a Pascal VOC folder keeps its XMLs, its images and its split files.

Three layouts are met in practice, and one reader serves them all:

* the VOC2007/2012 devkit (``VOCdevkit/VOC2007``) and CVAT's "PASCAL VOC 1.1" export:
  ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/*.txt``;
* LabelImg saving beside the pictures: ``photo.jpg`` and ``photo.xml`` in one folder;
* LabelImg with a separate save folder: ``images/`` and ``labels/`` (or ``xml/``) side by side.

The split files decide the split when they name one (``split_ids``); otherwise the loader draws it.
"""
from __future__ import annotations

import os
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

#: Subfolders that hold the XMLs when the dataset folder itself does not (compared without case).
XML_FOLDERS = ("annotations", "labels", "xml", "xmls")
#: Subfolders that hold the pictures (``JPEGImages`` is VOC's and CVAT's; compared without case).
IMAGE_FOLDERS = ("jpegimages", "images", "imgs", "pictures", "photos")
SPLIT_FOLDER = os.path.join("ImageSets", "Main")
#: ``split_ids``'s "how" when an annotated test set validates (it is then the set's test split too).
TEST_VALIDATES = "ImageSets/Main: trainval trains, test validates"
_PEEK = 2048
_PROBE_FILES = 5     # XMLs looked into before a folder is judged not to hold VOC annotations
_PROBE_NAMES = 50    # file names tried in each candidate image folder


def find_xml_folder(path: str) -> Optional[str]:
    """The folder of ``path``'s VOC annotation XMLs, or None.

    ``Annotations/`` first (VOC, CVAT), then ``path`` itself (LabelImg beside the pictures), then a
    ``labels/``-like subfolder (LabelImg's separate save folder). An annotation folder may keep its
    XMLs in subfolders (``Annotations/cam1/x.xml``); ``path`` itself is judged by its own files, since
    its subfolders may be other sets."""
    subs = _subfolders(path)
    first = [subs[n] for n in XML_FOLDERS[:1] if n in subs]
    rest = [subs[n] for n in XML_FOLDERS[1:] if n in subs]
    for folder in first + [path] + rest:
        if holds_voc_xml(folder, walk=folder != path):
            return folder
    return None


def holds_voc_xml(folder: str, walk: bool = False) -> bool:
    """Whether one of the first XML files of ``folder`` (with ``walk``, of its subfolders too) starts a
    VOC ``<annotation>`` (read cheaply: a few files, a few kilobytes each)."""
    seen = 0
    for path in _walk_xml(folder, walk):
        if _looks_like_voc(path):
            return True
        seen += 1
        if seen >= _PROBE_FILES:
            return False
    return False


def _walk_xml(folder: str, walk: bool) -> Iterator[str]:
    """The ``.xml`` files of ``folder``, then (with ``walk``) of its subfolders, each folder's in name order.

    Hidden entries are passed over, and a linked subfolder is not entered (``os.walk`` does not follow
    links): what is read stays inside the set's folder."""
    for here, dirs, files in os.walk(folder, onerror=None, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if walk else []
        for name in sorted(files):
            if name.lower().endswith(".xml") and not name.startswith("."):
                full = os.path.join(here, name)
                if os.path.isfile(full):
                    yield full


def _looks_like_voc(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_PEEK)
    except OSError:
        return False
    return b"<annotation" in head


def xml_files(folder: str, walk: bool = False) -> List[str]:
    """The ``.xml`` files of ``folder`` (with ``walk``, of its subfolders too), sorted by their name inside
    it (a stable image order whatever the disk's)."""
    return sorted(_walk_xml(folder, walk), key=lambda p: os.path.relpath(p, folder).replace(os.sep, "/"))


def guess_image_root(path: str, xml_folder: str, file_names: Sequence[str]) -> str:
    """The folder the XMLs' ``<filename>`` entries are found in: where most of the first few exist.

    With no evidence, ``JPEGImages/`` (or another pictures folder) when there is one, else the XMLs' own."""
    subs = _subfolders(path)
    pictures = [subs[n] for n in IMAGE_FOLDERS if n in subs]
    candidates = pictures + [xml_folder, path, os.path.dirname(os.path.abspath(xml_folder))]
    candidates = [c for i, c in enumerate(candidates) if c not in candidates[:i]]
    probe = [f for f in file_names[:_PROBE_NAMES] if f]
    best, best_hits = None, 0
    for folder in candidates:
        hits = sum(os.path.isfile(os.path.join(folder, f)) for f in probe)
        if hits > best_hits:
            best, best_hits = folder, hits
    return best or (pictures[0] if pictures else xml_folder)


def _subfolders(path: str) -> Dict[str, str]:
    """Lower-cased name -> path of the subfolders of ``path`` (the first of names differing in case)."""
    out: Dict[str, str] = {}
    try:
        with os.scandir(path) as it:
            for e in sorted(it, key=lambda e: e.name):
                if e.is_dir():
                    out.setdefault(e.name.lower(), e.path)
    except OSError:
        pass
    return out


def split_ids(path: str, available: Set[str]) -> Optional[Tuple[Set[str], Set[str], str]]:
    """``(train ids, val ids, how)`` from ``ImageSets/Main``, or None when the files name no validation.

    The rule, as the VOC benchmarks are used: a ``test.txt`` whose images have annotations (VOC2007
    with its test set unpacked beside it) is the validation split, and ``trainval`` (or train + val)
    trains; otherwise ``val.txt`` validates and ``train.txt`` (or trainval minus val) trains. VOC2012's
    test images come without annotations, so its ``test.txt`` is passed over. With only
    ``trainval.txt`` or CVAT's ``default.txt`` there is no validation split to take: the loader draws one.
    """
    lists = split_lists(os.path.join(path, SPLIT_FOLDER))
    test = lists.get("test")
    if test and len(test & available) * 2 >= len(test):
        train = lists.get("trainval") or (lists.get("train", set()) | lists.get("val", set()))
        if train:
            return train - test, test, TEST_VALIDATES
    val = lists.get("val")
    if val:
        train = lists.get("train") or (lists.get("trainval", set()) - val)
        if train:
            return train - val, val, "ImageSets/Main: train trains, val validates"
    return None


def split_lists(folder: str) -> Dict[str, Set[str]]:
    """``{"train": ids, ...}`` of the split files present; an id is each line's first word."""
    out: Dict[str, Set[str]] = {}
    for name in ("train", "val", "trainval", "test"):
        file = os.path.join(folder, name + ".txt")
        if not os.path.isfile(file):
            continue
        with open(file, "r", encoding="utf-8", errors="replace") as fh:
            out[name] = {line.split()[0] for line in fh if line.strip()}
    return out
