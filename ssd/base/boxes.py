"""Box geometry shared by anchors, augmentation, evaluation and the figures."""
from __future__ import annotations

import numpy as np


def box_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Pairwise IoU of corner boxes, ``(N, 4) x (M, 4) -> (N, M)``; empty boxes give 0."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
