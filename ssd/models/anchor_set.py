"""``AnchorSet``: every anchor of a network with its layout, whatever made it.

One shape for TinySSD (``MultiBoxPrior``, described by sizes and ratios) and GluonCV SSDs (their
own anchor generators): feature maps × cells × anchors per cell, in the order the heads predict
them. The helpers after it (cell tables, positive rows, coverage, index arithmetic) serve the
Anchors page, the Learn pages and dataset coverage checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ssd.base.boxes import box_iou
from ssd.models.anchors import AnchorConfig, all_anchors, anchor_labels, anchor_table


@dataclass
class AnchorSet:
    """Every anchor of a network and its layout: feature maps × cells × anchors per cell.

    One shape for TinySSD (``MultiBoxPrior``, described by sizes and ratios) and GluonCV zoo
    SSDs (their own anchor generators), so the Anchors page draws either the same way.
    ``anchors`` are normalized corners in the order the heads predict them: feature map by
    feature map, row-major over cells, then the cell's anchors.
    """

    feature_maps: List[Tuple[int, int]]
    per_cell: List[int]
    cell_labels: List[List[str]]          # per feature map: a label per anchor of a cell
    anchors: np.ndarray                   # (N, 4)
    input_size: int
    rows: List[Dict[str, Any]]            # per feature map, for the page's table
    kind: str = "tiny"

    @property
    def num_scales(self) -> int:
        return len(self.feature_maps)

    def anchors_per_cell(self, scale: int) -> int:
        return int(self.per_cell[scale])

    def counts(self) -> List[int]:
        return [int(h * w * a) for (h, w), a in zip(self.feature_maps, self.per_cell)]

    def total(self) -> int:
        return int(sum(self.counts()))

    def cell(self, scale: int, row: int, col: int) -> np.ndarray:
        """The ``(A, 4)`` anchors of cell (row, col) of feature map ``scale``."""
        h, w = self.feature_maps[scale]
        if not (0 <= row < h and 0 <= col < w):
            raise IndexError(f"cell ({row}, {col}) is outside the {h}x{w} feature map")
        a = self.per_cell[scale]
        start = sum(self.counts()[:scale]) + (row * w + col) * a
        return self.anchors[start:start + a]


def anchor_set(config: AnchorConfig, input_size: int) -> AnchorSet:
    """TinySSD's anchors (MultiBoxPrior, exactly what the network makes) as an ``AnchorSet``."""
    labels = [[f"s={s:g}, r={r:g}" for s, r in anchor_labels(sz, rt)] for sz, rt in zip(config.sizes, config.ratios)]
    return AnchorSet(list(config.feature_maps), [config.anchors_per_cell(i) for i in range(config.num_scales)],
                     labels, all_anchors(config), int(input_size), anchor_table(config, input_size), "tiny")


def as_anchor_set(obj, input_size: int = 256) -> AnchorSet:
    if isinstance(obj, AnchorSet):
        return obj
    if isinstance(obj, AnchorConfig):
        return anchor_set(obj, input_size)
    raise TypeError(f"expected an AnchorSet or AnchorConfig, got {type(obj).__name__}")


def anchor_boxes(anchors) -> np.ndarray:
    """The ``(N, 4)`` anchors of an ``AnchorSet``, an ``AnchorConfig`` (via ``MultiBoxPrior``) or an array."""
    if isinstance(anchors, AnchorConfig):
        return all_anchors(anchors)
    if isinstance(anchors, AnchorSet):
        return anchors.anchors
    return np.asarray(anchors).reshape(-1, 4)


def anchor_index(anchors, index: int) -> Tuple[int, int, int, int]:
    """Global anchor index (the heads' order) → (scale, row, col, k within the cell)."""
    index = int(index)
    if isinstance(anchors, AnchorConfig):
        maps, per_cell = anchors.feature_maps, [anchors.anchors_per_cell(i) for i in range(anchors.num_scales)]
    else:
        maps, per_cell = anchors.feature_maps, anchors.per_cell
    for s, ((h, w), a) in enumerate(zip(maps, per_cell)):
        n = h * w * a
        if index < n:
            cell, k = divmod(index, a)
            r, c = divmod(cell, w)
            return s, r, c, k
        index -= n
    raise IndexError("anchor index out of range")


def cell_anchor_rows(anchors: AnchorSet, scale: int, row: int, col: int,
                     gt_boxes: Optional[np.ndarray] = None) -> List[Dict[str, Any]]:
    """The cell's anchors: label, width/height in input pixels and best IoU with ``gt_boxes``."""
    boxes = anchors.cell(scale, row, col)
    ious = None
    if gt_boxes is not None and len(gt_boxes):
        ious = box_iou(boxes, np.asarray(gt_boxes).reshape(-1, 4)).max(axis=1)
    rows = []
    labels = list(anchors.cell_labels[scale]) if scale < len(anchors.cell_labels) else []
    for k, b in enumerate(boxes):      # every anchor of the cell, even one without a label
        label = labels[k] if k < len(labels) else f"anchor {k}"
        row_ = {"#": k, "anchor": label, "w px": round(float(b[2] - b[0]) * anchors.input_size, 1),
                "h px": round(float(b[3] - b[1]) * anchors.input_size, 1)}
        if ious is not None:
            row_["IoU"] = round(float(ious[k]), 3)
        rows.append(row_)
    return rows


def positive_rows(anchors: AnchorSet, positives: Sequence[int], gt_boxes: np.ndarray) -> List[Dict[str, Any]]:
    """Where each positive anchor sits (map, row, col, k) and its best IoU with the boxes."""
    idx = np.asarray(positives, dtype=np.int64)
    if not len(idx):
        return []
    ious = box_iou(anchors.anchors[idx], np.asarray(gt_boxes).reshape(-1, 4)).max(axis=1)
    rows = []
    for i, iou in zip(idx, ious):
        s, r, c, k = anchor_index(anchors, int(i))
        rows.append({"map": s, "row": r, "col": c, "anchor": anchors.cell_labels[s][k], "IoU": round(float(iou), 3)})
    return rows


def anchor_coverage(anchors: AnchorSet, gt_boxes: np.ndarray, iou_threshold: float = 0.5) -> Tuple[float, np.ndarray]:
    """``coverage`` for any ``AnchorSet``: (share of boxes reaching the IoU, best IoU per box)."""
    return coverage(anchors, gt_boxes, iou_threshold)


def best_anchor_cell(anchors, gt_box: Sequence[float]) -> Tuple[int, int, int]:
    """(scale, row, col) of the anchor that overlaps ``gt_box`` (normalized corners) the most."""
    aset = as_anchor_set(anchors)
    ious = box_iou(np.asarray(gt_box, dtype=np.float64).reshape(1, 4), aset.anchors)[0]
    s, r, c, _ = anchor_index(aset, int(np.argmax(ious)))
    return s, r, c


def start_cell(anchors: AnchorSet, gt_boxes: Optional[np.ndarray] = None) -> Tuple[int, int, int]:
    """(scale, row, col) to show first: the cell holding the anchor that fits the first ground-truth
    box best (the one that learns it), else the middle cell of the second feature map (the first
    when there is one): a mid-sized map whose anchors are neither tiny nor the whole image."""
    if gt_boxes is not None and len(gt_boxes):
        return best_anchor_cell(anchors, gt_boxes[0])
    scale = 1 if anchors.num_scales > 1 else 0
    fh, fw = anchors.feature_maps[scale]
    return scale, fh // 2, fw // 2


def coverage(config, gt_boxes: np.ndarray, iou_threshold: float = 0.5) -> Tuple[float, np.ndarray]:
    """Share of ground-truth boxes whose best anchor reaches ``iou_threshold``.

    Tells a user whether their sizes and ratios fit their data before they train:
    a box no anchor overlaps well can only be matched by the forced best-anchor rule.
    ``config``: an ``AnchorConfig``, an ``AnchorSet`` or an ``(N, 4)`` array of anchors.
    Returns (share, best IoU per box).
    """
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(gt) == 0:
        return 0.0, np.zeros(0)
    anchors = anchor_boxes(config)
    best = np.zeros(len(gt))
    for start in range(0, len(gt), 256):           # bounded memory for large datasets
        best[start:start + 256] = box_iou(gt[start:start + 256], anchors).max(axis=1)
    return float(np.mean(best >= iou_threshold)), best
