"""A ``VOCdevkit`` folder holding several years (VOC2007, VOC2012), opened as one set.

The standard practice (the SSD paper, GluonCV's and torchvision's reference training) is to train on
VOC2007 trainval + VOC2012 trainval and to test on VOC2007 test, the only year whose test set comes
with annotations. A devkit folder given to ``train``, ``eval``, ``data info`` or the Train page is
read that way: each year's ``trainval.txt`` (or ``train.txt`` + ``val.txt``) trains, and VOC2007's
``test.txt`` validates and is the test split. Ids are ``VOC2007/000001``, pictures are named from the
devkit folder, so the loader's rules (a name leaving the folder is refused) cover every year at once.
A year without the split files that say which images train is refused with its name; a devkit
without VOC2007's annotated test set trains without validation, and says why.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Set, Tuple

from ssd.base.errors import DatasetError
from ssd.data.dataset import register_format
from ssd.data.voc import (KIND, Parsed, beside, file_name, listed_only, note_val_only, parse_all, reasons,
                          voc_records, voc_splits)
from ssd.data.voc_layout import SPLIT_FOLDER, find_xml_folder, guess_image_root, split_lists, xml_files

#: The year whose annotated test set validates and is the test split (the VOC07 benchmark's).
TEST_YEAR = "VOC2007"
NOTE_NO_TEST = (f"{TEST_YEAR} test set missing (ImageSets/Main/test.txt and its Annotations; "
                "unpack VOCtest_06-Nov-2007.tar here): no validation or test split")
_YEAR = re.compile(r"^VOC\d{4}$")


def devkit_years(path: str) -> List[Tuple[str, str]]:
    """``(name, folder)`` of the ``VOC<year>`` subfolders of ``path`` holding VOC XMLs, by name."""
    try:
        names = sorted(n for n in os.listdir(path) if _YEAR.match(n) and os.path.isdir(os.path.join(path, n)))
    except OSError:
        return []
    return [(n, os.path.join(path, n)) for n in names if find_xml_folder(os.path.join(path, n)) is not None]


def detect(path: str) -> bool:
    """True for a folder of two or more VOC years (one year alone is given as its own folder)."""
    return os.path.isdir(path) and find_xml_folder(path) is None and len(devkit_years(path)) >= 2


def open_devkit(path: str, *, check_images: bool = True, **_: Any) -> Any:
    """``open_dataset`` entry point: every year's trainval trains, VOC2007's test validates and tests.

    ``val_fraction`` and ``seed`` are unused: the split files decide, as the benchmark does."""
    root = os.path.abspath(path)
    skipped: Dict[str, int] = {}
    parsed: List[Parsed] = []
    names: List[str] = []
    train_ids: Set[str] = set()
    test_ids: Set[str] = set()
    for year, folder in devkit_years(root):
        year_parsed, year_names, trainval, test = _read_year(year, folder, skipped)
        parsed += year_parsed
        names += year_names
        train_ids |= {f"{year}/{i}" for i in trainval - test}
        test_ids |= {f"{year}/{i}" for i in test}
    if not test_ids:
        skipped[NOTE_NO_TEST] = 1
    read = voc_records(parsed, names, root, check_images, skipped)
    records = read[0]
    if not records:
        raise DatasetError(f"no usable images in {root}: {len(parsed)} annotation XML(s) ({reasons(skipped)})")
    train_idx = [i for i, r in enumerate(records) if r.image_id in train_ids]
    val_idx = [i for i, r in enumerate(records) if r.image_id in test_ids]
    note_val_only(records, read[1], train_idx, val_idx, skipped)
    return voc_splits(root, read, train_idx, val_idx, skipped, test_validates=True)


def _read_year(year: str, folder: str, skipped: Dict[str, int]) -> Tuple[List[Parsed], List[str], Set[str], Set[str]]:
    """One year's listed annotations (ids ``<year>/<id>``), their pictures named from the devkit folder,
    and its trainval and (VOC2007's, when annotated) test ids."""
    lists = split_lists(os.path.join(folder, SPLIT_FOLDER))
    trainval = lists.get("trainval") or (lists["train"] | lists["val"] if "train" in lists and "val" in lists
                                         else set())
    if not trainval:
        raise DatasetError(f"{year} has no {SPLIT_FOLDER}/trainval.txt (nor train.txt and val.txt) in {folder}: "
                           "which of its images train is not said; restore the file from the VOC tarball "
                           f"or move {year} out of the devkit folder")
    xml_folder = find_xml_folder(folder)
    parsed = parse_all(xml_folder, xml_files(xml_folder, walk=True), skipped)  # type: ignore[arg-type]
    test = lists.get("test", set()) if year == TEST_YEAR else set()
    if len(test & {iid for iid, _, _ in parsed}) * 2 < len(test):
        test = set()                                   # listed, but its annotations are not unpacked
    parsed = listed_only(parsed, trainval | test, skipped)
    image_root = guess_image_root(folder, xml_folder, [beside(iid, a.filename) for iid, _, a in parsed])  # type: ignore[arg-type]
    prefix = os.path.relpath(image_root, os.path.dirname(folder)).replace(os.sep, "/")
    names = [f"{prefix}/{file_name(a, iid, image_root)}" for iid, _, a in parsed]
    return [(f"{year}/{iid}", p, a) for iid, p, a in parsed], names, trainval, test


register_format(KIND, detect, open_devkit)
