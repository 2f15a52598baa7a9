"""torchvision's SSD post-processing, for networks converted from it: per class, then NMS.

torchvision's ``SSD.postprocess_detections`` keeps, for every class separately, the scores above
``score`` (strictly) and of those the ``topk`` highest; clips the boxes to the image; runs NMS
within each class; and returns the ``detections`` best. GluonCV's decoder instead takes the 400
best (anchor, class) pairs over all classes before NMS and keeps 100, which on a busy picture
drops different boxes. A converted detector must match its source after NMS too, so its meta.json
says ``"postprocess": {"kind": "torchvision", ...}`` and its decoder calls :func:`per_class_detections`.

The NMS is MXNet's ``box_nms`` run on each class separately (greedy, by score, suppressing
IoU > threshold): the same rule as torchvision's ``batched_nms``.
"""
from __future__ import annotations

from typing import Any, Dict, List

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


def _candidates(scores: np.ndarray, boxes: np.ndarray, score: float, topk: int) -> np.ndarray:
    """``(C, k, 6)`` rows ``[class, score, x1, y1, x2, y2]`` of one image: per class its ``topk``
    best anchors, rows at or below ``score`` marked invalid (``-1``)."""
    n = scores.shape[0]
    by_class = scores.T                                   # (C, N)
    if n > topk:
        idx = np.argpartition(-by_class, topk - 1, axis=1)[:, :topk]
    else:
        idx = np.broadcast_to(np.arange(n), by_class.shape)
    rows = np.empty(idx.shape + (6,), np.float32)
    rows[..., 0] = np.arange(by_class.shape[0])[:, None]
    rows[..., 1] = np.take_along_axis(by_class, idx, axis=1)
    rows[..., 2:] = boxes[idx]
    rows[rows[..., 1] <= score] = -1
    return rows


def _nms_each_class(rows: np.ndarray, nms: float) -> np.ndarray:
    """NMS within each class (one batch row of ``box_nms`` per class: no cross-class pairs are
    compared), then every survivor, best first."""
    if 0 < nms < 1:
        from mxnet import nd

        rows = nd.contrib.box_nms(nd.array(rows), overlap_thresh=float(nms), topk=-1, valid_thresh=0.0,
                                  id_index=0, score_index=1, coord_start=2, force_suppress=True).asnumpy()
    flat = rows.reshape(-1, 6)
    flat = flat[flat[:, 0] >= 0]
    return flat[np.argsort(-flat[:, 1], kind="stable")]


def per_class_detections(scores: np.ndarray, boxes: np.ndarray, nms: float, floor: float,
                         post: Dict[str, Any]) -> List[Detections]:
    """``scores`` (B, N, C) class probabilities without background, ``boxes`` (B, N, 4) normalized
    corners → one ``(ids, scores, boxes)`` per image, best first, as torchvision returns them.

    ``post`` is the model's ``postprocess`` section; ``nms`` the IoU threshold (outside (0, 1):
    no NMS); ``floor`` drops what scores below it afterwards.
    """
    score, topk = float(post.get("score", SCORE)), int(post.get("topk_per_class", TOPK))
    keep_n = int(post.get("detections", DETECTIONS))
    out: List[Detections] = []
    for s, b in zip(scores, np.clip(boxes, 0.0, 1.0)):
        rows = _nms_each_class(_candidates(s, b, score, topk), nms)[:keep_n]
        rows = rows[rows[:, 1] >= floor]
        out.append((rows[:, 0].astype(np.int64), rows[:, 1].astype(np.float32), rows[:, 2:].astype(np.float32)))
    return out
