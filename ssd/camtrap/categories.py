"""MegaDetector's three categories from a COCO or VOC detector: animal, person, vehicle.

Camera-trap tools (Timelapse, MegaDetector's own post-processing) expect ``animal`` / ``person`` /
``vehicle`` with ids "1" / "2" / "3". A COCO detector says ``dog`` and ``cat`` (often both, for
the same fox): mapping its classes and merging overlapping boxes *across* the classes mapped to
one category gives one ``animal`` box per animal, as MegaDetector would report it. Classes with
no category (chair, bottle…) are dropped.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ssd.base.boxes import box_iou
from ssd.base.errors import SSDError
from ssd.inference.detector import RawDetections

MEGADETECTOR_CLASSES: List[str] = ["animal", "person", "vehicle"]   # ids "1", "2", "3" in the JSON
CATEGORY_SCHEMES = ("none", "megadetector")
MERGE_IOU = 0.5

_ANIMALS = {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
_PEOPLE = {"person"}
_VEHICLES = {"bicycle", "car", "motorcycle", "motorbike", "airplane", "aeroplane", "bus", "train", "truck", "boat"}


def megadetector_category(class_name: str) -> Optional[str]:
    """``animal``, ``person``, ``vehicle`` or None (dropped) for a COCO or VOC class name."""
    name = str(class_name).strip().lower()
    if name in _ANIMALS:
        return "animal"
    if name in _PEOPLE:
        return "person"
    if name in _VEHICLES:
        return "vehicle"
    return None


def category_map(classes: Sequence[str]) -> Dict[int, int]:
    """``{class id: MegaDetector category index}`` for the classes that have one.

    ``SSDError`` when none has: mapping a Pikachu detector would silently drop every box.
    """
    out = {i: MEGADETECTOR_CLASSES.index(cat) for i, c in enumerate(classes)
           if (cat := megadetector_category(c)) is not None}
    if not out:
        raise SSDError(f"MegaDetector categories need a COCO or VOC detector (classes such as person, dog, car); "
                       f"this model's classes ({', '.join(map(str, classes[:5]))}) map to none of animal, "
                       "person, vehicle")
    return out


def _merge(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by a greedy NMS over boxes already sorted by descending score."""
    keep: List[int] = []
    suppressed = np.zeros(len(scores), bool)
    for i in range(len(scores)):
        if suppressed[i]:
            continue
        keep.append(i)
        if i + 1 < len(scores):
            overlap = box_iou(boxes[i:i + 1], boxes[i + 1:])[0]
            suppressed[i + 1:] |= overlap >= iou
    return np.asarray(keep, dtype=np.int64)


def to_megadetector(raw: RawDetections, merge_iou: float = MERGE_IOU) -> RawDetections:
    """``raw`` with classes exactly ``["animal", "person", "vehicle"]``: mapped, merged, sorted.

    Of boxes mapped to the same category that overlap with IoU ≥ ``merge_iou``, only the
    highest-scoring one stays (the ``dog`` at 0.6 and the ``cat`` at 0.3 on one fox become one
    ``animal`` at 0.6). Boxes of different categories never suppress each other.
    """
    mapping = category_map(raw.classes)
    ids = np.asarray(raw.class_ids, dtype=np.int64)
    mapped = np.array([mapping.get(int(c), -1) for c in ids], dtype=np.int64)
    scores = np.asarray(raw.scores, dtype=np.float32)
    boxes = np.asarray(raw.boxes, dtype=np.float32).reshape(-1, 4)
    out_ids, out_scores, out_boxes = [], [], []
    for cat in range(len(MEGADETECTOR_CLASSES)):
        idx = np.flatnonzero(mapped == cat)
        if not len(idx):
            continue
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        kept = idx[_merge(boxes[idx], scores[idx], merge_iou)]
        out_ids.append(np.full(len(kept), cat, np.int64))
        out_scores.append(scores[kept])
        out_boxes.append(boxes[kept])
    if out_ids:
        ids_, sc, bx = np.concatenate(out_ids), np.concatenate(out_scores), np.concatenate(out_boxes)
        order = np.argsort(-sc, kind="stable")
        ids_, sc, bx = ids_[order], sc[order], bx[order]
    else:
        ids_, sc, bx = np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
    return RawDetections(ids_, sc, bx, raw.image_size, list(MEGADETECTOR_CLASSES), raw.name, dict(raw.timings_ms))


def apply_categories(raw: RawDetections, scheme: Optional[str]) -> RawDetections:
    """``raw`` unchanged for ``none``, mapped for ``megadetector``; ``SSDError`` for anything else."""
    s = (scheme or "none").strip().lower()
    if s == "none":
        return raw
    if s == "megadetector":
        return to_megadetector(raw)
    raise SSDError(f"unknown category scheme {scheme!r}; use one of {', '.join(CATEGORY_SCHEMES)}")


def supports_megadetector(classes: Sequence[str]) -> bool:
    """Whether any class of a model maps to animal, person or vehicle (the page shows the switch then)."""
    return any(megadetector_category(c) is not None for c in classes)


def categorize_results(results: Sequence, scheme: Optional[str]) -> List:
    """The app's ``DetectedImage`` list with each ``raw`` mapped (failed images stay as they are).

    Mapping is numpy on cached candidates: switching it on or off never runs the network again.
    """
    import dataclasses

    if (scheme or "none").strip().lower() == "none":
        return list(results)
    return [dataclasses.replace(r, raw=apply_categories(r.raw, scheme)) if r.raw is not None else r
            for r in results]


def run_categories(scheme: str, model_classes: Sequence[str]):
    """``(transform, classes)`` a batch run writes for ``--categories``: ``(None, None)`` (the
    model's own) unless MegaDetector's are asked for. Checked before any image is read: a model
    with no animal, person or vehicle class is refused here."""
    if scheme != "megadetector":
        return None, None
    category_map(model_classes)
    return (lambda raw: apply_categories(raw, "megadetector")), list(MEGADETECTOR_CLASSES)
