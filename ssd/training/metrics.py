"""An epoch's training metrics, summed step by step: loss, the d2l book's class err and bbox MAE, speed.

Two class errors, named for what they measure:

- ``class_err``: the d2l book's (its ``cls_eval``): arg-max class over *every* anchor against the
  targets made without hard negative mining. Most anchors are easy background, so it is small
  (the d2l TinySSD prints 2.3e-3).
- ``mined_class_err``: the error over the anchors the mined class loss counts (positives and the
  hardest negatives, 3 per positive). Those are the difficult ones, so it is much larger. Histories
  written before this distinction have only ``class_err``, and it meant this one; ``named_record``
  reads both kinds.

``bbox_mae`` is the d2l book's (its ``bbox_eval``): mean absolute offset error over all 4N entries,
zero outside positives. Steps add numbers the loss graph already computed, so reporting costs no
extra forward pass.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np

from ssd.models.metric_names import named_record

class EpochMeter:
    """Sums ``StepStats`` over one epoch and turns them into the epoch's record."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.sums = np.zeros(5)      # loss·n, cls·n, box·n, mined correct, mined count
        self.all_anchors = np.zeros(2)   # correct, anchors: over every anchor (the d2l book's class err)
        self.abs_err = 0.0
        self.seen = 0
        self.start = time.time()

    def add(self, stats) -> None:
        self.sums += stats.sums
        if getattr(stats, "all_anchor_counts", None) is not None:
            self.all_anchors += np.asarray(stats.all_anchor_counts, dtype=np.float64)
        self.abs_err += stats.abs_err
        self.seen += stats.samples

    @property
    def mean_loss(self) -> float:
        return float(self.sums[0] / max(self.seen, 1))

    def samples_per_s(self) -> float:
        return self.seen / max(time.time() - self.start, 1e-9)

    def record(self, lr: float) -> Dict[str, Any]:
        """The epoch's line of the history (validation adds ``val_map`` and ``val_ap``).

        ``mined_class_err`` is always present (``None`` where a plan does not compute it): its key
        marks the record as one where ``class_err`` is the d2l book's metric.
        """
        n = max(self.seen, 1)
        elapsed = time.time() - self.start
        return {"epoch": self.epoch + 1, "loss": self.sums[0] / n, "cls_loss": self.sums[1] / n,
                "box_loss": self.sums[2] / n,
                "class_err": _error(self.all_anchors[0], self.all_anchors[1]),
                "mined_class_err": _error(self.sums[3], self.sums[4]),
                "bbox_mae": self.abs_err / n, "samples_per_s": self.seen / max(elapsed, 1e-9),
                "lr": float(lr), "train_time_s": elapsed}


def _error(correct: float, count: float) -> Optional[float]:
    """1 − correct/count, or ``None`` when nothing was counted."""
    return None if count <= 0 else float(1.0 - correct / count)


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2e}"


def epoch_line(rec: Dict[str, Any], epochs: int) -> str:
    """The line printed after each epoch."""
    rec = named_record(rec)
    s = (f"epoch {rec['epoch']:>3}/{epochs}  loss {rec['loss']:.4f}  class err {_fmt(rec['class_err'])}  "
         f"bbox mae {rec['bbox_mae']:.2e}  mined class err {_fmt(rec['mined_class_err'])}  "
         f"{rec['samples_per_s']:.1f} img/s")
    if "val_map" in rec:
        s += f"  val mAP {rec['val_map']:.4f}"
    if isinstance(rec.get("val_micro_f1"), (int, float)):
        s += f"  val micro-F1 {rec['val_micro_f1']:.3f} accuracy {rec['val_accuracy']:.4f}"
    return s
