"""SSD's loss: class loss over anchors plus box-offset loss over positive anchors.

Two normalizations:

- ``"d2l"``: per-image mean over anchors for the class loss and over the 4N offsets for the
  box loss — the d2l book's choice, so its hyper-parameters (SGD, lr 0.2) carry over. Positives
  are ~0.1 % of anchors, so their gradient is tiny and localization learns slowly.
- ``"positives"``: the SSD paper's ``(L_conf + L_loc) / N_pos``, summed over positives and the
  mined negatives. Each object then weighs the same whatever the anchor count; with hard
  negative mining this trains localization several times faster (measured on the synthetic
  set; see the README).

``SSDTrainLoss`` computes targets, losses and the training metrics in one hybridized graph: the
training loop then makes one call per batch and never synchronizes on a metric until it reports.
The metrics are the d2l book's class error (arg-max over *all* anchors against the unmined targets,
d2l's ``cls_eval``) and bbox MAE (d2l's ``bbox_eval``), plus the error over the anchors the
mined loss counts (positives and kept negatives), which is what this code reported before.
"""
from __future__ import annotations

from mxnet.gluon import HybridBlock

from ssd.models.targets import VARIANCES, multibox_targets

CLASS_LOSSES = ("ce", "focal")
BOX_LOSSES = ("l1", "smooth_l1")
NORMALIZATIONS = ("d2l", "positives")
# Focal loss's weight of the positive class (Lin et al.'s value), used when training asks for focal loss.
FOCAL_ALPHA = 0.25


def class_loss(F, cls_preds, cls_target, kind: str = "ce", alpha: float = FOCAL_ALPHA, gamma: float = 2.0):
    """Per-anchor class loss ``(B, N)`` and the mask of anchors that count (target >= 0).

    Focal loss (Lin et al.; the MXNet Gluon tutorial "Object Detection Using Convolutional
    Neural Networks" uses it) scales CE by ``alpha * (1 - p_t) ** gamma`` so the
    thousands of easy background anchors stop dominating the gradient.
    """
    valid = cls_target >= 0
    target = F.maximum(cls_target, 0)
    ce = -F.pick(F.log_softmax(cls_preds, axis=-1), target, axis=-1)
    if kind == "focal":
        pt = F.exp(-ce)
        ce = alpha * ((1 - pt) ** gamma) * ce
    elif kind != "ce":
        raise ValueError(f"unknown class loss {kind!r}; use one of {CLASS_LOSSES}")
    return ce * valid, valid


def box_loss(F, box_preds, box_target, box_mask, kind: str = "l1", sigma: float = 1.0):
    """Per-entry box loss ``(B, 4N)``, zero outside positive anchors.

    ``sigma`` is smooth L1's sharpness (d2l's σ): quadratic for ``|x| < 1/σ²``, L1 beyond;
    training uses 1, the Learn page varies it.
    """
    diff = (box_preds - box_target) * box_mask
    if kind == "l1":
        return F.abs(diff)
    if kind == "smooth_l1":
        return F.smooth_l1(diff, scalar=float(sigma))
    raise ValueError(f"unknown box loss {kind!r}; use one of {BOX_LOSSES}")


class SSDTrainLoss(HybridBlock):
    """Targets + losses + metrics for one batch.

    Returns ``(total (B,), cls (B,), box (B,), mined_correct (B,), mined_count (B,), box_abs_err (B,),
    all_correct (B,), all_count (B,))``. ``mined_*`` count the anchors the class loss counts
    (all of them without hard negative mining); ``all_*`` count every anchor against the unmined
    target (background where mining ignored it), d2l's ``cls_eval``; ``box_abs_err`` is the
    per-image mean of d2l's ``bbox_eval``.
    """

    def __init__(self, cls_kind: str = "ce", box_kind: str = "l1", negative_mining_ratio: float = -1.0,
                 box_weight: float = 1.0, overlap_threshold: float = 0.5, focal_alpha: float = FOCAL_ALPHA,
                 focal_gamma: float = 2.0, normalization: str = "d2l", **kwargs) -> None:
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; use one of {NORMALIZATIONS}")
        self.normalization = normalization
        if cls_kind not in CLASS_LOSSES:
            raise ValueError(f"unknown class loss {cls_kind!r}; use one of {CLASS_LOSSES}")
        if box_kind not in BOX_LOSSES:
            raise ValueError(f"unknown box loss {box_kind!r}; use one of {BOX_LOSSES}")
        self.cls_kind, self.box_kind = cls_kind, box_kind
        self.negative_mining_ratio = float(negative_mining_ratio)
        self.box_weight = float(box_weight)
        self.overlap_threshold = float(overlap_threshold)
        self.focal_alpha, self.focal_gamma = float(focal_alpha), float(focal_gamma)

    def hybrid_forward(self, F, anchors, cls_preds, box_preds, labels):  # noqa: N802
        box_t, box_m, cls_t = multibox_targets(F, anchors, labels, cls_preds, self.overlap_threshold,
                                               self.negative_mining_ratio, variances=VARIANCES)
        cls_l, valid = class_loss(F, cls_preds, cls_t, self.cls_kind, self.focal_alpha, self.focal_gamma)
        count = F.sum(valid, axis=1)
        if self.normalization == "positives":
            num_pos = F.maximum(F.sum(cls_t > 0, axis=1), 1)
            cls_l = F.sum(cls_l, axis=1) / num_pos
            box_l = F.sum(box_loss(F, box_preds, box_t, box_m, self.box_kind), axis=1) / num_pos
        else:
            cls_l = F.sum(cls_l, axis=1) / F.maximum(count, 1)
            box_l = F.mean(box_loss(F, box_preds, box_t, box_m, self.box_kind), axis=1)
        total = cls_l + self.box_weight * box_l
        correct = F.sum((F.argmax(cls_preds, axis=-1) == cls_t) * valid, axis=1)
        abs_err = F.mean(F.abs((box_t - box_preds) * box_m), axis=1)
        all_correct, all_count = all_anchor_class_counts(F, cls_preds, cls_t)
        return (total, F.BlockGrad(cls_l), F.BlockGrad(box_l), F.BlockGrad(correct),
                F.BlockGrad(count), F.BlockGrad(abs_err), F.BlockGrad(all_correct), F.BlockGrad(all_count))


def all_anchor_class_counts(F, cls_preds, cls_target):
    """``(correct (B,), anchors (B,))`` of the d2l book's class error: arg-max over every anchor.

    d2l's ``cls_eval`` compares ``argmax`` with targets made without hard negative mining. Mining
    only turns background targets into ``-1`` (ignored), so ``max(target, 0)`` restores them.
    """
    target = F.maximum(cls_target, 0)
    hits = F.argmax(cls_preds, axis=-1) == target
    return F.sum(hits, axis=1), F.sum(F.ones_like(target), axis=1)
