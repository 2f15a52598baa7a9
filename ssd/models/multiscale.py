"""Multiscale anchors, as d2l teaches them: a few anchors per cell on coarser and coarser maps.

d2l's figure draws 4×4, 2×2 and 1×1 feature maps over one image: small anchors on the fine map
catch small objects, one large anchor per ratio on the 1×1 map covers the whole picture. The
anchors come from ``MultiBoxPrior`` (``ssd.models.anchors.multibox_prior``), the operator the
networks use. ``layer_table`` and ``count_formula`` turn any architecture's ``AnchorSet`` into the
PyTorch SSD300 tutorial's per-layer table (38²·4 + 19²·6 + … = 8732).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import numpy as np

from ssd.models.anchor_set import AnchorSet
from ssd.models.anchors import multibox_prior, parse_groups

# d2l 14.5 (multiscale object detection): map size → anchor size, ratios 1, 2, 0.5
D2L_MAPS: Sequence[int] = (4, 2, 1)
D2L_SIZES: Sequence[float] = (0.15, 0.4, 0.8)
D2L_RATIOS: Sequence[float] = (1.0, 2.0, 0.5)


@dataclass
class ScaleAnchors:
    """The anchors of one square feature map: ``boxes`` is ``(H, W, A, 4)`` normalized corners."""

    cells: int
    sizes: List[float]
    ratios: List[float]
    boxes: np.ndarray

    @property
    def per_cell(self) -> int:
        return int(self.boxes.shape[2])

    def total(self) -> int:
        return int(self.boxes.shape[0] * self.boxes.shape[1] * self.boxes.shape[2])


def multiscale_anchors(maps: Sequence[int] = D2L_MAPS, sizes: Sequence[Sequence[float]] = None,
                       ratios: Sequence[float] = D2L_RATIOS) -> List[ScaleAnchors]:
    """Anchors of each ``maps[i]``×``maps[i]`` map with ``sizes[i]`` and the shared ``ratios``."""
    if sizes is None:
        sizes = [[s] for s in D2L_SIZES]
    if len(sizes) != len(maps):
        raise ValueError(f"{len(maps)} feature maps but {len(sizes)} size groups")
    if any(not v > 0 for v in [*ratios, *(s for group in sizes for s in group)]):
        raise ValueError("sizes and ratios must be positive")   # a ratio 0 gives MultiBoxPrior infinite boxes
    out = []
    for n, group in zip(maps, sizes):
        if int(n) < 1:
            raise ValueError(f"a feature map needs at least 1×1 cells, got {n}")
        boxes = multibox_prior((int(n), int(n)), list(group), list(ratios))
        out.append(ScaleAnchors(int(n), [float(s) for s in group], [float(r) for r in ratios], boxes))
    return out


def parse_ratios(text: str) -> List[float]:
    """The one group of aspect ratios every map shares ('1, 2, 0.5'). Several groups ('1; 2') are
    refused, not cut to the first: the figure would silently leave the others out."""
    groups = parse_groups(text)
    if len(groups) > 1:
        raise ValueError("give one group of ratios (no ';'): every map uses the same ratios")
    return groups[0]


def layer_table(aset: AnchorSet) -> List[Dict[str, Any]]:
    """One row per predicting layer: feature-map size, anchors per cell, anchors of the layer."""
    return [{"layer": i, "feature map": f"{h}×{w}", "anchors per cell": int(a), "anchors": int(h * w * a)}
            for i, ((h, w), a) in enumerate(zip(aset.feature_maps, aset.per_cell))]


def count_formula(aset: AnchorSet) -> str:
    """``'38²·4 + 19²·6 + … = 8732'``: how the layers add up to the network's anchor count."""
    parts = [(f"{h}²" if h == w else f"{h}×{w}") + f"·{a}" for (h, w), a in zip(aset.feature_maps, aset.per_cell)]
    return " + ".join(parts) + f" = {aset.total()}"
