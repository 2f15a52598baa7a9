"""Reading a COCO Camera Traps JSON file and checking its structure, with errors a person can act on.

The file comes with the dataset, from anyone: a truncated download, a folder given instead of the
file, MegaDetector output or an entry without its id each end as one ``DatasetError`` that says
which file, which entry and what was expected. Entries that are merely unusable (a missing image,
a box without area) are not errors: ``ssd.data.cct_labels`` skips and counts them.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List

from ssd.base.errors import DatasetError
from ssd.base.json_file import JSONFileError, read_regular

#: Largest dataset JSON read: LILA's biggest COCO Camera Traps files are a few hundred MB.
MAX_DATASET_JSON_BYTES = 4 << 30


def read_json(json_path: str) -> Dict[str, Any]:
    if not os.path.exists(json_path):
        raise DatasetError(f"COCO Camera Traps file {json_path} does not exist")
    if os.path.isdir(json_path):
        raise DatasetError(f"{json_path} is a folder; give the COCO Camera Traps .json file inside it")
    try:
        raw = read_regular(json_path, MAX_DATASET_JSON_BYTES)     # a FIFO or a device is refused unread
    except JSONFileError as err:
        raise DatasetError(f"cannot read COCO Camera Traps file: {err}") from None
    if not raw.strip():
        raise DatasetError(f"COCO Camera Traps file {json_path} is empty")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:      # [[[[… 300,000 deep: the parser's own recursion, not a ValueError
        raise DatasetError(f"{json_path} is nested too deeply to be a COCO Camera Traps file") from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"{json_path} is not a text JSON file (bad UTF-8 at byte {err.start})") from err
    except json.JSONDecodeError as err:
        raise DatasetError(f"{json_path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
                           " (the file may be truncated; download it again)") from err
    if not isinstance(data, dict):
        raise DatasetError(f"{json_path} is not a COCO Camera Traps file: the top level is a "
                           f"{type(data).__name__}, expected an object with 'images', 'annotations' and "
                           "'categories'")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        found = ", ".join(repr(k) for k in list(data)[:8]) or "no keys"
        raise DatasetError(f"{json_path} is not a COCO Camera Traps file: missing "
                           f"{', '.join(repr(k) for k in missing)} (found {found}); expected top-level "
                           "'images', 'annotations' and 'categories'")
    for k in ("images", "annotations", "categories"):
        if not isinstance(data[k], list):
            raise DatasetError(f"{json_path}: '{k}' must be a list, found {type(data[k]).__name__}")
    return data


#: Fields that are ids: they key dictionaries, so they must be a number or text (a list would not hash).
ID_FIELDS = frozenset(("id", "image_id", "category_id"))


def require(json_path: str, section: str, i: int, entry: Any, keys: Iterable[str]) -> None:
    """``entry`` is an object with each of ``keys``; ids among them are whole numbers or text."""
    if not isinstance(entry, dict):
        raise DatasetError(f"{json_path}: {section}[{i}] is a {type(entry).__name__}, expected an object")
    for k in keys:
        if k not in entry or entry[k] is None:
            raise DatasetError(f"{json_path}: {section}[{i}] has no '{k}' (entry: {short(entry)})")
        if k in ID_FIELDS and (isinstance(entry[k], bool) or not isinstance(entry[k], (int, str))):
            raise DatasetError(f"{json_path}: {section}[{i}] has '{k}' {short(entry[k])}, expected a whole "
                               "number or text")


def short(obj: Any, limit: int = 120) -> str:
    text = json.dumps(obj, default=str)
    return text if len(text) <= limit else text[:limit] + "…"



def category_names(json_path: str, categories: List[Dict[str, Any]]) -> Dict[Any, str]:
    """Original category id → name; a repeated id is an error (boxes would be ambiguous)."""
    cat_names: Dict[Any, str] = {}
    for i, c in enumerate(categories):
        require(json_path, "categories", i, c, ("id", "name"))
        if c["id"] in cat_names:
            raise DatasetError(f"{json_path}: categories[{i}] repeats id {c['id']!r} "
                               f"({cat_names[c['id']]!r} and {c['name']!r})")
        cat_names[c["id"]] = str(c["name"])
    return cat_names


def checked_images(json_path: str, images: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The ``images`` entries, each with an id and a non-empty string ``file_name``."""
    for i, im in enumerate(images):
        require(json_path, "images", i, im, ("id", "file_name"))
        if not isinstance(im["file_name"], str) or not im["file_name"]:
            raise DatasetError(f"{json_path}: images[{i}] has a 'file_name' that is not a path: "
                               f"{short(im['file_name'])}")
    return images
