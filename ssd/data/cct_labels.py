"""COCO Camera Traps entries to clean labels: usable images, boxes in the image, kept classes.

Real camera-trap metadata is messy, and this turns it into clean ``(K, 5)`` normalized labels
while *counting* what it drops (``ssd.data.skip_reasons``) instead of failing or silently losing
data: listed-but-missing files (ENA24 still lists the human images removed from its archive),
unreadable files, paths that leave the image folder, image-level labels without a box, boxes of
no size or outside the image, and categories left without any box.
"""
from __future__ import annotations

import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ssd.base.errors import DatasetError
from ssd.data.cct_json import require
from ssd.data.decoding import PIL_ERRORS, upright_size
from ssd.data.image_formats import open_image
from ssd.data.skip_reasons import (NOTE_CLIPPED, NOTE_SIZE_MISMATCH, SKIP_BAD_BOX, SKIP_CATEGORY_PREFIX,
                                   SKIP_CORRUPT, SKIP_CROWD, SKIP_DUPLICATE_IMAGE, SKIP_MALFORMED_BOX, SKIP_MISSING,
                                   SKIP_NO_BBOX, SKIP_OUTSIDE, SKIP_OUTSIDE_FOLDER, SKIP_UNKNOWN_CATEGORY,
                                   SKIP_UNKNOWN_IMAGE, NOTE_SAME_FILE)

_NAMED_ESCAPES = 5   # how many refused names the skip reason quotes

Box = Tuple[Any, float, float, float, float]   # original category id, x1, y1, x2, y2 in pixels


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
    # COCO crowd regions (iscrowd: 1), as ``label`` rows: never trained on, ignored by evaluation
    crowd: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))


def read_header(path: str, verify: bool) -> Tuple[int, int]:
    """Read upright (width, height) from the header without decoding pixels; ``verify`` adds PIL's check.

    Raises one of ``PIL_ERRORS`` when the file is not a readable image.
    """
    if os.path.getsize(path) == 0:
        raise OSError("file is empty")
    with open_image(path) as im:
        # Boxes are drawn on the EXIF-turned picture. A JPEG's EXIF is read with its header; other
        # formats read it from later chunks, after which verify() refuses: they are opened twice.
        size = upright_size(im) if im.format == "JPEG" or not verify else None
        if verify:
            im.verify()
    if size is None:
        with open_image(path) as im:
            size = upright_size(im)
    return int(size[0]), int(size[1])


def usable_images(images: List[Dict[str, Any]], image_root: str, check_images: bool,
                   skipped: Dict[str, int]):
    """Images present (always: a stat is cheap), readable (``check_images``) and inside the folder.

    Returns ``(usable by id, their order, image_of)``: ``image_of`` maps each listed id, as text
    (``1`` and ``"1"`` are one image: conversions write ids either way), to the usable image it
    names, or None for one dropped. A file listed again under another id is one image, and the
    later id's boxes join it. What is dropped or merged is counted in ``skipped``.
    """
    usable: Dict[Any, Dict[str, Any]] = {}     # image id -> {path, file_name, width, height, seq_id}
    order: List[Any] = []
    image_of: Dict[str, Any] = {}
    by_path: Dict[str, Any] = {}
    escapes: List[str] = []
    dir_cache: Dict[str, Any] = {}
    for im in images:
        iid = im["id"]
        if str(iid) in image_of:
            _bump(skipped, SKIP_DUPLICATE_IMAGE)
            continue
        image_of[str(iid)] = None
        if not _stays_inside(image_root, im["file_name"], dir_cache):
            escapes.append(im["file_name"])
            continue
        entry = _usable_entry(im, image_root, check_images, skipped, dir_cache)
        if entry is None:
            continue
        first = by_path.setdefault(os.path.normcase(os.path.normpath(entry["path"])), iid)
        image_of[str(iid)] = first
        if first != iid:
            _bump(skipped, NOTE_SAME_FILE)
            continue
        usable[iid] = entry
        order.append(iid)
    if escapes:
        _bump(skipped, _escape_reason(escapes), len(escapes))
    return usable, order, image_of


def _usable_entry(im: Dict[str, Any], image_root: str, check_images: bool, skipped: Dict[str, int],
                  dir_cache: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """One image's path, size and sequence, or None (missing or unreadable, counted)."""
    path = _resolve(image_root, im["file_name"], dir_cache)
    if path is None:
        _bump(skipped, SKIP_MISSING)
        return None
    w, h = _positive_int(im.get("width")), _positive_int(im.get("height"))
    if check_images or w is None or h is None:
        try:
            hw, hh = read_header(path, verify=check_images)
        except PIL_ERRORS:
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


def clean_boxes(json_path: str, annotations: List[Dict[str, Any]], usable: Dict[Any, Dict[str, Any]],
           order: List[Any], image_of: Dict[str, Any], cat_names: Dict[Any, str],
           skipped: Dict[str, int], crowd: Optional[Dict[Any, List[Box]]] = None) -> Dict[Any, List[Box]]:
    """Annotations → boxes in pixels, clipped, keyed by image id, still with original category ids.

    Ids are matched as text when they do not match as they are (``"1"`` is category 1). Crowd regions
    are never boxes to learn; with ``crowd`` given they are kept there, for evaluation to ignore."""
    boxes: Dict[Any, List[Tuple[Any, float, float, float, float]]] = {iid: [] for iid in order}
    cat_of = {str(c): c for c in cat_names}
    for i, ann in enumerate(annotations):
        require(json_path, "annotations", i, ann, ("image_id", "category_id"))
        cid = ann["category_id"] if ann["category_id"] in cat_names else cat_of.get(str(ann["category_id"]))
        if str(ann["image_id"]) not in image_of:
            _bump(skipped, SKIP_UNKNOWN_IMAGE)
            continue
        iid = image_of[str(ann["image_id"])]
        if iid is None:
            continue  # its image was already counted as missing/corrupt/refused
        if cid is None:
            _bump(skipped, SKIP_UNKNOWN_CATEGORY)
            continue
        if ann.get("iscrowd") in (1, True, "1"):
            _bump(skipped, SKIP_CROWD)   # COCO's own training leaves crowd regions out; its scoring ignores them
            _keep_crowd(crowd, iid, cid, ann.get("bbox"), usable[iid])
            continue
        bbox = ann.get("bbox")
        if bbox is None:
            _bump(skipped, SKIP_NO_BBOX)
            continue
        box = _clean_box(bbox, usable[iid]["width"], usable[iid]["height"], skipped)
        if box is not None:
            boxes[iid].append((cid,) + box)
    return boxes


def _keep_crowd(crowd: Optional[Dict[Any, List[Box]]], iid: Any, cid: Any, bbox: Any, image: Dict[str, Any]) -> None:
    """Add a crowd region to ``crowd`` (clipped like a box; its own clipping is not counted as a box's)."""
    if crowd is None or bbox is None:
        return
    box = _clean_box(bbox, image["width"], image["height"], {})
    if box is not None:
        crowd.setdefault(iid, []).append((cid,) + box)


def refuse_fractions(json_path: str, boxes: Dict[Any, List[Box]], usable: Dict[Any, Dict[str, Any]]) -> None:
    """Refuse a file whose every box lies within 1×1 pixel of its image's corner: fractions of the image.

    Why: COCO Camera Traps boxes are pixels; a converter that writes fractions (as YOLO does) would
    otherwise train a detector on boxes of one pixel, with nothing said.
    """
    corners = [max(b[3], b[4]) for bl in boxes.values() for b in bl]
    big_images = all(min(u["width"], u["height"]) > 16 for iid, u in usable.items() if boxes.get(iid))
    if len(corners) >= 3 and max(corners) <= 1.0 and big_images:
        raise DatasetError(f"{json_path}: every box lies within the first pixel of its image; the boxes look "
                           "written as fractions of the image, but COCO Camera Traps 'bbox' is "
                           "[x, y, width, height] in pixels (multiply by the image's width and height)")


def kept_classes(cat_names: Dict[Any, str], boxes, skipped: Dict[str, int]):
    """Categories with at least one usable box, ordered by original id: ``(names, index_of, mapping)``."""
    used = {b[0] for bl in boxes.values() for b in bl}
    kept_ids = sorted((cid for cid in cat_names if cid in used), key=_id_sort_key)
    for cid in sorted(cat_names, key=_id_sort_key):
        if cid not in used:
            _bump(skipped, SKIP_CATEGORY_PREFIX + cat_names[cid])
    index_of = {cid: i for i, cid in enumerate(kept_ids)}
    classes = _distinct_names([cat_names[cid] for cid in kept_ids], kept_ids)
    mapping = [{"index": i, "id": cid, "name": classes[i]} for i, cid in enumerate(kept_ids)]
    return classes, index_of, mapping


def _distinct_names(names: List[str], ids: List[Any]) -> List[str]:
    """Class names with a repeated name told apart by its category id ("deer (id 2)").

    Why: counts, per-class AP and model metadata are keyed by name; two categories both called
    "deer" (merged sets) would otherwise share one row and one count.
    """
    repeated = {n for n in names if names.count(n) > 1}
    return [f"{n} (id {cid})" if n in repeated else n for n, cid in zip(names, ids)]


def crowd_mapping(cat_names: Dict[Any, str], mapping: List[Dict[str, Any]],
                  crowd: Dict[Any, List[Box]]) -> List[Dict[str, Any]]:
    """``mapping`` followed by the categories that have crowd regions but no box, numbered after it.

    Why: such a category is no class to train, yet COCO's evaluation (pycocotools) keeps it: it has
    no positives (AP -1, left out of the mean) and a detection of it inside its region is ignored.
    Dropping it with its regions made a model's detections there false positives instead."""
    listed = {m["id"] for m in mapping}
    extra = sorted({b[0] for regions in crowd.values() for b in regions if b[0] not in listed and b[0] in cat_names},
                   key=_id_sort_key)
    return list(mapping) + [{"index": len(mapping) + j, "id": cid, "name": cat_names[cid]} for j, cid in enumerate(extra)]


def labelled_records(order: List[Any], usable: Dict[Any, Dict[str, Any]], boxes, index_of: Dict[Any, int],
                     crowd: Optional[Dict[Any, List[Box]]] = None,
                     crowd_index_of: Optional[Dict[Any, int]] = None) -> List[CCTImage]:
    """One ``CCTImage`` per usable image with its normalized ``(K, 5)`` label, and its crowd regions
    (``crowd_index_of``: their category → index, from ``crowd_mapping``; default ``index_of``)."""
    records: List[CCTImage] = []
    for iid in order:
        u = usable[iid]
        regions = _rows((crowd or {}).get(iid, []), u, index_of if crowd_index_of is None else crowd_index_of)
        records.append(CCTImage(iid, u["file_name"], u["path"], int(u["width"]), int(u["height"]), u["seq_id"],
                                _rows(boxes[iid], u, index_of), regions))
    return records


def _rows(boxes: List[Box], image: Dict[str, Any], index_of: Dict[Any, int]) -> np.ndarray:
    """Pixel boxes of kept classes as a normalized float32 ``(K, 5)`` label."""
    w, h = float(image["width"]), float(image["height"])
    rows = [[index_of[cid], x1 / w, y1 / h, x2 / w, y2 / h] for cid, x1, y1, x2, y2 in boxes if cid in index_of]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def _escape_reason(names: Sequence[str]) -> str:
    """The skip reason for refused paths, quoting the first few (repr: no control characters)."""
    quoted = ", ".join(repr(n[:80]) for n in names[:_NAMED_ESCAPES])
    more = f" and {len(names) - _NAMED_ESCAPES} more" if len(names) > _NAMED_ESCAPES else ""
    return f"{SKIP_OUTSIDE_FOLDER}: {quoted}{more}"


def _stays_inside(image_root: str, file_name: str, dir_cache: Optional[Dict[str, Any]] = None) -> bool:
    """False for an absolute path, a ``..`` escape or a symlink leading out of ``image_root``.

    Why: the JSON comes with the dataset, from anyone; ``../../etc/passwd`` must not be read.
    Each folder's real path is resolved once (``dir_cache``), then a file costs one ``lstat``:
    resolving every component of every name was most of the time a season took to load.
    """
    if "\0" in file_name or os.path.isabs(file_name) or file_name.startswith(("\\", "/")) \
            or re.match(r"^[A-Za-z]:", file_name):
        return False
    parts = [p for p in file_name.replace("\\", "/").split("/") if p]
    if ".." in parts:
        return False
    cache = {} if dir_cache is None else dir_cache
    root = _realpath(image_root, cache)
    if not parts:
        return True
    folder = _realpath(os.path.join(root, *parts[:-1]), cache)
    real = os.path.join(folder, parts[-1])
    if os.path.islink(real):
        real = os.path.realpath(real)
    return real == root or real.startswith(root + os.sep)


def _realpath(folder: str, cache: Dict[str, Any]) -> str:
    if "real:" + folder not in cache:
        cache["real:" + folder] = os.path.realpath(folder)
    return cache["real:" + folder]


def _resolve(image_root: str, file_name: str, dir_cache: Dict[str, Any]) -> Optional[str]:
    """Path of a listed file if it exists; tolerates Windows separators written into the JSON, and
    names whose case or Unicode form differs from the disk's (``IMG_1.jpg`` for ``IMG_1.JPG``, a
    precomposed "ü" for a Mac's decomposed one) when exactly one entry of the folder matches.

    ``dir_cache`` keeps each folder's resolution and listing, so a season of listed-but-missing
    files costs one stat each, not one per path component.
    """
    path = os.path.join(image_root, file_name)
    if os.path.isfile(path):
        return path
    *dirs, name = [p for p in file_name.replace("\\", "/").split("/") if p] or [""]
    folder = _resolve_folder(image_root, tuple(dirs), dir_cache)
    if folder is None:
        return None
    exact = os.path.join(folder, name)
    if exact != path and os.path.isfile(exact):
        return exact
    same = _listing(folder, dir_cache).get(_name_key(name), [])
    found = os.path.join(folder, same[0]) if len(same) == 1 else None
    return found if found is not None and os.path.isfile(found) else None


def _resolve_folder(image_root: str, dirs: Tuple[str, ...], dir_cache: Dict[str, Any]) -> Optional[str]:
    """The folder ``dirs`` names under ``image_root`` (exactly, or by ``_name_key``), or None; cached."""
    key = "dir:" + "/".join(dirs)
    if key not in dir_cache:
        parent = image_root if not dirs else _resolve_folder(image_root, dirs[:-1], dir_cache)
        found = None
        if parent is not None and dirs:
            found = os.path.join(parent, dirs[-1])
            if not os.path.isdir(found):
                same = _listing(parent, dir_cache).get(_name_key(dirs[-1]), [])
                found = os.path.join(parent, same[0]) if len(same) == 1 else None
        dir_cache[key] = found if dirs else image_root
    return dir_cache[key]


def _listing(folder: str, dir_cache: Dict[str, Any]) -> Dict[str, List[str]]:
    if "ls:" + folder not in dir_cache:
        dir_cache["ls:" + folder] = _names_by_key(folder)
    return dir_cache["ls:" + folder]


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _names_by_key(folder: str) -> Dict[str, List[str]]:
    """The files and folders of ``folder`` (links left out: none may lead out) by ``_name_key``."""
    names: Dict[str, List[str]] = {}
    try:
        entries = [e.name for e in os.scandir(folder)
                   if e.is_file(follow_symlinks=False) or e.is_dir(follow_symlinks=False)]
    except OSError:
        return names
    for n in entries:
        names.setdefault(_name_key(n), []).append(n)
    return names


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


id_sort_key = _id_sort_key   # the order class indices follow, for loaders that join several files
clean_box = _clean_box       # the box rules, for loaders of other formats (Pascal VOC) to share


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
