"""Pascal VOC XML datasets: the VOC2007/2012 devkit, CVAT's "PASCAL VOC 1.1" export, LabelImg folders.

Each image has one XML (``ssd.data.voc_xml`` reads it safely; ``ssd.data.voc_layout`` finds the
folders and split files). The XMLs are turned into the same entries a COCO file gives, so the COCO
loader's rules apply unchanged (``ssd.data.cct_labels``): a file name that leaves the image folder is
refused, a missing or unreadable picture is skipped and counted, a ``<size>`` that differs from the
upright picture is counted, boxes are clipped to the image, boxes of no size are dropped and counted,
and images without objects are kept as negatives.

VOC conventions, as GluonCV's ``VOCDetection`` reads them:

* Coordinates are 1-based pixels (``xmin`` 1 is the first column): 1 is subtracted from all four,
  so a box written 1..10 covers pixels 0..9, then divided by the image size as COCO boxes are.
* Class indices follow the class names in sorted order (the VOC classes' own order is alphabetical,
  and a sorted list does not depend on which file was read first); names are used as written, less
  surrounding spaces.
* ``difficult`` objects are trained on (GluonCV's default) and kept apart for evaluation
  (``difficult_masks``), which ignores them as VOC07 does. ``truncated`` is counted, nothing more.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from ssd.base.errors import DatasetError
from ssd.base.safe_paths import PathRefused, name_parts
from ssd.data.cct import CCTDataset
from ssd.data.cct_labels import CCTImage, clean_box, labelled_records, usable_images
from ssd.data.cct_split import split_indices
from ssd.data.coco_splits import NOTE_VAL_ONLY
from ssd.data.dataset import DEFAULT_VAL_FRACTION, DatasetSplits, register_format
from ssd.data.skip_reasons import (NOTE_DIFFICULT, NOTE_SIZE_MISMATCH, NOTE_SIZE_MISMATCH_XML, NOTE_TRUNCATED,
                                   SKIP_LISTED_NO_XML, SKIP_MALFORMED_BOX, SKIP_NO_NAME, SKIP_NOT_IN_SPLIT,
                                   SKIP_XML_NOT_VOC, SKIP_XML_REFUSED, SKIP_XML_UNREADABLE)
from ssd.data.voc_layout import TEST_VALIDATES, find_xml_folder, guess_image_root, split_ids, xml_files
from ssd.data.voc_xml import NotVOC, VOCAnnotation, XMLRefused, read_annotation

KIND = "pascal-voc"
# The XML names no picture: its id with these tried in turn (JPEG first, as VOC ships; then a phone's HEIC).
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".heic", ".HEIC", ".heif", ".avif")

Parsed = Tuple[str, str, VOCAnnotation]   # image id (the XML's stem), XML path, its content


class VOCDataset(CCTDataset):
    """A split of a VOC folder: a ``CCTDataset`` whose labels come from XMLs, with difficult flags.

    ``difficult_masks[i]`` flags the rows of item ``i``'s label that are difficult objects; evaluation
    reads it (``ssd.inference.evaluation``) and the decode-once cache passes it on."""

    def __init__(self, records: Sequence[CCTImage], classes: Sequence[str], name: str,
                 xml_paths: Sequence[str], difficult_masks: Sequence[np.ndarray]) -> None:
        super().__init__(records, classes, name)
        self.xml_paths = tuple(xml_paths)
        self.difficult_masks = [np.asarray(m, dtype=bool) for m in difficult_masks]

    def source_files(self) -> List[str]:
        """The XMLs, then the images: editing either makes the decode-once cache stale."""
        return list(self.xml_paths) + [r.path for r in self.records]


def detect(path: str) -> bool:
    """True for a folder with VOC annotation XMLs in it or in an ``Annotations/``-like subfolder."""
    return os.path.isdir(path) and find_xml_folder(path) is not None


def open_voc(path: str, *, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0,
             check_images: bool = True, **_: Any) -> DatasetSplits:
    """``open_dataset`` entry point: read every XML, check the images, split, and count what was left out.

    The split files of ``ImageSets/Main`` decide the split when they name a validation set
    (``voc_layout.split_ids``; ``val_fraction`` is then unused); otherwise ``val_fraction`` of the
    images are drawn as for a COCO file (``cct_split.split_indices``: stable for a seed, and no class
    left to validation alone)."""
    if not (0.0 <= float(val_fraction) < 1.0):
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    root = os.path.abspath(path)
    xml_folder = find_xml_folder(root)
    if xml_folder is None:
        raise DatasetError(f"no Pascal VOC annotation XMLs in {root} or its Annotations/ folder")
    skipped: Dict[str, int] = {}
    parsed = parse_all(xml_folder, xml_files(xml_folder, walk=xml_folder != root), skipped)
    chosen = split_ids(root, {iid for iid, _, _ in parsed})
    if chosen is not None:
        parsed = listed_only(parsed, chosen[0] | chosen[1], skipped)
    image_root = guess_image_root(root, xml_folder, [beside(iid, a.filename) for iid, _, a in parsed])
    names = [file_name(a, iid, image_root) for iid, _, a in parsed]
    records, classes, masks, xml_of = voc_records(parsed, names, image_root, check_images, skipped)
    if not records:
        raise DatasetError(f"no usable images in {root}: {len(parsed)} annotation XML(s), none with a readable "
                           f"image under {image_root} ({reasons(skipped)})")
    train_idx, val_idx = _split(records, len(classes), chosen, val_fraction, seed)
    note_val_only(records, classes, train_idx, val_idx, skipped)
    return voc_splits(root, (records, classes, masks, xml_of), train_idx, val_idx, skipped,
                      test_validates=chosen is not None and chosen[2] == TEST_VALIDATES)


def voc_splits(root: str, read: Tuple[List[CCTImage], List[str], List[np.ndarray], Dict[Any, str]],
               train_idx: List[int], val_idx: List[int], skipped: Dict[str, int],
               test_validates: bool) -> DatasetSplits:
    """The ``DatasetSplits`` of ``voc_records``'s output; with ``test_validates`` (VOC07's protocol) the
    validation split is the set's test split too (what ``eval --split test`` scores)."""
    records, classes, masks, xml_of = read
    stem = os.path.basename(root)
    parts = [VOCDataset([records[i] for i in idx], classes, f"{stem}/{split}",
                        [xml_of[records[i].image_id] for i in idx], [masks[i] for i in idx])
             for idx, split in ((train_idx, "train"), (val_idx, "test" if test_validates else "val"))]
    val = parts[1] if val_idx else None
    return DatasetSplits(train=parts[0], val=val, classes=list(classes), kind=KIND, root=root, skipped=skipped,
                         test=val if test_validates else None)


def parse_all(folder: str, paths: List[str], skipped: Dict[str, int]) -> List[Parsed]:
    """Each readable VOC XML as ``(id, path, annotation)``; the others counted by why.

    The id is the XML's name inside ``folder`` less ``.xml`` (``cam1/0001`` for ``Annotations/cam1/0001.xml``):
    what the split files list, and unique where two subfolders hold the same file name."""
    out: List[Parsed] = []
    for p in paths:
        iid = os.path.splitext(os.path.relpath(p, folder))[0].replace(os.sep, "/")
        try:
            out.append((iid, p, read_annotation(p)))
        except XMLRefused:
            _bump(skipped, SKIP_XML_REFUSED)
        except NotVOC:
            _bump(skipped, SKIP_XML_NOT_VOC)
        except (ET.ParseError, OSError, UnicodeError, ValueError):
            _bump(skipped, SKIP_XML_UNREADABLE)
    return out


def listed_only(parsed: List[Parsed], listed: Set[str], skipped: Dict[str, int]) -> List[Parsed]:
    """The annotations the split files name; the rest, and names without an XML, counted."""
    kept = [p for p in parsed if p[0] in listed]
    if len(kept) < len(parsed):
        _bump(skipped, SKIP_NOT_IN_SPLIT, len(parsed) - len(kept))
    missing = len(listed - {p[0] for p in parsed})
    if missing:
        _bump(skipped, SKIP_LISTED_NO_XML, missing)
    return kept


def voc_records(parsed: List[Parsed], names: List[str], image_root: str, check_images: bool,
                skipped: Dict[str, int]):
    """``(records, classes, difficult masks, xml path by id)`` for the images that are usable.

    ``names[i]`` is the picture of ``parsed[i]`` inside ``image_root``. The XMLs become COCO-style image
    entries so ``usable_images`` applies the COCO loader's checks (a name leaving the folder is refused)."""
    entries = [{"id": iid, "file_name": name, "width": a.width, "height": a.height}
               for (iid, _, a), name in zip(parsed, names)]
    usable, order, _ = usable_images(entries, image_root, check_images, skipped)
    if NOTE_SIZE_MISMATCH in skipped:
        skipped[NOTE_SIZE_MISMATCH_XML] = skipped.pop(NOTE_SIZE_MISMATCH)
    by_id = {iid: a for iid, _, a in parsed}
    boxes: Dict[Any, List[Tuple[Any, float, float, float, float]]] = {}
    flags: Dict[Any, List[bool]] = {}
    for iid in order:
        boxes[iid], flags[iid] = _boxes(by_id[iid], usable[iid]["width"], usable[iid]["height"], skipped)
    classes = sorted({b[0] for bl in boxes.values() for b in bl}, key=lambda n: (n.casefold(), n))
    index_of = {name: i for i, name in enumerate(classes)}
    records = labelled_records(order, usable, boxes, index_of)
    masks = [np.asarray(flags[r.image_id], dtype=bool) for r in records]
    return records, classes, masks, {iid: p for iid, p, _ in parsed}


def file_name(ann: VOCAnnotation, iid: str, image_root: str) -> str:
    """The picture an XML describes: its ``<filename>``, else (empty, or not there) ``<id>.jpg`` or another
    picture named like the XML, as GluonCV finds ``JPEGImages/<id>.jpg``. A ``<filename>`` that leaves the
    folder is kept as written, so the loader refuses and counts it instead of quietly using another file. An XML
    in a subfolder (``Annotations/cam1/``) describes a picture in the same subfolder of the pictures' folder."""
    if ann.filename:
        try:
            name_parts(ann.filename)
        except PathRefused:
            return ann.filename
        for name in dict.fromkeys((ann.filename, beside(iid, ann.filename))):
            if os.path.isfile(os.path.join(image_root, name)):
                return name
    for ext in _IMAGE_EXTS:
        if os.path.isfile(os.path.join(image_root, iid + ext)):
            return iid + ext
    return beside(iid, ann.filename) if ann.filename else iid + ".jpg"


def beside(iid: str, filename: str) -> str:
    """``filename`` in the subfolder the XML ``iid`` is in (``cam1/0001`` and ``0001.jpg`` give ``cam1/0001.jpg``)."""
    sub = iid.rpartition("/")[0]
    return f"{sub}/{filename}" if sub and filename else filename


def _boxes(ann: VOCAnnotation, width: int, height: int, skipped: Dict[str, int]):
    """The objects of one XML as clipped 0-based pixel boxes ``(name, x1, y1, x2, y2)``, and their difficult flags."""
    boxes, flags = [], []
    for obj in ann.objects:
        if not obj.name:
            _bump(skipped, SKIP_NO_NAME)
            continue
        if obj.box is None:
            _bump(skipped, SKIP_MALFORMED_BOX)
            continue
        xmin, ymin, xmax, ymax = (v - 1.0 for v in obj.box)       # 1-based -> 0-based, as GluonCV
        box = clean_box([xmin, ymin, xmax - xmin, ymax - ymin], width, height, skipped)
        if box is None:
            continue
        boxes.append((obj.name,) + box)
        flags.append(obj.difficult)
        if obj.difficult:
            _bump(skipped, NOTE_DIFFICULT)
        if obj.truncated:
            _bump(skipped, NOTE_TRUNCATED)
    return boxes, flags


def _split(records: List[CCTImage], n_classes: int, chosen: Optional[Tuple[Set[str], Set[str], str]],
           val_fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    """Indices of the training and validation records: from the split files, else drawn."""
    if chosen is not None:
        train_ids, val_ids, _ = chosen
        return ([i for i, r in enumerate(records) if r.image_id in train_ids],
                [i for i, r in enumerate(records) if r.image_id in val_ids])
    return split_indices(records, n_classes, val_fraction, seed)


def note_val_only(records: List[CCTImage], classes: List[str], train_idx: List[int], val_idx: List[int],
                   skipped: Dict[str, int]) -> None:
    """Count the classes boxed only in validation (split files can do that): evaluation shows them at AP 0."""
    def seen(idx: List[int]) -> Set[int]:
        return {int(c) for i in idx for c in records[i].label[:, 0]}

    for c in sorted(seen(val_idx) - seen(train_idx)):
        _bump(skipped, NOTE_VAL_ONLY + classes[c])


def reasons(skipped: Dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) or "nothing found"


def _bump(counts: Dict[str, int], reason: str, n: int = 1) -> None:
    counts[reason] = counts.get(reason, 0) + n


register_format(KIND, detect, open_voc)
