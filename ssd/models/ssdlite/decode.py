"""SSDlite's post-processing, as torchvision's ``SSD.postprocess_detections`` does it, in numpy.

Per image: softmax over the classes; boxes decoded from the offsets with the box coder (weights
10, 10, 5, 5, log-sizes clamped at log(1000/16)) and clipped to the image; then *per class*: the
scores above the floor, the ``topk`` best of them, NMS among them; finally every class's survivors
sorted by score, the first ``detections`` kept. Unlike ``MultiBoxDetection`` (one class per
anchor), an anchor can yield boxes for several classes, as in torchvision.

The arithmetic follows torch's float32 steps in the input's pixels (anchors × input size, then the
box coder, then ``clip_boxes_to_image``, then torchvision's NMS kernel's IoU), so the same raw
outputs give the same boxes and the same suppressions; boxes are returned normalized.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from ssd.models.recipe import Detections
from ssd.models.ssdlite.spec import SSDliteSpec


@dataclass(frozen=True)
class PostProcess:
    """The numbers of the post-processing (``SSDliteSpec``'s; NMS and the floor come per call)."""

    input_size: int
    box_weights: Tuple[float, float, float, float]
    box_clamp: float
    topk: int
    detections: int

    @classmethod
    def of(cls, spec: SSDliteSpec) -> "PostProcess":
        return cls(spec.input_size, tuple(spec.box_weights), spec.box_clamp, spec.topk_candidates,
                   spec.detections_per_img)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float32."""
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def decode_boxes(offsets: np.ndarray, anchors_px: np.ndarray, pp: PostProcess) -> np.ndarray:
    """torchvision's ``BoxCoder.decode_single`` then ``clip_boxes_to_image``: ``(N, 4)`` pixel corners."""
    f32 = np.float32
    wx, wy, ww, wh = (f32(w) for w in pp.box_weights)
    widths = anchors_px[:, 2] - anchors_px[:, 0]
    heights = anchors_px[:, 3] - anchors_px[:, 1]
    ctr_x = anchors_px[:, 0] + f32(0.5) * widths
    ctr_y = anchors_px[:, 1] + f32(0.5) * heights
    dx, dy = offsets[:, 0] / wx, offsets[:, 1] / wy
    dw = np.minimum(offsets[:, 2] / ww, f32(pp.box_clamp))
    dh = np.minimum(offsets[:, 3] / wh, f32(pp.box_clamp))
    pred_ctr_x, pred_ctr_y = dx * widths + ctr_x, dy * heights + ctr_y
    half_w, half_h = f32(0.5) * (np.exp(dw) * widths), f32(0.5) * (np.exp(dh) * heights)
    boxes = np.stack([pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h], axis=1)
    return np.clip(boxes, f32(0), f32(pp.input_size))


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
    boxes of those rows that overlap it by IoU > threshold, computed as torchvision's kernel does
    (same float32 operations in the same order). Returns the kept mask.
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


def postprocess(logits: np.ndarray, offsets: np.ndarray, anchors: np.ndarray, pp: PostProcess,
                nms: float, floor: float) -> Detections:
    """One image: ``logits`` (N, C+1), ``offsets`` (N, 4), ``anchors`` (N, 4) normalized corners →
    ``(class ids (0-based), scores, boxes normalized)``, best first."""
    size = np.float32(pp.input_size)
    boxes = decode_boxes(offsets.astype(np.float32), anchors.astype(np.float32) * size, pp)
    scores = softmax(logits.astype(np.float32))[:, 1:]
    classes, idx = class_candidates(scores, floor, pp.topk)
    if not len(classes):
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    cand_boxes = boxes[safe]                                           # (C', K, 4)
    cand_scores = np.where(valid, scores[safe, classes[:, None]], -np.inf)
    if 0 < nms < 1:
        valid = nms_per_class(cand_boxes, valid, nms)
    rows, cols = np.nonzero(valid)
    s = cand_scores[rows, cols]
    order = np.argsort(-s, kind="stable")[:pp.detections]
    rows, cols = rows[order], cols[order]
    return (classes[rows].astype(np.int64), s[order].astype(np.float32),
            (cand_boxes[rows, cols] / size).astype(np.float32))


def decoder_for(spec: SSDliteSpec):
    """The ``Decoder`` of an SSDlite net, live or exported (both return anchors, logits, offsets)."""
    pp = PostProcess.of(spec)

    def decode(net, x, nms: float, floor: float) -> List[Detections]:
        anchors, cls_preds, box_preds = net(x)
        anchors = anchors.asnumpy().reshape(-1, 4)
        logits = cls_preds.asnumpy()
        offsets = box_preds.asnumpy().reshape(logits.shape[0], -1, 4)
        return [postprocess(logits[i], offsets[i], anchors, pp, nms, floor) for i in range(logits.shape[0])]

    return decode
