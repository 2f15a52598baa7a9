"""torchvision's SSD post-processing, for networks converted from it: per class, then NMS.

torchvision's ``SSD.postprocess_detections`` keeps, for every class separately, the scores above
``score`` (strictly) and of those the ``topk`` highest; clips the boxes to the image; runs NMS
within each class; and returns the ``detections`` best. GluonCV's decoder instead takes the 400
best (anchor, class) pairs over all classes before NMS and keeps 100, which on a busy picture
drops different boxes. A converted detector must match its source after NMS too: SSD300's meta.json
says ``"postprocess": {"kind": "torchvision", ...}`` and its decoder calls :func:`per_class_detections`;
SSDlite's decoder (``ssd.models.torchvision_decode``) calls :func:`per_class`.

A floor above ``score`` (the results file's 0.005, say) is applied when candidates are picked, not
after NMS: the result is the same (a box is only ever suppressed by a better one of its class, and
the top-k and the final cut keep the best first), and far fewer candidates reach NMS.

The NMS is greedy within each class, every class at once (numpy), IoU computed with the same
float32 operations in the same order as torchvision's CPU kernel, a box dropped when IoU >
threshold. (MXNet's ``box_nms`` computes the same, but its OpenMP loops stall on a busy 2-core
machine: 108 ms against 4 ms here for the same 2,800 candidates.)
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from ssd.models.recipe import Detections

KIND = "torchvision"
SCORE = 0.01
TOPK = 400
DETECTIONS = 200


def torchvision_postprocess(score: float = SCORE, topk: int = TOPK, detections: int = DETECTIONS) -> Dict[str, Any]:
    """The ``postprocess`` section of meta.json for a detector converted from torchvision."""
    return {"kind": KIND, "score": float(score), "topk_per_class": int(topk), "detections": int(detections)}


def is_torchvision(meta: Dict[str, Any]) -> bool:
    return (meta.get("postprocess") or {}).get("kind") == KIND


def class_candidates(scores: np.ndarray, floor: float, topk: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per class (column of ``scores`` (N, C)) its best anchors above ``floor``, best first:
    ``(classes (C',), anchor indices (C', K) padded with -1)``, only classes with a candidate.

    Work follows the candidates, not the N × C scores: a class with more than ``topk`` keeps only
    scores from its ``topk``-th best up (one partition of its column), then the survivors are
    sorted by class and score in one pass.
    """
    above = scores > np.float32(floor)
    heavy = np.flatnonzero(above.sum(axis=0) > topk)
    if len(heavy):
        n = scores.shape[0]
        kth = np.partition(scores[:, heavy], n - topk, axis=0)[n - topk]
        above[:, heavy] &= scores[:, heavy] >= kth
    cls_of, anchor = np.nonzero(above.T)                               # class-major
    if not len(cls_of):
        return cls_of, np.zeros((0, 0), dtype=np.int64)
    order = np.argsort(cls_of * 2.0 - scores[anchor, cls_of], kind="stable")   # by class, best first
    cls_of, anchor = cls_of[order], anchor[order]
    classes, start, counts = np.unique(cls_of, return_index=True, return_counts=True)
    row = np.repeat(np.arange(len(classes)), counts)
    rank = np.arange(len(cls_of)) - start[row]
    keep = rank < topk                                                 # ties at a heavy class's cut
    out = np.full((len(classes), min(int(counts.max()), int(topk))), -1, dtype=np.int64)
    out[row[keep], rank[keep]] = anchor[keep]
    return classes, out


def nms_per_class(boxes: np.ndarray, valid: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS in each row at once: ``boxes`` ``(C, K, 4)`` sorted best first, ``valid`` ``(C, K)``.

    Step j keeps box j of every row where no better box suppressed it, and suppresses the later
    boxes of those rows that overlap it by IoU > threshold, computed as torchvision's kernel does.
    Returns the kept mask.
    """
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[..., i]) for i in range(4))
    areas = (x2 - x1) * (y2 - y1)
    suppressed = ~valid
    zero, thr = np.float32(0), np.float32(iou_threshold)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(boxes.shape[1] - 1):
            rows = np.flatnonzero(~suppressed[:, j])
            if not len(rows):
                continue
            later = slice(j + 1, None)
            bx1, by1, bx2, by2 = (v[rows, j, None] for v in (x1, y1, x2, y2))
            w = np.maximum(zero, np.minimum(bx2, x2[rows, later]) - np.maximum(bx1, x1[rows, later]))
            h = np.maximum(zero, np.minimum(by2, y2[rows, later]) - np.maximum(by1, y1[rows, later]))
            inter = w * h
            over = inter / (areas[rows, j, None] + areas[rows, later] - inter) > thr
            suppressed[rows, later] |= over
    return ~suppressed


def per_class(scores: np.ndarray, boxes: np.ndarray, floor: float, topk: int, nms: float,
              detections: int) -> Detections:
    """One image: ``scores`` (N, C) class probabilities without background, ``boxes`` (N, 4) corners
    (any unit; returned in it) → ``(class ids, scores, boxes)``, best first, at most ``detections``.
    ``nms`` outside (0, 1): no NMS."""
    classes, idx = class_candidates(scores, floor, topk)
    if not len(classes):
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    cand_boxes = boxes[safe]                                           # (C', K, 4)
    cand_scores = scores[safe, classes[:, None]]
    if 0 < nms < 1:
        valid = nms_per_class(cand_boxes, valid, nms)
    rows, cols = np.nonzero(valid)
    s = cand_scores[rows, cols]
    order = np.argsort(-s, kind="stable")[:int(detections)]
    rows, cols = rows[order], cols[order]
    return classes[rows].astype(np.int64), s[order].astype(np.float32), cand_boxes[rows, cols].astype(np.float32)


def per_class_detections(scores: np.ndarray, boxes: np.ndarray, nms: float, floor: float,
                         post: Dict[str, Any]) -> List[Detections]:
    """``scores`` (B, N, C) class probabilities without background, ``boxes`` (B, N, 4) normalized
    corners → one ``(ids, scores, boxes)`` per image, best first, as torchvision returns them.

    ``post`` is the model's ``postprocess`` section; ``nms`` the IoU threshold (outside (0, 1):
    no NMS); ``floor`` raises the candidates' threshold above the model's own ``score``. Pure numpy:
    the MXNet Detector and the ONNX engine (``ssd.models.array_decode``) both call it.
    """
    score, topk = float(post.get("score", SCORE)), int(post.get("topk_per_class", TOPK))
    keep_n = int(post.get("detections", DETECTIONS))
    return [per_class(s.astype(np.float32), np.clip(b, 0.0, 1.0).astype(np.float32), max(score, floor), topk,
                      nms, keep_n) for s, b in zip(scores, boxes)]
