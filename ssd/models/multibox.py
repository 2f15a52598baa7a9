"""Training and decoding for networks with d2l's multibox heads (TinySSD and its kin).

Such a network returns ``(anchors (1, N, 4), cls_preds (B, N, C+1), box_preds (B, N*4))``.
Everything after that is architecture-free: targets come from ``MultiBoxTarget`` inside the
hybridized ``SSDTrainLoss``; detections from ``MultiBoxDetection``. A recipe for any network
with these outputs (TinySSD, or a toy net in the tests) reuses ``MultiBoxPlan`` and
``decode_multibox`` as they are.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ssd.data.augment import AugmentConfig
from ssd.data.batches import BatchLoader
from ssd.data.preprocess import MEAN, STD
from ssd.models.array_decode import MULTIBOX_TOPK as NMS_TOPK  # candidates entering NMS, best first; the rest dropped
from ssd.models.losses import SSDTrainLoss
from ssd.models.recipe import Detections, StepStats, TrainingPlan
from ssd.models.training_graph import training_graph

CALIBRATION_BATCH = 64   # training images used to re-estimate BatchNorm statistics


def decode_multibox(net, x, nms: float, floor: float) -> List[Detections]:
    """Run ``net`` on ``x`` and decode with ``MultiBoxDetection`` (live or exported graph alike)."""
    anchors, cls_preds, box_preds = net(x)
    return decode_outputs(anchors, cls_preds, box_preds, floor, nms)


def decode_outputs(anchors, cls_preds, box_preds, floor: float, nms: float) -> List[Detections]:
    """Head outputs → per image ``(ids, scores, boxes normalized)``, sorted by score."""
    from mxnet import nd

    probs = nd.softmax(cls_preds, axis=-1).transpose((0, 2, 1))
    out = nd.contrib.MultiBoxDetection(probs, box_preds, anchors, threshold=floor, nms_threshold=nms,
                                       force_suppress=False, nms_topk=NMS_TOPK, clip=True).asnumpy()
    results = []
    for rows in out:
        rows = rows[rows[:, 0] >= 0]
        rows = rows[np.argsort(-rows[:, 1], kind="stable")]
        results.append((rows[:, 0].astype(np.int64), rows[:, 1].astype(np.float32),
                        rows[:, 2:6].astype(np.float32)))
    return results


def train_loss(cfg) -> SSDTrainLoss:
    """The loss a config asks for (class/box loss kinds, mining ratio, normalization), hybridized."""
    loss = SSDTrainLoss(cfg.cls_loss, cfg.box_loss,
                        negative_mining_ratio=cfg.hard_negative_ratio if cfg.hard_negative_ratio > 0 else -1,
                        normalization=cfg.loss_norm)
    loss.hybridize(static_alloc=True)
    return loss


class MultiBoxPlan(TrainingPlan):
    """Training half for multibox-head networks: our augmentation, ``BatchLoader``, ``SSDTrainLoss``.

    ``make_net()`` returns the uninitialized network; ``initialize(net, ctxs)`` gives it its
    starting weights on ``ctxs`` (Xavier by default; a recipe may load a pretrained detector), and
    it is hybridized. Images are normalized with ``normalize`` (mean, std), the statistics the
    network expects. Batches come from a producer thread; the loss graph computes targets, losses
    and the metrics in one call, so a step synchronizes with the host only to read five numbers.
    """

    def __init__(self, cfg, train_ds, ctxs: Sequence[Any], make_net: Callable[[], Any],
                 anchors_meta: Callable[[Any], Dict[str, Any]],
                 initialize: Optional[Callable[[Any, List[Any]], None]] = None,
                 normalize: Tuple[Sequence[float], Sequence[float]] = (MEAN, STD)) -> None:
        import mxnet as mx

        self.cfg, self.ctxs, self.train_ds = cfg, list(ctxs), train_ds
        self.mean, self.std = tuple(normalize[0]), tuple(normalize[1])
        self.net = make_net()
        if initialize is None:
            self.net.initialize(init=mx.init.Xavier(), ctx=self.ctxs)
        else:
            initialize(self.net, self.ctxs)
        self.net.hybridize(static_alloc=True)
        self.graph = training_graph(self.net, cfg.input_size, self.ctxs, cfg.precision,
                                    distributed=cfg.kvstore.startswith("dist"))
        self.loss = train_loss(cfg)
        self.loader = BatchLoader(train_ds, cfg.batch_size, cfg.input_size,
                                  AugmentConfig() if cfg.augment else None, shuffle=True, seed=cfg.seed,
                                  mean=self.mean, std=self.std)
        n = len(self.loader)
        self.iters = n if cfg.max_iters_per_epoch is None else min(n, cfg.max_iters_per_epoch)
        self._anchors_meta = anchors_meta

    def epoch(self, epoch: int):
        return self.loader.epoch(epoch)

    def step(self, batch, trainer) -> StepStats:
        import mxnet as mx
        from mxnet import autograd, gluon

        xb, yb = batch
        xs = gluon.utils.split_and_load(mx.nd.array(xb), self.ctxs, even_split=False)
        ys = gluon.utils.split_and_load(mx.nd.array(yb), self.ctxs, even_split=False)
        outs = []
        with autograd.record():
            for x, y in zip(xs, ys):
                anchors, cls_preds, box_preds = self.graph.block(x)
                outs.append(self.loss(anchors, cls_preds, box_preds, y))
        autograd.backward([o[0] for o in outs])
        trainer.step(xb.shape[0])
        sums, abs_err, all_anchors = np.zeros(5), 0.0, np.zeros(2)
        for o in outs:
            vals = mx.nd.concat(*[v.sum().reshape((1,)) for v in o], dim=0).asnumpy()
            sums += vals[:5]
            abs_err += float(vals[5])
            all_anchors += vals[6:8]
        return StepStats(int(xb.shape[0]), sums, abs_err, all_anchors)

    def calibration_batches(self, epoch: int) -> List[Any]:
        import mxnet as mx

        calib = BatchLoader(self.train_ds, min(CALIBRATION_BATCH, len(self.train_ds)), self.cfg.input_size, None,
                            shuffle=True, seed=self.cfg.seed + 7919, mean=self.mean, std=self.std)
        xb, _ = next(iter(calib.epoch(epoch)))
        # one copy per device: saving the parameters averages them across devices
        return [mx.nd.array(xb, ctx=c) for c in self.ctxs]

    def skipped_images(self) -> int:
        return len(self.loader.skipped)

    def meta_fields(self) -> Dict[str, Any]:
        return {"anchors": self._anchors_meta(self.net)}

    def arithmetic(self) -> Dict[str, Any]:
        return self.graph.meta()

