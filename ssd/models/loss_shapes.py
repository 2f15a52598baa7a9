"""The loss functions' shapes, as d2l plots them, evaluated by the training code's own losses.

``box_loss`` and ``class_loss`` (``ssd.models.losses``) are called with ``F = mx.nd`` on a grid of
inputs, so the curves the Learn page draws are the functions training minimizes:

- smooth L1 for sharpness σ beside L1, as a function of the offset error ``x``;
- focal loss for focusing γ beside cross-entropy, as a function of the probability ``p`` the
  network gives the true class (d2l plots focal loss without the α weight: ``alpha=1``).
"""
from __future__ import annotations

import numpy as np

from ssd.models.losses import box_loss, class_loss


def box_loss_curve(x: np.ndarray, kind: str = "smooth_l1", sigma: float = 1.0) -> np.ndarray:
    """``box_loss`` of an offset error ``x`` (target 0, mask 1) for each value of ``x``."""
    from mxnet import nd

    x = np.asarray(x, dtype=np.float32).reshape(1, -1)
    out = box_loss(nd, nd.array(x), nd.zeros(x.shape), nd.ones(x.shape), kind, sigma=sigma)
    return out.asnumpy()[0]


def class_loss_curve(p: np.ndarray, kind: str = "ce", gamma: float = 2.0, alpha: float = 1.0) -> np.ndarray:
    """``class_loss`` when the network gives probability ``p`` to the true class (two classes)."""
    from mxnet import nd

    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    # logits (0, log(p/(1-p))) give softmax p on class 1, the target
    logits = np.stack([np.zeros_like(p), np.log(p / (1 - p))], axis=-1).astype(np.float32)[None]
    target = nd.ones((1, len(p)))
    loss, _ = class_loss(nd, nd.array(logits), target, kind, alpha=alpha, gamma=gamma)
    return loss.asnumpy()[0]
