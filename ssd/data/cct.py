"""COCO Camera Traps (CCT) datasets: ENA24 and any LILA-style folder, or a user's own JSON.

A CCT file is one JSON object with ``images`` (id, file_name, width, height, optional
seq_id/location/datetime), ``annotations`` (id, image_id, category_id, optional bbox
``[x, y, w, h]`` in absolute pixels) and ``categories`` (id, name).

Real camera-trap metadata is messy, and the loader's job is to turn it into clean
``(K, 5)`` normalized labels while *saying* what it dropped instead of failing or silently
losing data (reading and checking the file: ``ssd.data.cct_json``; entries to labels:
``ssd.data.cct_labels``; the split: ``ssd.data.cct_split``):

* ENA24's metadata still lists the human images that were removed from the archive, so
  listed-but-missing files are expected: they are skipped and counted.
* A category with no usable box at all (ENA24's "Human") would be a class the model can
  never learn and that evaluation would report as AP 0; it is dropped from the class list
  and counted. Class indices are contiguous, ordered by the original category id, and the
  mapping back to the original ids is kept (``class_mapping``) for model metadata.
* LILA sets carry image-level labels (annotations without a bbox, e.g. "empty"); those are
  not boxes and are skipped and counted.
* Images with no boxes are *kept*: in camera-trap data they are legitimate negatives.
* Consecutive frames of one trigger (``seq_id``) are near duplicates, so the train/val split
  is made per sequence; otherwise validation would measure memorisation.

Images are decoded lazily from disk; for training use ``ssd.data.cache`` so the 1920×1080
JPEGs are decoded once, not every epoch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ssd.base.errors import DatasetError
from ssd.base.file_cache import per_file_version
from ssd.data.cct_json import category_names, checked_images, read_json
from ssd.data.cct_labels import (CCTImage, clean_boxes, crowd_mapping, kept_classes, labelled_records, refuse_fractions,
                                 usable_images)
from ssd.data.cct_split import split_indices
from ssd.data.dataset import DEFAULT_VAL_FRACTION, DatasetSplits, DetectionDataset, Sample, register_format
from ssd.data.decoding import decode_rgb

KIND = "coco-camera-traps"

# JSON names that clearly denote a CCT file when a folder holds several JSON files.
_CLEAR_NAMES = ("ena24.json",)
_CLEAR_HINTS = ("camera_traps", "cameratraps", "camera-traps", "cct")


@dataclass
class CCTSplits(DatasetSplits):
    """``DatasetSplits`` plus what model metadata and cache keys need from a CCT file.

    ``class_mapping`` lists ``{"index": i, "id": original_category_id, "name": name}`` so a
    saved model can say which original category each output is, even though dropped
    categories (e.g. ENA24's Human) make the indices differ from the ids.
    """

    class_mapping: List[Dict[str, Any]] = field(default_factory=list)
    json_path: str = ""
    image_root: str = ""


class CCTDataset(DetectionDataset):
    """A split of a CCT dataset; decodes each image from disk when indexed.

    ``labels()`` and ``image_path()`` never decode, so evaluation, summaries and the
    decode-once cache (which wants the path to use JPEG draft mode) stay cheap.
    """

    def __init__(self, records: Sequence[CCTImage], classes: Sequence[str], name: str,
                 json_path: str = "", class_mapping: Optional[List[Dict[str, Any]]] = None,
                 crowd_mapping: Optional[List[Dict[str, Any]]] = None) -> None:
        self.records: Tuple[CCTImage, ...] = tuple(records)
        self.classes = list(classes)
        self.name = name
        self.json_path = json_path
        self.class_mapping = list(class_mapping or [])
        # the crowd regions' classes: class_mapping, then categories with regions but no box
        self.crowd_mapping = list(crowd_mapping or self.class_mapping)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> Sample:
        rec = self.records[idx]
        return decode_rgb(rec.path), rec.label.copy()

    def labels(self) -> List[np.ndarray]:
        # Copies: an augmentation that edits boxes in place must not corrupt the dataset.
        return [r.label.copy() for r in self.records]

    @property
    def crowd_regions(self) -> List[np.ndarray]:
        """Each item's COCO crowd regions (``label``-like rows): evaluation ignores detections in them."""
        return [r.crowd for r in self.records]

    @property
    def crowd_classes(self) -> List[str]:
        """The names the crowd regions' class indices point to: ``classes``, then the categories that
        have crowd regions but no box (no class to train; evaluation ignores detections in them)."""
        return self.classes + [m["name"] for m in self.crowd_mapping[len(self.classes):]]

    def image_path(self, idx: int) -> str:
        return self.records[idx].path

    def source_files(self) -> List[str]:
        """Files this split's content depends on (for cache fingerprints): the JSON, then images."""
        return ([self.json_path] if self.json_path else []) + [r.path for r in self.records]


def guess_image_root(json_path: str, file_names: Sequence[str] = ()) -> str:
    """Where the images of ``json_path`` live: the JSON's folder, or its ``images/`` subfolder.

    Archives unpack either way (ENA24's zip holds an ``images/`` folder next to which people
    put the JSON; COCO and CVAT put it in ``annotations/`` beside ``images/``), so probe a few
    listed file names in each candidate and take the one where
    most exist; with no evidence, prefer an existing ``images/`` folder.
    """
    base = os.path.dirname(os.path.abspath(json_path))
    stem = os.path.splitext(os.path.basename(json_path))[0]
    parent = os.path.dirname(base)
    # COCO's own layout and CVAT's export keep the JSON in annotations/ beside the image folder.
    candidates = [base, os.path.join(base, "images"), os.path.join(base, stem), parent,
                  os.path.join(parent, "images"), os.path.join(parent, stem.replace("instances_", "", 1))]
    candidates = [c for i, c in enumerate(candidates) if os.path.isdir(c) and c not in candidates[:i]]
    probe = [f for f in file_names[:50] if isinstance(f, str)]
    best, best_hits = None, 0
    for c in candidates:
        hits = sum(os.path.isfile(os.path.join(c, f)) for f in probe)
        if hits > best_hits:
            best, best_hits = c, hits
    if best is not None:
        return best
    images_dir = os.path.join(base, "images")
    return images_dir if os.path.isdir(images_dir) else base


def load_cct(json_path: str, image_root: Optional[str] = None, *, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0,
             check_images: bool = True) -> CCTSplits:
    """Load a COCO Camera Traps JSON and its images into train/val splits.

    ``image_root`` defaults to the JSON's folder or its ``images/`` subfolder (see
    ``guess_image_root``). ``check_images`` opens each image's header (``PIL verify``) so an
    unreadable file is reported now rather than at the first epoch; failures found later at
    full decode are counted by the cache builder. ``val_fraction`` of the images (by sequence,
    see ``split_indices``) go to validation; 0 gives ``val=None``.
    """
    if not (0.0 <= float(val_fraction) < 1.0):
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    json_path = os.path.abspath(json_path)
    data = read_json(json_path)
    skipped: Dict[str, int] = {}
    cat_names = category_names(json_path, data["categories"])
    images = checked_images(json_path, data["images"])
    image_root = _image_root(json_path, images, image_root)
    usable, order, image_of = usable_images(images, image_root, check_images, skipped)
    crowd: Dict[Any, list] = {}
    boxes = clean_boxes(json_path, data["annotations"], usable, order, image_of, cat_names, skipped, crowd)
    refuse_fractions(json_path, boxes, usable)
    classes, index_of, mapping = kept_classes(cat_names, boxes, skipped)
    if not order:
        raise DatasetError(
            f"no usable images in {json_path}: {len(images)} listed, none readable under {image_root} "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(skipped.items())) or 'nothing found'}); "
            "check that the image archive is extracted there or pass image_root")
    crowd_of = crowd_mapping(cat_names, mapping, crowd)
    records = labelled_records(order, usable, boxes, index_of, crowd, {m["id"]: m["index"] for m in crowd_of})
    train_idx, val_idx = split_indices(records, len(classes), val_fraction, seed)
    stem = os.path.splitext(os.path.basename(json_path))[0]
    train = CCTDataset([records[i] for i in train_idx], classes, f"{stem}/train", json_path, mapping, crowd_of)
    val = (CCTDataset([records[i] for i in val_idx], classes, f"{stem}/val", json_path, mapping, crowd_of)
           if val_idx else None)
    return CCTSplits(train=train, val=val, classes=classes, kind=KIND, root=os.path.dirname(json_path),
                     skipped=skipped, class_mapping=mapping, json_path=json_path, image_root=image_root)


def _image_root(json_path: str, images: List[Dict[str, Any]], image_root: Optional[str]) -> str:
    if image_root is None:
        image_root = guess_image_root(json_path, [im["file_name"] for im in images])
    image_root = os.path.abspath(image_root)
    if not os.path.isdir(image_root):
        raise DatasetError(f"image folder {image_root} for {json_path} does not exist")
    return image_root


def class_mapping(obj: Union[DatasetSplits, DetectionDataset]) -> List[Dict[str, Any]]:
    """``[{"index": i, "id": original_id, "name": name}, …]`` for model metadata.

    For a CCT dataset the ids are the JSON's category ids; for any other dataset (no
    original ids) the index doubles as the id, so callers can always store the mapping.
    """
    mapping = getattr(obj, "class_mapping", None)
    if mapping:
        return [dict(m) for m in mapping]
    return [{"index": i, "id": i, "name": n} for i, n in enumerate(getattr(obj, "classes", []) or [])]


_PEEK = 64 * 1024
_KEYS = (b'"images"', b'"annotations"', b'"categories"')
_SCAN_CHUNK = 4 << 20


def _looks_like_cct(json_path: str) -> bool:
    """Cheap check: the three top-level keys appear in the file (and it is not a cut-off copy).

    A CCT file is often megabytes, so both 64 KB ends are read first; only when they show
    some keys but not all (COCO writers put ``annotations`` between ``images`` and
    ``categories``, far from both ends) is the whole file scanned, once per version of it.
    A file cut short after its ``images`` and ``annotations`` also counts, so that loading
    reports the truncated download instead of "not a dataset". MegaDetector output
    (``detection_categories``, no ``annotations``) does not match: the quoted key must be exact.
    """
    return _looks_like_cct_version(json_path)


@per_file_version(maxsize=256, missing=False)
def _looks_like_cct_version(json_path: str, size: int) -> bool:
    try:
        with open(json_path, "rb") as fh:
            head = fh.read(_PEEK)
            tail = b""
            if size > _PEEK:
                fh.seek(max(size - _PEEK, _PEEK))
                tail = fh.read(_PEEK)
            found = {k for k in _KEYS if k in head or k in tail}
            if found and len(found) < len(_KEYS) and size > 2 * _PEEK:
                found |= _keys_in(fh, set(_KEYS) - found)
    except OSError:
        return False
    if len(found) == len(_KEYS):
        return True
    cut_short = not (tail or head).rstrip().endswith(b"}")
    return cut_short and {b'"images"', b'"annotations"'} <= found


def _keys_in(fh: Any, keys: set) -> set:
    """Which of ``keys`` occur anywhere in the open file (read in chunks that overlap by a key's length)."""
    fh.seek(0)
    found: set = set()
    carry = b""
    while keys - found:
        chunk = fh.read(_SCAN_CHUNK)
        if not chunk:
            break
        buf = carry + chunk
        found |= {k for k in keys if k in buf}
        carry = buf[-32:]
    return found


def _json_candidates(folder: str) -> List[str]:
    try:
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".json") and not n.startswith("."))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]


def _cct_files(folder: str) -> List[str]:
    """The CCT-looking JSON files of ``folder``, else of its ``annotations/`` (COCO's and CVAT's layout)."""
    for place in (folder, os.path.join(folder, "annotations")):
        matches = [p for p in _json_candidates(place) if _looks_like_cct(p)]
        if matches:
            return matches
    return []


def find_cct_json(folder: str) -> str:
    """The CCT JSON of ``folder``: the only one, or the clearly named one among several."""
    matches = _cct_files(folder)
    if not matches:
        raise DatasetError(f"no COCO Camera Traps .json (with 'images', 'annotations', 'categories') in {folder}")
    if len(matches) == 1:
        return matches[0]
    clear = [p for p in matches if os.path.basename(p).lower() in _CLEAR_NAMES]
    if len(clear) != 1:
        clear = [p for p in matches if any(h in os.path.basename(p).lower() for h in _CLEAR_HINTS)]
    if len(clear) == 1:
        return clear[0]
    raise DatasetError(f"{folder} holds several COCO Camera Traps files "
                       f"({', '.join(os.path.basename(p) for p in matches)}); give the .json file itself "
                       f"instead of the folder (e.g. {matches[0]})")


def detect(path: str) -> bool:
    """True when ``path`` is a folder holding a COCO Camera Traps JSON (checked cheaply)."""
    if not os.path.isdir(path):
        return False
    return bool(_cct_files(path))


def open_cct(path: str, **kw: Any) -> CCTSplits:
    """``open_dataset`` entry point: find the JSON in ``path`` and its image folder, then load.

    Accepts ``load_cct``'s keywords; ``json_path`` overrides the search.
    """
    json_path = kw.pop("json_path", None) or find_cct_json(path)
    return load_cct(json_path, kw.pop("image_root", None), **kw)


def open_cct_file(json_path: str, **kw: Any) -> CCTSplits:
    """``open_dataset`` entry point for a named ``.json`` (a folder holding train.json and val.json)."""
    return load_cct(json_path, kw.pop("image_root", None), **kw)


register_format(KIND, detect, open_cct, ".json", open_cct_file)
