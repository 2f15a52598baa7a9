"""What the class loss sees on one image: positive anchors, mined negatives, ignored anchors.

``MultiBoxTarget`` (``ssd.models.targets.multibox_targets``, the call training makes) labels every
anchor: positives get their box's class, and with hard negative mining only the ``ratio``
negatives per positive that the network gets most wrong keep the background label; the rest
get ``-1`` and the class loss ignores them. Which negatives are "hard" depends on the network's
class predictions, so the roles come from a model's own outputs on the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssd.models.targets import multibox_targets


@dataclass
class AnchorRoles:
    """Anchor indices (the heads' order) by the role the class loss gives them."""

    positives: np.ndarray
    negatives: np.ndarray        # background anchors the mining keeps
    ignored: np.ndarray          # target -1: not in the class loss
    cls_target: np.ndarray       # (N,) MultiBoxTarget's class target: -1, 0 (background), 1 + class

    @property
    def total(self) -> int:
        return int(len(self.cls_target))


def anchor_roles(anchors: np.ndarray, label: np.ndarray, cls_preds: np.ndarray, ratio: float = 3.0,
                 overlap_threshold: float = 0.5) -> AnchorRoles:
    """Roles of each anchor for one image: ``anchors`` ``(N, 4)``, ``label`` ``(K, 5)`` normalized,
    ``cls_preds`` ``(N, C+1)`` the network's class logits; ``ratio <= 0`` turns mining off."""
    import mxnet as mx

    lab = np.asarray(label, dtype=np.float32).reshape(-1, 5)
    lab = lab[lab[:, 0] >= 0]
    padded = np.full((1, max(3, len(lab)), 5), -1.0, dtype=np.float32)
    padded[0, :len(lab)] = lab
    anchors = np.asarray(anchors, dtype=np.float32).reshape(1, -1, 4)
    preds = np.asarray(cls_preds, dtype=np.float32).reshape(1, anchors.shape[1], -1)
    _, _, cls_t = multibox_targets(mx.nd, mx.nd.array(anchors), mx.nd.array(padded), mx.nd.array(preds),
                                   overlap_threshold=float(overlap_threshold),
                                   negative_mining_ratio=float(ratio) if ratio > 0 else -1.0)
    t = cls_t.asnumpy()[0]
    return AnchorRoles(np.flatnonzero(t > 0), np.flatnonzero(t == 0), np.flatnonzero(t < 0), t)
