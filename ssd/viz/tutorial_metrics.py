"""The training metrics of a saved model, measured now: the d2l book's class err and bbox MAE, and ours.

Histories written before the metrics were split record only the mined class error. This runs the
model (no training, no augmentation) over some labelled images and passes its raw outputs through
the training loss graph, ``SSDTrainLoss`` with 3:1 hard negative mining, which returns both class
errors and the box MAE exactly as training computes them.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ssd.data.batches import pad_labels
from ssd.data.preprocess import resize
from ssd.viz.heads import check_multibox_outputs
from ssd.models.losses import SSDTrainLoss


def measure_train_metrics(detector, dataset, limit: int = 32, negative_mining_ratio: float = 3.0,
                          batch_size: int = 16) -> Dict[str, float]:
    """``class_err``, ``mined_class_err`` and ``bbox_mae`` of ``detector`` over the first ``limit`` images."""
    import mxnet as mx

    loss = SSDTrainLoss(negative_mining_ratio=negative_mining_ratio)
    loss.hybridize()
    sums = np.zeros(5)           # mined correct, mined count, abs err, all-anchor correct, all anchors
    n = min(int(limit), len(dataset))
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        batch = np.stack([resize(img, detector.input_size) for img, _ in items])
        outs = detector.forward_raw(batch)
        check_multibox_outputs(outs, detector.meta.get("arch", "?"))
        anchors, cls_preds, box_preds = (mx.nd.array(o) for o in outs)
        out = loss(anchors, cls_preds, box_preds, mx.nd.array(pad_labels([lab for _, lab in items])))
        vals = [float(o.sum().asscalar()) for o in out]
        sums += [vals[3], vals[4], vals[5], vals[6], vals[7]]
    return {"class_err": 1.0 - sums[3] / max(sums[4], 1), "mined_class_err": 1.0 - sums[0] / max(sums[1], 1),
            "bbox_mae": sums[2] / max(n, 1), "images": n}
