"""Evaluation on one image: each detection a true or false positive, each missed object a false negative.

The rule is VOC's, as ``ssd.inference.evaluation.evaluate`` applies it through GluonCV's
``VOC07MApMetric``: per class, detections in descending score (the metric's own ordering), each
taking the ground-truth box it overlaps most; it is a true positive when that IoU reaches the
threshold and the box is not already taken, otherwise a false positive. Boxes are in pixels with
VOC's integer convention (``+1`` on the far corner), as the metric does. ``tests/test_learn.py``
checks these flags against the metric's own on the same image.

``operating_point`` sums the same matches over a split at one confidence: since a detection's
match depends only on higher-scored ones, that is the point of the split's PR curve at that
confidence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ssd.base.boxes import box_iou
from ssd.base.errors import ImageError


@dataclass
class ImageMatch:
    """Per detection: ``tp`` flag and best IoU; per ground-truth box: ``found`` flag."""

    det_tp: np.ndarray           # (D,) bool
    det_iou: np.ndarray          # (D,) best IoU with a box of its class (0 when none)
    gt_found: np.ndarray         # (G,) bool
    gt_classes: np.ndarray       # (G,) int

    @property
    def tp(self) -> int:
        return int(self.det_tp.sum())

    @property
    def fp(self) -> int:
        return int(len(self.det_tp) - self.det_tp.sum())

    @property
    def fn(self) -> int:
        return int(len(self.gt_found) - self.gt_found.sum())


def match_detections(class_ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray, gt_classes: np.ndarray,
                     gt_boxes: np.ndarray, iou_thresh: float = 0.5) -> ImageMatch:
    """VOC matching of one image's detections (pixels) against its ground truth (pixels)."""
    ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    gcls = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
    gboxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    tp = np.zeros(len(ids), dtype=bool)
    best = np.zeros(len(ids))
    found = np.zeros(len(gcls), dtype=bool)
    for c in np.unique(np.concatenate([ids, gcls])):
        det_idx = np.flatnonzero(ids == c)
        det_idx = det_idx[scores[det_idx].argsort()[::-1]]      # VOC07MApMetric's order
        gt_idx = np.flatnonzero(gcls == c)
        if not len(det_idx) or not len(gt_idx):
            continue
        iou = box_iou(_voc(boxes[det_idx]), _voc(gboxes[gt_idx]))
        for d, row in zip(det_idx, iou):
            g = int(row.argmax())
            best[d] = row[g]
            if row[g] >= iou_thresh and not found[gt_idx[g]]:
                tp[d] = True
                found[gt_idx[g]] = True
    return ImageMatch(tp, best, found, gcls)


def _voc(boxes: np.ndarray) -> np.ndarray:
    """VOC's integer pixel convention, as the metric applies it: the far corner counts (+1)."""
    out = boxes.copy()
    out[:, 2:] += 1
    return out


def label_pixels(label: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    """A normalized ``(K, 5)`` label → (classes, boxes in pixels), padding rows dropped."""
    lab = np.asarray(label, dtype=np.float32).reshape(-1, 5)
    lab = lab[lab[:, 0] >= 0]
    return lab[:, 0].astype(np.int64), lab[:, 1:5] * np.array([width, height, width, height], np.float32)


@dataclass
class SplitDetections:
    """Every candidate of every image of a split, with its ground truth, in pixels."""

    detections: List[Tuple[np.ndarray, np.ndarray, np.ndarray]]   # per image: ids, scores, boxes
    ground_truth: List[Tuple[np.ndarray, np.ndarray]]            # per image: classes, boxes
    classes: List[str]
    indices: List[int]                                           # per image: its index in the dataset


def split_detections(detector, dataset, limit: int, nms: float, floor: float, batch_size: int = 16) -> SplitDetections:
    """Detect once on the first ``limit`` images (as ``evaluate`` does) so any confidence is free."""
    from ssd.data.preprocess import resize

    dets, gts, indices = [], [], []
    n = min(int(limit), len(dataset))
    for start in range(0, n, batch_size):
        items, idx = [], []
        for i in range(start, min(n, start + batch_size)):
            try:
                items.append(dataset[i])
                idx.append(i)
            except ImageError:          # counted as skipped by evaluate; nothing to match here
                continue
        if not items:
            continue
        indices.extend(idx)
        batch = np.stack([resize(img, detector.input_size) for img, _ in items])
        for (img, lab), (ids, scores, boxes) in zip(items, detector.predict_arrays(batch, nms=nms, floor=floor)):
            h, w = img.shape[:2]
            dets.append((ids, scores, boxes * np.array([w, h, w, h], np.float32)))
            gts.append(label_pixels(lab, w, h))
    return SplitDetections(dets, gts, list(detector.classes), indices)


@dataclass
class ImageEval:
    """One image of a split at one confidence: its detections at or above it (pixels), their labels
    ("class score"), and their VOC match against the image's ground truth."""

    class_ids: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    labels: List[str]
    match: ImageMatch
    gt_boxes: np.ndarray

    def counts(self, classes: Sequence[str]) -> List[Dict[str, int]]:
        """Per class: TP, FP, FN and objects (``counts_table``)."""
        return counts_table(self.match, self.class_ids, classes)


def image_eval(split: SplitDetections, index: int, confidence: float, iou_thresh: float = 0.5) -> ImageEval:
    """Image ``index`` of ``split``: the detections scoring ≥ ``confidence`` matched at ``iou_thresh``."""
    ids, scores, boxes = split.detections[index]
    gcls, gboxes = split.ground_truth[index]
    keep = scores >= confidence
    labels = [f"{split.classes[int(c)]} {s:.2f}" for c, s in zip(ids[keep], scores[keep])]
    match = match_detections(ids[keep], scores[keep], boxes[keep], gcls, gboxes, iou_thresh)
    return ImageEval(ids[keep], scores[keep], boxes[keep], labels, match, gboxes)


def operating_point(split: SplitDetections, confidence: float, iou_thresh: float = 0.5) -> Dict[str, Dict[str, float]]:
    """Per class: precision and recall of the split's detections scoring ≥ ``confidence``."""
    tp = np.zeros(len(split.classes))
    det = np.zeros(len(split.classes))
    pos = np.zeros(len(split.classes))
    for (ids, scores, boxes), (gcls, gboxes) in zip(split.detections, split.ground_truth):
        keep = scores >= confidence
        m = match_detections(ids[keep], scores[keep], boxes[keep], gcls, gboxes, iou_thresh)
        np.add.at(tp, ids[keep][m.det_tp], 1)
        np.add.at(det, ids[keep], 1)
        np.add.at(pos, gcls, 1)
    return {name: {"precision": float(tp[c] / det[c]) if det[c] else 1.0,
                   "recall": float(tp[c] / pos[c]) if pos[c] else 0.0,
                   "tp": int(tp[c]), "detections": int(det[c]), "objects": int(pos[c])}
            for c, name in enumerate(split.classes)}


def counts_table(match: ImageMatch, class_ids: Sequence[int], classes: Sequence[str]) -> List[Dict[str, int]]:
    """Per class: TP, FP, FN and ground-truth count of one image."""
    ids = np.asarray(class_ids, dtype=np.int64)
    rows = []
    for c, name in enumerate(classes):
        mine, gt = ids == c, match.gt_classes == c
        if not mine.any() and not gt.any():
            continue
        tp = int(match.det_tp[mine].sum())
        rows.append({"class": name, "TP": tp, "FP": int(mine.sum()) - tp,
                     "FN": int(gt.sum() - match.gt_found[gt].sum()), "objects": int(gt.sum())})
    return rows


def start_image(split: SplitDetections, confidence: float, iou_thresh: float = 0.5) -> int:
    """The image a person should first see: the first that shows the most of TP, FP and FN at these
    thresholds (all three where the split has such an image).

    Why: opening on a clean hit (or a plain miss) shows one of the three outcomes the page explains.
    """
    def kinds(i: int) -> int:
        m = image_eval(split, i, confidence, iou_thresh).match
        return int(m.tp > 0) + int(m.fp > 0) + int(m.fn > 0)

    best, best_kinds = 0, -1
    for i in range(len(split.detections)):
        k = kinds(i)
        if k > best_kinds:
            best, best_kinds = i, k
        if k == 3:
            break
    return best
