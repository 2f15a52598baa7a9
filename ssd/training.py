"""Training: one loop for the CLI and the app's background jobs.

Speed comes from three choices, measured against the seed's plain d2l loop in
``scripts/benchmark.py``: images are decoded once and kept in memory (or in the decode-once
cache for large photos), augmentation runs in a producer thread, and the network, the
target assignment, the losses and the metrics run as hybridized graphs.

Robustness: every epoch ends with an atomic checkpoint (parameters, trainer state and
history), the best epoch by validation mAP is copied to ``model.params``, and ``resume``
continues from the last complete epoch. SIGTERM/SIGINT stop cleanly after the current
iteration; a ``kill -9`` loses at most the epoch in progress.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .errors import DatasetError, SSDError
from .events import EventLog
from .fsutil import atomic_path, atomic_write_json

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainConfig:
    data: str
    out: str
    arch: str = "tiny"
    epochs: int = 20
    batch_size: int = 32
    # None = the architecture's default (ARCH_DEFAULTS, or GluonCV's reference for zoo models);
    # an explicit value always wins. resolve_defaults() fills them before training.
    lr: Optional[float] = None
    wd: float = 5e-4
    momentum: Optional[float] = None
    lr_schedule: Optional[str] = None    # constant | cosine | step
    warmup_iters: int = 50
    input_size: Optional[int] = None
    sizes: Optional[List[List[float]]] = None
    ratios: Optional[List[List[float]]] = None
    cls_loss: str = "ce"                 # ce | focal
    box_loss: Optional[str] = None       # l1 | smooth_l1
    hard_negative_ratio: Optional[float] = None  # 0 = off; 3 = SSD paper
    loss_norm: Optional[str] = None      # d2l | positives (SSD paper)
    augment: bool = True
    seed: int = 0
    resume: bool = False
    device: str = "auto"                 # auto | cpu | gpu
    val_fraction: float = 0.2            # for datasets without a validation split
    cache: bool = True                   # decode large photos once into an on-disk cache
    limit_train: Optional[int] = None    # use only the first N training images (smoke runs)
    limit_val: Optional[int] = None
    max_iters_per_epoch: Optional[int] = None
    kvstore: str = "device"
    pretrained: Optional[str] = None     # zoo models: "imagenet", "voc", "coco" or a .params path
    command: str = ""
    default: bool = False                # mark the saved model as the app's default

    def validate(self) -> None:
        missing = [k for k in ARCH_DEFAULTS if getattr(self, k) is None]
        if missing:
            raise SSDError(f"unresolved options {missing}: call resolve_defaults(cfg) first")
        if self.epochs < 1:
            raise SSDError("epochs must be at least 1")
        if self.batch_size < 1:
            raise SSDError("batch size must be at least 1")
        if self.lr <= 0:
            raise SSDError("learning rate must be positive")
        if self.lr_schedule not in ("constant", "cosine", "step"):
            raise SSDError(f"unknown lr schedule {self.lr_schedule!r} (constant, cosine, step)")
        from .zoo import is_zoo_arch
        # [zoo hook] zoo nets take any size their layers accept (ssd_300_vgg16_atrous: 300)
        if self.input_size < 64 or (self.input_size % 8 and not is_zoo_arch(self.arch)):
            raise SSDError("input size must be a multiple of 8 and at least 64")


# TinySSD's defaults: the SSD paper's loss (normalized by positives, 3:1 hard negatives, smooth L1)
# with SGD+momentum. On the synthetic set it reaches val mAP 0.87 after 3 epochs, where the
# seed's d2l setup (lr 0.2, no momentum, mean over anchors, L1) is still below 0.01 — see the
# README. The d2l setup remains one flag set away:
#   --lr 0.2 --momentum 0 --loss-norm d2l --hard-negative-ratio 0 --box-loss l1
ARCH_DEFAULTS: Dict[str, Any] = {"lr": 0.01, "momentum": 0.9, "lr_schedule": "cosine", "input_size": 256,
                                 "hard_negative_ratio": 3.0, "loss_norm": "positives", "box_loss": "smooth_l1"}


def resolve_defaults(cfg: "TrainConfig") -> List[str]:
    """Fill every option left at None with the architecture's default; return what was filled."""
    from .zoo import is_zoo_arch, zoo_defaults

    defaults = dict(ARCH_DEFAULTS)
    if is_zoo_arch(cfg.arch):
        defaults.update(zoo_defaults(cfg.arch, cfg.batch_size))
    filled = []
    for name, value in defaults.items():
        if getattr(cfg, name) is None:
            setattr(cfg, name, value)
            filled.append(f"{name}={value!r}")
    return filled


@dataclass
class TrainResult:
    model_dir: str
    history: List[Dict[str, Any]]
    best: Dict[str, Any]
    status: str                           # done | stopped
    device: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


class _StopFlag:
    """Set by SIGTERM/SIGINT (or by a caller) and polled once per iteration."""

    def __init__(self) -> None:
        self.set_ = False

    def __call__(self, *_: Any) -> None:
        self.set_ = True


def _prepare_split(ds, size: int, kind: str, data_root: str, split: str, limit: Optional[int],
                   cache: bool = True):
    """Decode a split once: in memory for small images, the on-disk cache for large photos.

    With ``cache=False`` large photos are decoded from disk every epoch (the baseline the
    cache benchmark compares against).
    """
    from .datasets import InMemoryDataset

    if ds is None or limit == 0:
        return None
    if limit is not None and limit < len(ds):
        ds = _Subset(ds, limit)
    if kind == "coco-camera-traps":
        if not cache:
            return ds
        from .cache import cached_dataset

        return cached_dataset(ds, size, os.path.join(data_root, ".ssd_cache"), split)
    return InMemoryDataset.from_dataset(ds)


class _Subset:
    def __init__(self, ds, n: int) -> None:
        self.ds, self.n = ds, n
        self.classes, self.name = ds.classes, getattr(ds, "name", "")

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if i >= self.n:
            raise IndexError(i)
        return self.ds[i]

    def labels(self):
        return [self.ds[i][1] for i in range(self.n)] if not hasattr(self.ds, "labels") else self.ds.labels()[:self.n]


def batchnorm_layers(net) -> list:
    """Every Gluon ``BatchNorm`` block inside ``net`` (none for the zoo nets' symbol backbones)."""
    from mxnet.gluon import nn

    found = []

    def walk(block) -> None:
        if isinstance(block, nn.BatchNorm):
            found.append(block)
        for child in block._children.values():
            walk(child)

    walk(net)
    return found


def recalibrate_batchnorm(net, batches) -> int:
    """Re-estimate every BatchNorm's running statistics at the current weights ("precise BN").

    MXNet updates running mean/variance only in the backward pass, as an exponential average
    with momentum 0.9, i.e. over the last ~10 iterations. While SGD still moves the weights
    fast, those statistics describe older weights and predict-mode outputs drift far from
    train-mode ones — measured here: mAP 0.0 on the very images a model had overfit, 0.79
    after recalibration. So before each validation and checkpoint we run forward+backward on
    a batch of training images with momentum 0 (statistics = this batch's), then restore it.
    No optimizer step is taken; the gradients written are overwritten by the next iteration.
    Returns the number of BatchNorm layers recalibrated.
    """
    from mxnet import autograd

    bns = batchnorm_layers(net)
    if not bns:
        return 0
    saved = [b._kwargs["momentum"] for b in bns]
    try:
        for b in bns:
            b._kwargs["momentum"] = 0.0
        net.hybridize(static_alloc=True)  # rebuild the cached graph with the new momentum
        for x in batches:
            with autograd.record():
                outs = net(x)
                total = sum(o.sum() for o in outs[1:])
            total.backward()
    finally:
        for b, m in zip(bns, saved):
            b._kwargs["momentum"] = m
        net.hybridize(static_alloc=True)
    return len(bns)


def _lr_scheduler(cfg: TrainConfig, iters_per_epoch: int):
    import mxnet as mx

    total = max(1, cfg.epochs * iters_per_epoch)
    warm = min(cfg.warmup_iters, total // 4)
    if cfg.lr_schedule == "constant":
        return None
    if cfg.lr_schedule == "cosine":
        return mx.lr_scheduler.CosineScheduler(max_update=total, base_lr=cfg.lr, final_lr=cfg.lr * 0.01,
                                               warmup_steps=warm, warmup_begin_lr=cfg.lr * 0.1)
    steps = sorted({max(1, int(total * f)) for f in (0.67, 0.89)})
    return mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=0.1, base_lr=cfg.lr,
                                                warmup_steps=warm, warmup_begin_lr=cfg.lr * 0.1)


def _atomic_save_states(trainer, path: str) -> None:
    with atomic_path(path) as tmp:
        trainer.save_states(tmp)


def build_meta(cfg: TrainConfig, net, classes: List[str], splits, device: str,
               class_mapping: Optional[list] = None) -> Dict[str, Any]:
    """Everything a later reader needs to rebuild and judge the model."""
    from .transforms import MEAN, STD

    anchors = net.anchor_config.to_dict() if hasattr(net, "anchor_config") else {}
    if hasattr(net, "anchor_config"):
        anchors["per_scale"] = net.anchor_config.counts()
        anchors["total"] = net.anchor_config.total()
    return {
        "arch": cfg.arch, "classes": list(classes), "class_mapping": class_mapping,
        "input_size": cfg.input_size, "anchors": anchors,
        "normalize": {"mean": list(MEAN), "std": list(STD)},
        "dataset": {"path": os.path.abspath(cfg.data), "kind": splits.kind,
                    "num_train": len(splits.train), "num_val": len(splits.val) if splits.val is not None else 0,
                    "skipped": dict(splits.skipped)},
        "training": {"args": asdict(cfg), "command": cfg.command, "device": device},
        "default": bool(cfg.default),
        "status": "training",
        "metrics": {"history": [], "best": {}},
    }


def train(cfg: TrainConfig, on_event: Optional[Callable[[Dict[str, Any]], None]] = None,
          stop: Optional[Callable[[], bool]] = None, install_signal_handlers: bool = True) -> TrainResult:
    """Train a model into ``cfg.out``; see the module docstring for the guarantees."""
    import mxnet as mx
    from mxnet import autograd, gluon

    from .datasets import open_dataset
    from .detection import Detector
    from .device import select_devices
    from .evaluation import evaluate
    from .losses import SSDTrainLoss
    from .store import PARAMS_FILE, library_versions, save_model, write_meta
    from .transforms import AugmentConfig, BatchLoader

    from .zoo import check_zoo_config, is_zoo_arch

    defaults_used = resolve_defaults(cfg)
    if is_zoo_arch(cfg.arch):
        check_zoo_config(cfg)
    cfg.validate()
    os.makedirs(cfg.out, exist_ok=True)
    ckpt_dir = os.path.join(cfg.out, CHECKPOINT_DIR)
    ckpt_json = os.path.join(ckpt_dir, "checkpoint.json")
    log = EventLog(cfg.out)

    def emit(type_: str, **fields: Any) -> None:
        ev = log.emit(type_, **fields)
        if on_event is not None:
            on_event(ev)

    flag = _StopFlag()
    old_handlers = {}
    if install_signal_handlers:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                old_handlers[sig] = signal.signal(sig, flag)
            except ValueError:  # not the main thread
                pass

    def should_stop() -> bool:
        return flag.set_ or (stop is not None and stop())

    try:
        resume_state = None
        if cfg.resume:
            if not os.path.isfile(ckpt_json):
                raise SSDError(f"--resume: no checkpoint in {ckpt_dir}; start without --resume")
            with open(ckpt_json, encoding="utf-8") as fh:
                resume_state = json.load(fh)
        elif os.path.isfile(ckpt_json):
            raise SSDError(f"{cfg.out} already holds a training run; pass --resume to continue it "
                           "or choose another --out")
        elif os.path.exists(log.path):
            os.unlink(log.path)  # a previous run that never checkpointed: start its log afresh

        mx.random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        splits = open_dataset(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed)
        if len(splits.train) == 0:
            raise DatasetError(f"{cfg.data}: the training split has no images")
        classes = splits.classes
        device = select_devices(prefer_gpu=cfg.device != "cpu")
        if cfg.device == "gpu" and device.kind != "gpu":
            emit("warning", message=f"GPU requested but not usable; training on the CPU: {device.reason}")
        ctxs = device.contexts
        emit("start", config=asdict(cfg), device=device.summary(), classes=classes,
             num_train=len(splits.train), num_val=len(splits.val) if splits.val is not None else 0,
             resumed_from=resume_state["epoch"] if resume_state else None)
        _print(f"training on {device.summary()}")
        if defaults_used:
            _print(f"{cfg.arch} defaults: {', '.join(defaults_used)}")

        train_ds = _prepare_split(splits.train, cfg.input_size, splits.kind, cfg.data, "train", cfg.limit_train,
                              cfg.cache)
        val_ds = _prepare_split(splits.val, cfg.input_size, splits.kind, cfg.data, "val", cfg.limit_val, cfg.cache)

        from .model import build_model
        zoo_run = None
        if is_zoo_arch(cfg.arch):  # [zoo hook] GluonCV model-zoo SSD: net, data loader and loss from ssd/zoo.py
            from .zoo import ZooTraining
            zoo_run = ZooTraining(cfg, classes, train_ds, ctxs, emit, resuming=resume_state is not None)
            net, iters = zoo_run.net, zoo_run.iters
        else:
            net = build_model(cfg.arch, len(classes), cfg.input_size, sizes=cfg.sizes, ratios=cfg.ratios)
            net.initialize(init=mx.init.Xavier(), ctx=ctxs)
            net.hybridize(static_alloc=True)
            loss_fn = SSDTrainLoss(cfg.cls_loss, cfg.box_loss,
                                   negative_mining_ratio=cfg.hard_negative_ratio if cfg.hard_negative_ratio > 0 else -1,
                                   normalization=cfg.loss_norm)
            loss_fn.hybridize(static_alloc=True)

            loader = BatchLoader(train_ds, cfg.batch_size, cfg.input_size,
                                 AugmentConfig() if cfg.augment else None, shuffle=True, seed=cfg.seed)
            iters = len(loader) if cfg.max_iters_per_epoch is None else min(len(loader), cfg.max_iters_per_epoch)
        opt_params = {"learning_rate": cfg.lr, "wd": cfg.wd}
        if cfg.momentum:
            opt_params["momentum"] = cfg.momentum
        sched = _lr_scheduler(cfg, iters)
        if sched is not None:
            opt_params["lr_scheduler"] = sched
        trainer = gluon.Trainer(net.collect_params(), "sgd", opt_params,
                                kvstore=cfg.kvstore if len(ctxs) > 1 or cfg.kvstore.startswith("dist") else None)

        meta = build_meta(cfg, net, classes, splits, device.summary(),
                          class_mapping=getattr(splits, "class_mapping", None))
        meta["versions"] = library_versions()
        if zoo_run is not None:  # [zoo hook] anchors (GluonCV layout) and the zoo section
            meta.update(zoo_run.meta_fields())
        history: List[Dict[str, Any]] = []
        best: Dict[str, Any] = {}
        best_pr: Dict[str, Any] = {}

        def metrics() -> Dict[str, Any]:
            return {"history": history, "best": best, "pr_curves": best_pr}
        start_epoch = 0
        if resume_state is not None:
            if resume_state.get("classes") != classes or resume_state.get("arch") != cfg.arch:
                raise SSDError(f"cannot resume: the checkpoint in {ckpt_dir} was trained on "
                               f"{resume_state.get('arch')} with classes {resume_state.get('classes')}")
            net.load_parameters(os.path.join(ckpt_dir, "checkpoint.params"), ctx=ctxs)
            trainer.load_states(os.path.join(ckpt_dir, "checkpoint.states"))
            history = resume_state["history"]
            best = resume_state.get("best", {})
            best_pr = resume_state.get("pr_curves", {})
            start_epoch = int(resume_state["epoch"])
            _print(f"resuming after epoch {start_epoch}")
        write_meta(cfg.out, {**meta, "metrics": metrics()})

        status = "done"
        global_iter = start_epoch * iters
        total_iters = cfg.epochs * iters
        run_start = time.time()
        for epoch in range(start_epoch, cfg.epochs):
            t_epoch = time.time()
            sums = np.zeros(5)  # loss, cls, box, correct, count
            abs_err = 0.0
            seen = 0
            bar = _bar(iters, f"epoch {epoch + 1}/{cfg.epochs}")
            last_report = 0.0
            stopped = False
            # [zoo hook] zoo runs bring their own batches and step (forward, loss, backward, trainer.step)
            batches = zoo_run.epoch(epoch) if zoo_run is not None else loader.epoch(epoch)
            for it, batch in enumerate(batches):
                if it >= iters:
                    break
                if should_stop():
                    stopped = True
                    break
                if zoo_run is not None:  # [zoo hook]
                    n, zoo_sums, zoo_abs_err = zoo_run.step(batch, trainer)
                    sums += zoo_sums
                    abs_err += zoo_abs_err
                    seen += n
                else:
                    xb, yb = batch
                    xs = gluon.utils.split_and_load(mx.nd.array(xb), ctxs, even_split=False)
                    ys = gluon.utils.split_and_load(mx.nd.array(yb), ctxs, even_split=False)
                    outs = []
                    with autograd.record():
                        for x, y in zip(xs, ys):
                            anchors, cls_preds, box_preds = net(x)
                            outs.append(loss_fn(anchors, cls_preds, box_preds, y))
                    autograd.backward([o[0] for o in outs])
                    trainer.step(xb.shape[0])
                    for o in outs:
                        vals = [float(v.sum().asscalar()) for v in o]
                        sums += np.array(vals[:5])
                        abs_err += vals[5]
                    seen += xb.shape[0]
                global_iter += 1
                if bar is not None:
                    bar.update(1)
                now = time.time()
                if now - last_report >= 1.0 or it == iters - 1:
                    last_report = now
                    elapsed = now - run_start
                    done_iters = global_iter - start_epoch * iters
                    eta = elapsed / max(done_iters, 1) * (total_iters - global_iter)
                    emit("progress", epoch=epoch + 1, epochs=cfg.epochs, iter=it + 1, iters=iters,
                         global_iter=global_iter, total_iters=total_iters, loss=sums[0] / max(seen, 1),
                         samples_per_s=seen / max(now - t_epoch, 1e-9), eta_s=eta,
                         lr=trainer.learning_rate)
            if bar is not None:
                bar.close()
            if stopped:
                status = "stopped"
                break
            train_time = time.time() - t_epoch
            if zoo_run is None and loader.skipped:
                emit("warning", message=f"{len(loader.skipped)} training image(s) could not be decoded and "
                                        "were skipped")
            rec = {"epoch": epoch + 1, "loss": sums[0] / max(seen, 1), "cls_loss": sums[1] / max(seen, 1),
                   "box_loss": sums[2] / max(seen, 1), "class_err": 1.0 - sums[3] / max(sums[4], 1),
                   "bbox_mae": abs_err / max(seen, 1), "samples_per_s": seen / max(train_time, 1e-9),
                   "lr": float(trainer.learning_rate), "train_time_s": train_time}
            if batchnorm_layers(net):  # zoo nets expose none: don't build a batch for nothing
                calib = BatchLoader(train_ds, min(64, len(train_ds)), cfg.input_size, None, shuffle=True,
                                    seed=cfg.seed + 7919)
                xb_cal, _ = next(iter(calib.epoch(epoch)))
                # every device: saving the parameters averages them across devices
                recalibrate_batchnorm(net, [mx.nd.array(xb_cal, ctx=c) for c in ctxs])
            if val_ds is not None and len(val_ds):
                det = Detector(net, meta, ctx=ctxs[0], hybridize=False, warm=False)
                res = evaluate(det, val_ds)
                rec["val_map"] = res.map
                rec["val_ap"] = res.per_class_ap
                epoch_pr = res.pr_curves
            else:
                epoch_pr = {}
            history.append(rec)
            improved = (not best or rec.get("val_map", -1) >= best.get("val_map", -1)
                        if "val_map" in rec else True)
            # checkpoint: params and trainer state first, then the JSON that points at them
            os.makedirs(ckpt_dir, exist_ok=True)
            from .store import save_params
            save_params(net, os.path.join(ckpt_dir, "checkpoint.params"))
            _atomic_save_states(trainer, os.path.join(ckpt_dir, "checkpoint.states"))
            if improved:
                best = dict(rec)
                best_pr = epoch_pr  # the model report's precision-recall curves, for the saved epoch
            atomic_write_json(ckpt_json, {"epoch": epoch + 1, "history": history, "best": best, "pr_curves": best_pr,
                                          "classes": classes, "arch": cfg.arch})
            if improved:
                save_model(cfg.out, None, {**meta, "metrics": metrics()},
                           params_from=os.path.join(ckpt_dir, "checkpoint.params"))
            else:
                write_meta(cfg.out, {**meta, "metrics": metrics()})
            emit("epoch", **rec)
            _print(_epoch_line(rec, cfg.epochs))
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        final = {**meta, "metrics": metrics(), "status": status,
                 "finished": now, "saved": now}
        if os.path.isfile(os.path.join(cfg.out, PARAMS_FILE)):
            write_meta(cfg.out, final)
        emit(status, best=best, epochs_done=len(history))
        return TrainResult(cfg.out, history, best, status, device.summary())
    except SSDError as err:
        emit("error", message=str(err))
        raise
    except Exception as err:
        emit("error", message=f"{type(err).__name__}: {err}")
        raise
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)


def _epoch_line(rec: Dict[str, Any], epochs: int) -> str:
    s = (f"epoch {rec['epoch']:>3}/{epochs}  loss {rec['loss']:.4f}  class err {rec['class_err']:.2e}  "
         f"bbox mae {rec['bbox_mae']:.2e}  {rec['samples_per_s']:.1f} img/s")
    if "val_map" in rec:
        s += f"  val mAP {rec['val_map']:.4f}"
    return s


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _bar(total: int, desc: str):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)


def command_line(argv: List[str]) -> str:
    """The command as a person would retype it (stored in the model's metadata)."""
    return "python -m ssd " + " ".join(shlex.quote(a) for a in argv)
