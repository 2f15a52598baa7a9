"""Training targets: which anchor learns which box, via MXNet's ``MultiBoxTarget``.

An anchor is positive when its IoU with a ground-truth box exceeds ``overlap_threshold`` (strictly)
(each box also claims its single best anchor, so no box goes unmatched). Positives get the
box's class (+1: index 0 is background) and encoded offsets; the rest are background.
With ``negative_mining_ratio > 0`` only the hardest negatives (highest predicted
non-background score), ``ratio`` per positive, keep the background label; the others get
``-1`` and are ignored by the class loss. This is SSD's hard negative mining (paper: 3:1).

``positive_anchors`` runs that same assignment for one image, so what the Anchors page marks
positive is exactly what training would.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ssd.models.anchor_set import anchor_boxes

VARIANCES: Tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)


def multibox_targets(F, anchors, labels, cls_preds, overlap_threshold: float = 0.5,
                     negative_mining_ratio: float = -1.0, negative_mining_thresh: float = 0.5,
                     variances: Sequence[float] = VARIANCES):
    """Return ``(box_target (B, 4N), box_mask (B, 4N), cls_target (B, N))``, gradients blocked.

    ``F`` is ``mx.nd`` or ``mx.sym`` so this runs inside a hybridized loss block.
    ``labels`` is ``(B, K, 5)`` ``[cls, xmin, ymin, xmax, ymax]`` normalized, padded with -1
    rows (the GPU kernel wants K >= 3; the batcher pads to that).
    """
    box_target, box_mask, cls_target = F.contrib.MultiBoxTarget(
        anchors, labels, F.transpose(cls_preds, axes=(0, 2, 1)),
        overlap_threshold=overlap_threshold, negative_mining_ratio=negative_mining_ratio,
        negative_mining_thresh=negative_mining_thresh, variances=tuple(variances))
    return F.BlockGrad(box_target), F.BlockGrad(box_mask), F.BlockGrad(cls_target)


def positive_anchors(config, gt_label: np.ndarray, overlap_threshold: float = 0.5) -> np.ndarray:
    """Indices of the anchors the training target assignment marks positive for ``gt_label``.

    ``config``: an ``AnchorConfig``, an ``AnchorSet`` or an ``(N, 4)`` array of anchors.
    Runs the same MXNet ``MultiBoxTarget`` as training (``multibox_targets``) with
    zero class predictions and no hard negative mining: an anchor is positive when its IoU with
    a box exceeds ``overlap_threshold``, and every box also claims its best anchor.
    """
    import mxnet as mx

    lab = np.asarray(gt_label, dtype=np.float32).reshape(-1, 5)
    lab = lab[lab[:, 0] >= 0]
    if len(lab) == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(3, len(lab))
    padded = np.full((1, k, 5), -1.0, dtype=np.float32)
    padded[0, :len(lab)] = lab
    anchors = anchor_boxes(config).astype(np.float32)
    num_classes = int(lab[:, 0].max()) + 1
    cls_preds = mx.nd.zeros((1, len(anchors), num_classes + 1))
    _, _, cls_target = multibox_targets(mx.nd, mx.nd.array(anchors[None]), mx.nd.array(padded), cls_preds,
                                        overlap_threshold=float(overlap_threshold))
    return np.flatnonzero(cls_target.asnumpy()[0] > 0)
