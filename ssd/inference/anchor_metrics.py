"""Micro-F1 and accuracy over anchors, as the ENA24 case study ("Object detection using Single Shot MultiBox
Detector (A Case Study Approach)", SSD on ENA24 camera-trap images)
defines and reports them (micro-F1 0.88 and accuracy 0.9985 on its test images), beside VOC mAP.

What is counted, exactly as that tutorial does:

* Every anchor of every image is one observation. Its **true** class is the target
  ``MultiBoxTarget`` gives it with the tutorial's settings (IoU ≥ 0.5 to a labelled box, no hard
  negative mining): 0 for background, ``class + 1`` for an anchor matched to a box. Its
  **predicted** class is the arg-max over the network's ``C + 1`` class scores (background
  included; the arg-max of the logits is that of the softmax).
* **Micro-F1** sums, over the object classes ``1..C`` (background excluded), the true positives
  (predicted = true = that class), false positives (predicted that class, true another, background
  included) and false negatives (true that class, predicted another), then takes precision
  ``TP/(TP+FP)``, recall ``TP/(TP+FN)`` and their harmonic mean (0 where a denominator is 0).
* **Accuracy** is the share of all anchors whose predicted class equals the true one, background
  included — which is why it sits near 1: most anchors are background and easy.

The tutorial computed both on its last batch of each epoch; here the counts are summed over every
image evaluated, so the figures describe the whole split. Only networks that expose their anchors
and class scores (TinySSD and kin) have them; a network that decodes inside its graph (GluonCV's
zoo) reports none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ssd.data.batches import pad_labels
from ssd.viz.heads import check_multibox_outputs

OVERLAP = 0.5          # the tutorial's MultiBoxTarget default


@dataclass
class AnchorCounts:
    """Summed anchor counts: true/false positives and false negatives over the object classes,
    correct anchors and all anchors."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    correct: int = 0
    anchors: int = 0

    def add(self, pred: np.ndarray, true: np.ndarray) -> None:
        """Count predicted against true anchor classes (any shape, 0 = background)."""
        pred, true = np.asarray(pred).astype(np.int64), np.asarray(true).astype(np.int64)
        wrong = pred != true
        self.tp += int(((~wrong) & (true > 0)).sum())
        self.fp += int(((pred > 0) & wrong).sum())
        self.fn += int(((true > 0) & wrong).sum())
        self.correct += int((~wrong).sum())
        self.anchors += int(true.size)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def micro_f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.anchors if self.anchors else 0.0

    def as_dict(self) -> Dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "correct": self.correct, "anchors": self.anchors}


def anchor_targets(anchors: np.ndarray, labels: Sequence[np.ndarray], cls_preds: np.ndarray) -> np.ndarray:
    """``(B, N)`` true anchor classes: ``MultiBoxTarget`` at IoU 0.5 without mining (0 = background)."""
    import mxnet as mx

    from ssd.models.targets import multibox_targets

    padded = pad_labels([np.asarray(lab, np.float32).reshape(-1, 5) for lab in labels])
    _, _, cls_t = multibox_targets(mx.nd, mx.nd.array(anchors), mx.nd.array(padded), mx.nd.array(cls_preds),
                                   overlap_threshold=OVERLAP, negative_mining_ratio=-1.0)
    return np.maximum(cls_t.asnumpy(), 0)


class AnchorTally:
    """Collects ``AnchorCounts`` during an evaluation: ``tap`` receives the network's raw outputs
    (``Detector.predict_arrays(..., tap=)``), ``score`` compares them with the batch's labels."""

    def __init__(self) -> None:
        self.counts = AnchorCounts()
        self.available = True
        self._outs: Optional[List[np.ndarray]] = None

    def tap(self, outs: Sequence[Any]) -> None:
        arrays = [o.asnumpy() if hasattr(o, "asnumpy") else np.asarray(o) for o in outs]
        try:
            check_multibox_outputs(arrays, "?")
        except Exception:  # noqa: BLE001 - a net that decodes in its graph: no anchor metrics
            self.available, self._outs = False, None
            return
        self._outs = arrays

    def score(self, labels: Sequence[np.ndarray]) -> None:
        """Count the last tapped batch against its normalized ``[cls, x1, y1, x2, y2]`` labels."""
        if self._outs is None:
            self.available = False
            return
        anchors, cls_preds = self._outs[0], self._outs[1]
        self.counts.add(cls_preds.argmax(axis=-1), anchor_targets(anchors, labels, cls_preds))
        self._outs = None
