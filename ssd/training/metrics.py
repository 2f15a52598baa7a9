"""An epoch's training metrics, summed step by step: loss, class error, box MAE, speed.

``class_err`` and ``bbox_mae`` follow d2l's definitions over the anchors the loss counts;
steps add numbers the loss graph already computed, so reporting costs no extra forward pass.
"""
from __future__ import annotations

import time
from typing import Any, Dict

import numpy as np


class EpochMeter:
    """Sums ``StepStats`` over one epoch and turns them into the epoch's record."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.sums = np.zeros(5)      # loss·n, cls·n, box·n, correct, count
        self.abs_err = 0.0
        self.seen = 0
        self.start = time.time()

    def add(self, stats) -> None:
        self.sums += stats.sums
        self.abs_err += stats.abs_err
        self.seen += stats.samples

    @property
    def mean_loss(self) -> float:
        return float(self.sums[0] / max(self.seen, 1))

    def samples_per_s(self) -> float:
        return self.seen / max(time.time() - self.start, 1e-9)

    def record(self, lr: float) -> Dict[str, Any]:
        """The epoch's line of the history (validation adds ``val_map`` and ``val_ap``)."""
        n = max(self.seen, 1)
        elapsed = time.time() - self.start
        return {"epoch": self.epoch + 1, "loss": self.sums[0] / n, "cls_loss": self.sums[1] / n,
                "box_loss": self.sums[2] / n, "class_err": 1.0 - self.sums[3] / max(self.sums[4], 1),
                "bbox_mae": self.abs_err / n, "samples_per_s": self.seen / max(elapsed, 1e-9),
                "lr": float(lr), "train_time_s": elapsed}


def epoch_line(rec: Dict[str, Any], epochs: int) -> str:
    """The line printed after each epoch."""
    s = (f"epoch {rec['epoch']:>3}/{epochs}  loss {rec['loss']:.4f}  class err {rec['class_err']:.2e}  "
         f"bbox mae {rec['bbox_mae']:.2e}  {rec['samples_per_s']:.1f} img/s")
    if "val_map" in rec:
        s += f"  val mAP {rec['val_map']:.4f}"
    return s
