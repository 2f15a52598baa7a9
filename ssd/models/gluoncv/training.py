"""The GluonCV half of a training run: its data pipeline, targets, loss and step.

Follows GluonCV's ``train_ssd.py``: ``SSDDefaultTrainTransform`` builds the targets in the data
loader from anchors taken by one forward pass in ``autograd.train_mode``; ``SSDMultiBoxLoss``
(softmax CE with 3:1 hard negative mining + smooth L1, normalized by the positives of the whole
batch). The loop itself, checkpoints, events and meta are ``ssd.training.loop.train``'s.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Sequence

import numpy as np

from ssd.data.preprocess import MEAN, STD
from ssd.models.gluoncv.finetune import create_for_training, resumed_for_training
from ssd.models.gluoncv.metadata import zoo_meta_fields
from ssd.models.recipe import StepStats, TrainingPlan
from ssd.models.training_graph import training_graph


def default_num_workers() -> int:
    """Data-loader processes building targets: ``$SSD_NUM_WORKERS``, else 0 on ≤2 cores, else ≤4."""
    env = os.environ.get("SSD_NUM_WORKERS")
    if env is not None and env.strip().isdigit():
        return int(env)
    n = os.cpu_count() or 1
    return 0 if n <= 2 else min(4, n // 2)


class ZooTrainTransform:
    """One sample of our datasets → ``(image (3,S,S) float32, cls_targets (N,), box_targets (N,4))``.

    Labels come in as ``(K, 5)`` ``[cls, xmin, ymin, xmax, ymax]`` normalized and go to GluonCV's
    ``[xmin, ymin, xmax, ymax, cls]`` in pixels. With ``augment`` it is GluonCV's
    ``SSDDefaultTrainTransform(width, height, anchors)`` (colour distortion, expansion, constrained
    crop, random interpolation, flip, targets); without, a plain resize. An image with no box gets
    all-background targets (GluonCV's target generator cannot take an empty box list).
    """

    def __init__(self, size: int, anchors, augment: bool = True, mean=None, std=None) -> None:
        from gluoncv.data.transforms.presets.ssd import SSDDefaultTrainTransform


        self.size, self.augment = int(size), bool(augment)
        self.mean, self.std = tuple(mean or MEAN), tuple(std or STD)
        self.anchors = anchors
        self.num_anchors = int(anchors.shape[1])
        self._full = SSDDefaultTrainTransform(self.size, self.size, anchors, mean=self.mean, std=self.std)
        self._plain = SSDDefaultTrainTransform(self.size, self.size, None, mean=self.mean, std=self.std)

    def __call__(self, img: np.ndarray, label: np.ndarray):
        import mxnet as mx
        from gluoncv.data.transforms import bbox as tbbox, image as timage

        h, w = img.shape[:2]
        lab = np.asarray(label, dtype=np.float32).reshape(-1, 5)
        lab = lab[lab[:, 0] >= 0]
        bbox = np.concatenate([lab[:, 1:5] * np.array([w, h, w, h], np.float32), lab[:, :1]], axis=1)
        src = mx.nd.array(np.ascontiguousarray(img), dtype="uint8")
        if self.augment and len(bbox):
            return self._full(src, bbox)
        if self.augment:
            x, _ = self._plain(src, bbox)
        else:
            x = timage.imresize(src, self.size, self.size, interp=1)
            x = mx.nd.image.normalize(mx.nd.image.to_tensor(x), mean=self.mean, std=self.std)
            bbox = tbbox.resize(bbox, (w, h), (self.size, self.size))
        if not len(bbox):
            return (x, mx.nd.zeros((self.num_anchors,)), mx.nd.zeros((self.num_anchors, 4)))
        cls_t, box_t, _ = self._full._target_generator(
            self.anchors, None, mx.nd.array(bbox[None, :, :4]), mx.nd.array(bbox[None, :, 4:5]))
        return x, cls_t[0], box_t[0]


class _TransformedDataset:
    """A gluon-compatible dataset applying ``ZooTrainTransform`` to one of our datasets."""

    def __init__(self, ds, transform: ZooTrainTransform) -> None:
        self.ds, self.transform = ds, transform

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        img, lab = self.ds[int(i)]
        return self.transform(img, lab)


class ZooTraining(TrainingPlan):
    """The architecture-specific half of a training run; ``ssd.training.loop.train`` drives it.

    ``net`` and ``iters`` are read by the loop; ``epoch(e)`` yields batches; ``step(batch,
    trainer)`` runs forward, loss, backward and ``trainer.step`` and returns the numbers the loop
    accumulates: ``(samples, [loss·n, cls·n, box·n, correct, count], abs_err)``, where the loss is
    ``SSDMultiBoxLoss``'s batch value (normalized by the batch's positive anchors, as GluonCV
    prints it). The loader's targets are unmined, so correct/count over every anchor is the d2l
    book's class error (``all_anchor_counts``); the mined error is not computed (its mining is inside the loss).
    """

    def __init__(self, cfg, classes: Sequence[str], train_ds, ctxs, emit: Callable[..., None],
                 resuming: bool = False) -> None:
        from gluoncv.loss import SSDMultiBoxLoss
        from mxnet import gluon

        self.cfg, self.ctxs, self.classes = cfg, list(ctxs), list(classes)
        if cfg.cls_loss != "ce" or cfg.sizes or cfg.ratios:
            emit("warning", message=f"{cfg.arch} uses GluonCV's SSDMultiBoxLoss and its preset anchors; "
                                    "--cls-loss/--box-loss/--sizes/--ratios apply to TinySSD only")
        if resuming:     # the checkpoint brings the weights; the start is the run's record (its folder may be gone)
            self.net, anchors, self.info = resumed_for_training(cfg.arch, classes, cfg.pretrained, cfg.out, self.ctxs,
                                                                cfg.input_size)
        else:
            self.net, anchors, self.info = create_for_training(cfg.arch, classes, cfg.pretrained, self.ctxs,
                                                               cfg.input_size)
        self.num_anchors = int(anchors.shape[1])
        norm = self.info.get("normalize") or {}
        self.normalize = {"mean": list(norm.get("mean", MEAN)), "std": list(norm.get("std", STD))}
        self.transform = ZooTrainTransform(cfg.input_size, anchors, augment=cfg.augment,
                                           mean=self.normalize["mean"], std=self.normalize["std"])
        self.num_workers = default_num_workers()
        ds = _TransformedDataset(train_ds, self.transform)
        bs = min(cfg.batch_size, len(train_ds))
        from gluoncv.data.batchify import Stack, Tuple as BTuple
        self.loader = gluon.data.DataLoader(
            ds, bs, shuffle=True, batchify_fn=BTuple(Stack(), Stack(), Stack()),
            last_batch="rollover" if len(train_ds) >= cfg.batch_size else "keep",
            num_workers=self.num_workers)
        n_batches = len(self.loader)
        self.iters = n_batches if cfg.max_iters_per_epoch is None else min(n_batches, cfg.max_iters_per_epoch)
        self.loss = SSDMultiBoxLoss(negative_mining_ratio=cfg.hard_negative_ratio if cfg.hard_negative_ratio > 0 else 3)
        # the step runs a traced copy sharing the weights (BatchNorm+ReLU fused, bfloat16 where the
        # CPU has it); validation and saving use self.net as written
        self.graph = training_graph(self.net, cfg.input_size, self.ctxs, cfg.precision,
                                    distributed=cfg.kvstore.startswith("dist"))

    def epoch(self, epoch: int):
        """Batches of one epoch; the order and augmentation follow ``(seed, epoch)`` when no
        worker processes are used (workers draw from their own forked random state)."""
        np.random.seed((self.cfg.seed * 100003 + epoch) % (2 ** 32))
        self.net.hybridize(static_alloc=True, static_shape=True)  # also drops an inference graph
        self.net._ssd_mode = "train"
        return iter(self.loader)

    def step(self, batch, trainer) -> StepStats:
        from mxnet import autograd, gluon, nd

        data, cls_t, box_t = batch
        n = int(data.shape[0])
        xs = gluon.utils.split_and_load(data, self.ctxs, even_split=False)
        cts = gluon.utils.split_and_load(cls_t, self.ctxs, even_split=False)
        bts = gluon.utils.split_and_load(box_t, self.ctxs, even_split=False)
        with autograd.record():
            cps, bps = [], []
            for x in xs:
                cp, bp, _ = self.graph.block(x)
                cps.append(cp)
                bps.append(bp)
            sum_loss, cls_loss, box_loss = self.loss(cps, bps, cts, bts)
            autograd.backward(sum_loss)
        trainer.step(1)  # SSDMultiBoxLoss already normalizes by the batch's positives
        vals, all_anchors = np.zeros(5), np.zeros(2)
        abs_err = 0.0
        for sl, cl, bl, cp, bp, ct, bt in zip(sum_loss, cls_loss, box_loss, cps, bps, cts, bts):
            mask = (ct > 0).expand_dims(-1)
            parts = (sl.sum(), cl.sum(), bl.sum(), (nd.argmax(cp, axis=-1) == ct).sum(), nd.ones_like(ct).sum(),
                     nd.mean(nd.abs((bt - bp.reshape(bt.shape)) * mask), axis=(1, 2)).sum())
            stats = nd.concat(*[v.reshape((1,)) for v in parts], dim=0).asnumpy()
            vals[:3] += stats[:3] * n
            all_anchors += stats[3:5]
            abs_err += float(stats[5])
        return StepStats(n, vals, abs_err, all_anchors)

    def arithmetic(self) -> Dict[str, Any]:
        return self.graph.meta()

    def meta_fields(self) -> Dict[str, Any]:
        """``anchors``, ``zoo`` and ``normalize`` (the starting point's) sections for meta.json."""
        extra = {**self.info.get("layout", {}),
                 "loss": f"gluoncv SSDMultiBoxLoss (softmax CE, hard negatives {self.loss._negative_mining_ratio:g}:1, "
                         "smooth L1)",
                 "transform": "gluoncv SSDDefaultTrainTransform" if self.cfg.augment else "resize only",
                 "num_workers": self.num_workers}
        fields = zoo_meta_fields(self.net, self.cfg.arch, self.cfg.input_size, self.info, extra=extra)
        fields["normalize"] = dict(self.normalize)
        return fields
