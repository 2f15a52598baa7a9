"""SSDlite's default boxes: torchvision's ``DefaultBoxGenerator`` in numpy, float32 like torch's.

Per feature map k of size f: cell centres ((i + 0.5) / f), then per cell the (w, h) pairs
(s_k, s_k), (s'_k, s'_k) with s'_k = √(s_k·s_k+1), and for each aspect ratio r (s_k√r, s_k/√r) and
(s_k/√r, s_k√r); with ``clip`` the pairs are clamped to [0, 1] while still (cx, cy, w, h). Corners
are ``centre ∓ wh/2`` (they may fall outside [0, 1]). The arithmetic follows torch's float32 steps,
so ``anchors × input size`` equals torchvision's pixel anchors bit for bit.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

import numpy as np

from ssd.models.anchor_set import AnchorSet
from ssd.models.anchors import format_groups
from ssd.models.ssdlite.spec import SSDliteSpec


def wh_pairs(spec: SSDliteSpec) -> List[np.ndarray]:
    """Per feature map the ``(A, 2)`` float32 (w, h) of one cell's anchors, clipped if ``spec.clip``."""
    scales = spec.scales()
    out = []
    for k, ratios in enumerate(spec.aspect_ratios):
        s, s_next = scales[k], math.sqrt(scales[k] * scales[k + 1])
        pairs = [[s, s], [s_next, s_next]]
        for r in ratios:
            pairs += [[s * math.sqrt(r), s / math.sqrt(r)], [s / math.sqrt(r), s * math.sqrt(r)]]
        wh = np.asarray(pairs, dtype=np.float32)
        out.append(np.clip(wh, 0.0, 1.0) if spec.clip else wh)
    return out


def default_boxes(spec: SSDliteSpec) -> np.ndarray:
    """All anchors ``(N, 4)`` float32 as normalized corners, in the heads' order (map, row, col, anchor)."""
    parts = []
    for (h, w), wh in zip(spec.feature_maps(), wh_pairs(spec)):
        cx = (np.arange(w, dtype=np.float32) + np.float32(0.5)) / np.float32(w)
        cy = (np.arange(h, dtype=np.float32) + np.float32(0.5)) / np.float32(h)
        gy, gx = np.meshgrid(cy, cx, indexing="ij")
        centres = np.repeat(np.stack([gx.ravel(), gy.ravel()], axis=1), len(wh), axis=0)
        sizes = np.tile(wh, (h * w, 1))
        half = np.float32(0.5) * sizes
        parts.append(np.concatenate([centres - half, centres + half], axis=1))
    return np.concatenate(parts).astype(np.float32)


def anchor_labels(spec: SSDliteSpec) -> List[List[str]]:
    """Per feature map, a label per anchor of a cell: its scale and ratio."""
    scales = spec.scales()
    labels = []
    for k, ratios in enumerate(spec.aspect_ratios):
        s = scales[k]
        lab = [f"s={s:.3g}, r=1", f"s=√({s:.3g}·{scales[k + 1]:.3g}), r=1"]
        for r in ratios:
            lab += [f"s={s:.3g}, r={r:g}", f"s={s:.3g}, r=1/{r:g}"]
        labels.append(lab)
    return labels


def anchors_meta(spec: SSDliteSpec) -> Dict[str, Any]:
    """The ``anchors`` section of meta.json (what the Anchors page and a reader need)."""
    maps = spec.feature_maps()
    per_cell = spec.anchors_per_cell()
    counts = [h * w * a for (h, w), a in zip(maps, per_cell)]
    return {"kind": "torchvision-default-boxes", "feature_maps": [list(m) for m in maps],
            "anchors_per_cell": per_cell, "per_scale": counts, "total": int(sum(counts)),
            "scales": [round(s, 6) for s in spec.scales()],
            "aspect_ratios": [list(r) for r in spec.aspect_ratios], "clip": spec.clip}


def ssdlite_anchor_set(spec: SSDliteSpec) -> AnchorSet:
    """The anchors and their layout for the Anchors page and coverage checks (no network built)."""
    maps, per_cell, scales = spec.feature_maps(), spec.anchors_per_cell(), spec.scales()
    rows = []
    for k, ((h, w), a) in enumerate(zip(maps, per_cell)):
        rows.append({"scale": k, "feature map": f"{h}×{w}", "cell (px)": round(spec.input_size / w, 1),
                     "sizes": f"{scales[k] * spec.input_size:.1f}px, "
                              f"{math.sqrt(scales[k] * scales[k + 1]) * spec.input_size:.1f}px",
                     "ratios": format_groups([[1.0] + [round(x, 3) for r in spec.aspect_ratios[k] for x in (r, 1 / r)]]),
                     "anchors per cell": a, "anchors": h * w * a})
    return AnchorSet(list(maps), per_cell, anchor_labels(spec), default_boxes(spec).astype(np.float64),
                     spec.input_size, rows, "torchvision")
