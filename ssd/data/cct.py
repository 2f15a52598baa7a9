"""COCO Camera Traps (CCT) datasets: ENA24 and any LILA-style folder, or a user's own JSON.

A CCT file is one JSON object with ``images`` (id, file_name, width, height, optional
seq_id/location/datetime), ``annotations`` (id, image_id, category_id, optional bbox
``[x, y, w, h]`` in absolute pixels) and ``categories`` (id, name).

Real camera-trap metadata is messy, and the loader's job is to turn it into clean
``(K, 5)`` normalized labels while *saying* what it dropped instead of failing or silently
losing data:

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

Images are decoded lazily from disk; for training use ``ssd.cache`` so the 1920×1080
JPEGs are decoded once, not every epoch.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ssd.data.dataset import DatasetSplits, DetectionDataset, Sample, register_format
from ssd.base.errors import DatasetError, ImageError

KIND = "coco-camera-traps"

# Skip reasons, as they appear in ``DatasetSplits.skipped`` (reason -> count). Kept as
# constants so the summary page, tests and other modules agree on the spelling.
SKIP_MISSING = "image file missing"
SKIP_CORRUPT = "corrupt image"
SKIP_NO_BBOX = "annotation without bbox (image-level label)"
SKIP_BAD_BOX = "box with non-positive size"
SKIP_MALFORMED_BOX = "malformed bbox"
SKIP_OUTSIDE = "box outside image"
NOTE_CLIPPED = "box clipped"   # the box is kept (clipped to the image); counted so it is visible
SKIP_UNKNOWN_IMAGE = "annotation for unknown image"
SKIP_UNKNOWN_CATEGORY = "annotation with unknown category"
SKIP_DUPLICATE_IMAGE = "duplicate image id"
NOTE_SIZE_MISMATCH = "image size differs from JSON"
SKIP_CATEGORY_PREFIX = "category without boxes: "
SKIP_OUTSIDE_FOLDER = "file_name outside the image folder (refused)"
_NAMED_ESCAPES = 5   # how many refused names the skip reason quotes

# JSON names that clearly denote a CCT file when a folder holds several JSON files.
_CLEAR_NAMES = ("ena24.json",)
_CLEAR_HINTS = ("camera_traps", "cameratraps", "camera-traps", "cct")

# Errors PIL raises on a file that is not a readable image. DecompressionBombError is not an
# OSError; some plugins raise SyntaxError/ValueError/EOFError/struct.error on garbage.
try:  # pragma: no cover - trivial import guard
    from PIL import Image as _PILImage

    _PIL_ERRORS: Tuple[type, ...] = (OSError, _PILImage.DecompressionBombError, SyntaxError, ValueError,
                                     EOFError, struct.error)
except ImportError:  # pragma: no cover - PIL is a hard dependency of the app
    _PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


@dataclass(frozen=True, eq=False)
class CCTImage:
    """One usable image: where it is, its size per the JSON, and its cleaned label."""

    image_id: Any
    file_name: str
    path: str
    width: int
    height: int
    seq_id: Optional[str]
    label: np.ndarray          # float32 (K, 5) [class_index, xmin, ymin, xmax, ymax], normalized


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
                 json_path: str = "", class_mapping: Optional[List[Dict[str, Any]]] = None) -> None:
        self.records: Tuple[CCTImage, ...] = tuple(records)
        self.classes = list(classes)
        self.name = name
        self.json_path = json_path
        self.class_mapping = list(class_mapping or [])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> Sample:
        rec = self.records[idx]
        return _decode_rgb(rec.path), rec.label.copy()

    def labels(self) -> List[np.ndarray]:
        # Copies: an augmentation that edits boxes in place must not corrupt the dataset.
        return [r.label.copy() for r in self.records]

    def image_path(self, idx: int) -> str:
        return self.records[idx].path

    def source_files(self) -> List[str]:
        """Files this split's content depends on (for cache fingerprints): the JSON, then images."""
        return ([self.json_path] if self.json_path else []) + [r.path for r in self.records]


# --------------------------------------------------------------------------------------------
# Image helpers (PIL directly; ``ssd.images`` may replace them later)
# --------------------------------------------------------------------------------------------

def _decode_rgb(path: str) -> np.ndarray:
    """Fully decode ``path`` to an (H, W, 3) uint8 RGB array, or raise ``ImageError``."""
    from PIL import Image

    from ssd.data.images import strict_decoding

    try:
        with strict_decoding(), Image.open(path) as im:  # GluonCV turns truncation tolerance on globally
            im.load()
            rgb = im.convert("RGB")
        return np.asarray(rgb, dtype=np.uint8)
    except FileNotFoundError as err:
        raise ImageError(f"image {path} is missing ({err.strerror})") from err
    except _PIL_ERRORS as err:
        raise ImageError(f"image {path} could not be decoded: {err}") from err


def _header(path: str, verify: bool) -> Tuple[int, int]:
    """Read (width, height) from the header without decoding pixels; ``verify`` adds PIL's check.

    Raises one of ``_PIL_ERRORS`` when the file is not a readable image.
    """
    from PIL import Image

    if os.path.getsize(path) == 0:
        raise OSError("file is empty")
    with Image.open(path) as im:
        size = im.size
        if verify:
            im.verify()
    return int(size[0]), int(size[1])


# --------------------------------------------------------------------------------------------
# JSON reading and validation
# --------------------------------------------------------------------------------------------

def _read_json(json_path: str) -> Dict[str, Any]:
    if not os.path.exists(json_path):
        raise DatasetError(f"COCO Camera Traps file {json_path} does not exist")
    if os.path.isdir(json_path):
        raise DatasetError(f"{json_path} is a folder; give the COCO Camera Traps .json file inside it")
    try:
        with open(json_path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise DatasetError(f"cannot read COCO Camera Traps file {json_path}: {err.strerror or err}") from err
    if not raw.strip():
        raise DatasetError(f"COCO Camera Traps file {json_path} is empty")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
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


def _require(json_path: str, section: str, i: int, entry: Any, keys: Iterable[str]) -> None:
    if not isinstance(entry, dict):
        raise DatasetError(f"{json_path}: {section}[{i}] is a {type(entry).__name__}, expected an object")
    for k in keys:
        if k not in entry or entry[k] is None:
            raise DatasetError(f"{json_path}: {section}[{i}] has no '{k}' (entry: {_short(entry)})")


def _short(obj: Any, limit: int = 120) -> str:
    text = json.dumps(obj, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def _id_sort_key(cid: Any) -> Tuple[int, Any]:
    """Order category ids numerically when they are numbers (or numeric strings), else as text."""
    if isinstance(cid, bool):
        return (1, str(cid))
    if isinstance(cid, (int, float)):
        return (0, cid)
    try:
        return (0, int(str(cid)))
    except ValueError:
        return (1, str(cid))


def _positive_int(v: Any) -> Optional[int]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f) or f <= 0:
        return None
    return int(round(f))


def _bump(counts: Dict[str, int], reason: str, n: int = 1) -> None:
    counts[reason] = counts.get(reason, 0) + n


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def guess_image_root(json_path: str, file_names: Sequence[str] = ()) -> str:
    """Where the images of ``json_path`` live: the JSON's folder, or its ``images/`` subfolder.

    Archives unpack either way (ENA24's zip holds an ``images/`` folder next to which people
    put the JSON), so probe a few listed file names in each candidate and take the one where
    most exist; with no evidence, prefer an existing ``images/`` folder.
    """
    base = os.path.dirname(os.path.abspath(json_path))
    stem = os.path.splitext(os.path.basename(json_path))[0]
    candidates = [base, os.path.join(base, "images"), os.path.join(base, stem)]
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


def load_cct(json_path: str, image_root: Optional[str] = None, *, val_fraction: float = 0.2, seed: int = 0,
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
    data = _read_json(json_path)
    skipped: Dict[str, int] = {}
    cat_names = _categories(json_path, data["categories"])
    images = _checked_images(json_path, data["images"])
    image_root = _image_root(json_path, images, image_root)
    usable, order, dropped_ids = _usable_images(images, image_root, check_images, skipped)
    boxes = _boxes(json_path, data["annotations"], usable, order, dropped_ids, cat_names, skipped)
    classes, index_of, mapping = _classes(cat_names, boxes, skipped)
    if not order:
        raise DatasetError(
            f"no usable images in {json_path}: {len(images)} listed, none readable under {image_root} "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(skipped.items())) or 'nothing found'}); "
            "check that the image archive is extracted there or pass image_root")
    records = _records(order, usable, boxes, index_of)
    train_idx, val_idx = split_indices(records, len(classes), val_fraction, seed)
    stem = os.path.splitext(os.path.basename(json_path))[0]
    train = CCTDataset([records[i] for i in train_idx], classes, f"{stem}/train", json_path, mapping)
    val = (CCTDataset([records[i] for i in val_idx], classes, f"{stem}/val", json_path, mapping)
           if val_idx else None)
    return CCTSplits(train=train, val=val, classes=classes, kind=KIND, root=os.path.dirname(json_path),
                     skipped=skipped, class_mapping=mapping, json_path=json_path, image_root=image_root)


def _categories(json_path: str, categories: List[Dict[str, Any]]) -> Dict[Any, str]:
    """Original category id → name; a repeated id is an error (boxes would be ambiguous)."""
    cat_names: Dict[Any, str] = {}
    for i, c in enumerate(categories):
        _require(json_path, "categories", i, c, ("id", "name"))
        if c["id"] in cat_names:
            raise DatasetError(f"{json_path}: categories[{i}] repeats id {c['id']!r} "
                               f"({cat_names[c['id']]!r} and {c['name']!r})")
        cat_names[c["id"]] = str(c["name"])
    return cat_names


def _checked_images(json_path: str, images: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The ``images`` entries, each with an id and a non-empty string ``file_name``."""
    for i, im in enumerate(images):
        _require(json_path, "images", i, im, ("id", "file_name"))
        if not isinstance(im["file_name"], str) or not im["file_name"]:
            raise DatasetError(f"{json_path}: images[{i}] has a 'file_name' that is not a path: "
                               f"{_short(im['file_name'])}")
    return images


def _image_root(json_path: str, images: List[Dict[str, Any]], image_root: Optional[str]) -> str:
    if image_root is None:
        image_root = guess_image_root(json_path, [im["file_name"] for im in images])
    image_root = os.path.abspath(image_root)
    if not os.path.isdir(image_root):
        raise DatasetError(f"image folder {image_root} for {json_path} does not exist")
    return image_root


def _usable_images(images: List[Dict[str, Any]], image_root: str, check_images: bool,
                   skipped: Dict[str, int]):
    """Images present (always: a stat is cheap), readable (``check_images``) and inside the folder.

    Returns ``(usable by id, their order, dropped ids)``; what is dropped is counted in ``skipped``.
    """
    usable: Dict[Any, Dict[str, Any]] = {}     # image id -> {path, file_name, width, height, seq_id}
    order: List[Any] = []
    dropped_ids = set()
    escapes: List[str] = []
    for im in images:
        iid = im["id"]
        if iid in usable or iid in dropped_ids:
            _bump(skipped, SKIP_DUPLICATE_IMAGE)
            continue
        if not _stays_inside(image_root, im["file_name"]):
            escapes.append(im["file_name"])
            dropped_ids.add(iid)
            continue
        entry = _usable_entry(im, image_root, check_images, skipped)
        if entry is None:
            dropped_ids.add(iid)
            continue
        usable[iid] = entry
        order.append(iid)
    if escapes:
        _bump(skipped, _escape_reason(escapes), len(escapes))
    return usable, order, dropped_ids


def _usable_entry(im: Dict[str, Any], image_root: str, check_images: bool,
                  skipped: Dict[str, int]) -> Optional[Dict[str, Any]]:
    """One image's path, size and sequence, or None (missing or unreadable, counted)."""
    path = _resolve(image_root, im["file_name"])
    if path is None:
        _bump(skipped, SKIP_MISSING)
        return None
    w, h = _positive_int(im.get("width")), _positive_int(im.get("height"))
    if check_images or w is None or h is None:
        try:
            hw, hh = _header(path, verify=check_images)
        except _PIL_ERRORS:
            _bump(skipped, SKIP_CORRUPT)
            return None
        if w is None or h is None:
            w, h = hw, hh
        elif (hw, hh) != (w, h):
            # Boxes were drawn in the JSON's frame; normalizing by it stays right for a
            # uniformly resized copy. Counted so a rotated/cropped set is noticed.
            _bump(skipped, NOTE_SIZE_MISMATCH)
    seq = im.get("seq_id")
    return {"path": path, "file_name": im["file_name"], "width": w, "height": h,
            "seq_id": None if seq is None or seq == "" else str(seq)}


def _boxes(json_path: str, annotations: List[Dict[str, Any]], usable: Dict[Any, Dict[str, Any]],
           order: List[Any], dropped_ids: set, cat_names: Dict[Any, str],
           skipped: Dict[str, int]) -> Dict[Any, List[Tuple[Any, float, float, float, float]]]:
    """Annotations → boxes in pixels, clipped, keyed by image id, still with original category ids."""
    boxes: Dict[Any, List[Tuple[Any, float, float, float, float]]] = {iid: [] for iid in order}
    for i, ann in enumerate(annotations):
        _require(json_path, "annotations", i, ann, ("image_id", "category_id"))
        iid, cid = ann["image_id"], ann["category_id"]
        if iid in dropped_ids:
            continue  # its image was already counted as missing/corrupt
        if iid not in usable:
            _bump(skipped, SKIP_UNKNOWN_IMAGE)
            continue
        if cid not in cat_names:
            _bump(skipped, SKIP_UNKNOWN_CATEGORY)
            continue
        bbox = ann.get("bbox")
        if bbox is None:
            _bump(skipped, SKIP_NO_BBOX)
            continue
        box = _clean_box(bbox, usable[iid]["width"], usable[iid]["height"], skipped)
        if box is not None:
            boxes[iid].append((cid,) + box)
    return boxes


def _classes(cat_names: Dict[Any, str], boxes, skipped: Dict[str, int]):
    """Categories with at least one usable box, ordered by original id: ``(names, index_of, mapping)``."""
    used = {b[0] for bl in boxes.values() for b in bl}
    kept_ids = sorted((cid for cid in cat_names if cid in used), key=_id_sort_key)
    for cid in sorted(cat_names, key=_id_sort_key):
        if cid not in used:
            _bump(skipped, SKIP_CATEGORY_PREFIX + cat_names[cid])
    index_of = {cid: i for i, cid in enumerate(kept_ids)}
    classes = [cat_names[cid] for cid in kept_ids]
    mapping = [{"index": i, "id": cid, "name": cat_names[cid]} for i, cid in enumerate(kept_ids)]
    return classes, index_of, mapping


def _records(order: List[Any], usable: Dict[Any, Dict[str, Any]], boxes, index_of: Dict[Any, int]) -> List[CCTImage]:
    """One ``CCTImage`` per usable image with its normalized ``(K, 5)`` label."""
    records: List[CCTImage] = []
    for iid in order:
        u = usable[iid]
        w, h = float(u["width"]), float(u["height"])
        rows = [[index_of[cid], x1 / w, y1 / h, x2 / w, y2 / h] for cid, x1, y1, x2, y2 in boxes[iid]]
        label = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
        records.append(CCTImage(iid, u["file_name"], u["path"], int(u["width"]), int(u["height"]),
                                u["seq_id"], label))
    return records


def _escape_reason(names: Sequence[str]) -> str:
    """The skip reason for refused paths, quoting the first few (repr: no control characters)."""
    quoted = ", ".join(repr(n[:80]) for n in names[:_NAMED_ESCAPES])
    more = f" and {len(names) - _NAMED_ESCAPES} more" if len(names) > _NAMED_ESCAPES else ""
    return f"{SKIP_OUTSIDE_FOLDER}: {quoted}{more}"


def _stays_inside(image_root: str, file_name: str) -> bool:
    """False for an absolute path, a ``..`` escape or a symlink leading out of ``image_root``.

    Why: the JSON comes with the dataset, from anyone; ``../../etc/passwd`` must not be read.
    """
    if "\0" in file_name or os.path.isabs(file_name) or file_name.startswith(("\\", "/")) \
            or re.match(r"^[A-Za-z]:", file_name):
        return False
    parts = file_name.replace("\\", "/").split("/")
    if ".." in parts:
        return False
    root = os.path.realpath(image_root)
    real = os.path.realpath(os.path.join(root, *[p for p in parts if p]))
    return real == root or real.startswith(root + os.sep)


def _resolve(image_root: str, file_name: str) -> Optional[str]:
    """Path of a listed file if it exists; tolerates Windows separators written into the JSON."""
    path = os.path.join(image_root, file_name)
    if os.path.isfile(path):
        return path
    if "\\" in file_name:
        alt = os.path.join(image_root, *file_name.split("\\"))
        if os.path.isfile(alt):
            return alt
    return None


def _clean_box(bbox: Any, width: int, height: int,
               skipped: Dict[str, int]) -> Optional[Tuple[float, float, float, float]]:
    """``[x, y, w, h]`` pixels -> clipped ``(x1, y1, x2, y2)`` pixels, or None (counted)."""
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        _bump(skipped, SKIP_MALFORMED_BOX)
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        _bump(skipped, SKIP_MALFORMED_BOX)
        return None
    if w <= 0 or h <= 0:
        _bump(skipped, SKIP_BAD_BOX)
        return None
    x1, y1, x2, y2 = x, y, x + w, y + h
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        _bump(skipped, SKIP_OUTSIDE)
        return None
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    # Sub-pixel overshoot is annotation rounding, not a problem worth reporting.
    if max(cx1 - x1, cy1 - y1, x2 - cx2, y2 - cy2) > 0.5:
        _bump(skipped, NOTE_CLIPPED)
    return cx1, cy1, cx2, cy2


# --------------------------------------------------------------------------------------------
# Train/val split
# --------------------------------------------------------------------------------------------

def split_indices(records: Sequence[CCTImage], n_classes: int, val_fraction: float,
                  seed: int) -> Tuple[List[int], List[int]]:
    """Deterministic, sequence-consistent, roughly class-stratified train/val split.

    Images are grouped by ``seq_id`` (an image without one is its own group): frames of one
    trigger are near duplicates and must not straddle the split. Each group is ranked by a
    hash of ``(seed, group key)``, so a group's rank does not depend on the other groups and
    adding images barely moves existing ones between splits. Groups are stratified by their
    rarest class, and within that order a running quota sends a group to validation whenever
    that brings the validation share closer to ``val_fraction``, so every common class gets
    some validation images. Returns (train, val) indices in the original order.
    """
    if val_fraction <= 0 or not records:
        return list(range(len(records))), []
    groups: Dict[str, List[int]] = {}
    for i, r in enumerate(records):
        key = f"seq:{r.seq_id}" if r.seq_id is not None else f"image:{r.image_id!r}"
        groups.setdefault(key, []).append(i)
    if len(groups) < 2:
        return list(range(len(records))), []

    box_counts = np.zeros(max(n_classes, 1), dtype=np.int64)
    for r in records:
        for c in r.label[:, 0].astype(int):
            box_counts[c] += 1

    def stratum(idxs: List[int]) -> int:
        present = {int(c) for i in idxs for c in records[i].label[:, 0]}
        return min(present, key=lambda c: (box_counts[c], c)) if present else -1

    def rank(key: str) -> str:
        return hashlib.sha1(f"{seed}\0{key}".encode("utf-8")).hexdigest()

    ordered = sorted(groups, key=lambda k: (stratum(groups[k]), rank(k)))
    val_keys = set()
    seen = in_val = 0
    for k in ordered:
        n = len(groups[k])
        target = val_fraction * (seen + n)
        if abs(in_val + n - target) < abs(in_val - target):
            val_keys.add(k)
            in_val += n
        seen += n
    if not val_keys:  # tiny dataset: still give validation one group
        val_keys.add(min(groups, key=rank))
    if len(val_keys) == len(groups):
        val_keys.discard(max(groups, key=rank))
    val = sorted(i for k in val_keys for i in groups[k])
    val_set = set(val)
    return [i for i in range(len(records)) if i not in val_set], val


# --------------------------------------------------------------------------------------------
# Class mapping, format detection, registry
# --------------------------------------------------------------------------------------------

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


def _looks_like_cct(json_path: str) -> bool:
    """Cheap check: the three top-level keys appear in the first or last 64 KB.

    A CCT file is often megabytes and ``categories`` may come last, so read both ends
    instead of parsing. MegaDetector output (``detection_categories``) does not match,
    because the quoted key must be exactly ``"categories"``.
    """
    try:
        size = os.path.getsize(json_path)
        with open(json_path, "rb") as fh:
            head = fh.read(_PEEK)
            tail = b""
            if size > _PEEK:
                fh.seek(max(size - _PEEK, _PEEK))
                tail = fh.read(_PEEK)
    except OSError:
        return False
    text = head + tail
    return all(k in text for k in (b'"images"', b'"annotations"', b'"categories"'))


def _json_candidates(folder: str) -> List[str]:
    try:
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".json") and not n.startswith("."))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]


def find_cct_json(folder: str) -> str:
    """The CCT JSON of ``folder``: the only one, or the clearly named one among several."""
    matches = [p for p in _json_candidates(folder) if _looks_like_cct(p)]
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
                       f"({', '.join(os.path.basename(p) for p in matches)}); keep one there, or load a "
                       "specific one with ssd.data.cct.load_cct(json_path)")


def detect(path: str) -> bool:
    """True when ``path`` is a folder holding a COCO Camera Traps JSON (checked cheaply)."""
    if not os.path.isdir(path):
        return False
    return any(_looks_like_cct(p) for p in _json_candidates(path))


def open_cct(path: str, **kw: Any) -> CCTSplits:
    """``open_dataset`` entry point: find the JSON in ``path`` and its image folder, then load.

    Accepts ``load_cct``'s keywords; ``json_path`` overrides the search.
    """
    json_path = kw.pop("json_path", None) or find_cct_json(path)
    return load_cct(json_path, kw.pop("image_root", None), **kw)


register_format(KIND, detect, open_cct)
