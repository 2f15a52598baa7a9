"""Comparing two detectors' outputs as sets: the same (class, box, score) each, whatever the order.

Two implementations of one network agree to ~1e-5, so detections whose scores tie to that
precision may come out in either order; a comparison by position would fail on a correct port.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np


def unmatched(a: Tuple[np.ndarray, np.ndarray, np.ndarray], b: Tuple[np.ndarray, np.ndarray, np.ndarray],
              box_tol: float, score_tol: float) -> List[int]:
    """Indices of ``a``'s detections ``(classes, scores, boxes)`` with no partner in ``b`` of the same
    class, box within ``box_tol`` and score within ``score_tol``; each partner is used once."""
    (ca, sa, ba), (cb, sb, bb) = a, b
    free = np.ones(len(cb), dtype=bool)
    missing = []
    for i in range(len(ca)):
        ok = free & (cb == ca[i]) & (np.abs(sb - sa[i]) <= score_tol) & (np.abs(bb - ba[i]).max(axis=1) <= box_tol)
        hits = np.flatnonzero(ok)
        if len(hits):
            free[hits[np.argmin(np.abs(sb[hits] - sa[i]))]] = False
        else:
            missing.append(i)
    return missing
