"""The optimizer of a run: SGD with the configured learning-rate schedule, on the right kvstore."""
from __future__ import annotations

from typing import Any


def lr_scheduler(cfg, iters_per_epoch: int):
    """The learning-rate schedule of ``cfg`` over the whole run (None = constant)."""
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


def make_trainer(net, cfg, iters_per_epoch: int, num_devices: int) -> Any:
    """``gluon.Trainer`` (SGD, weight decay, momentum, schedule); a kvstore only when it is needed."""
    from mxnet import gluon

    opt_params = {"learning_rate": cfg.lr, "wd": cfg.wd}
    if cfg.momentum:
        opt_params["momentum"] = cfg.momentum
    sched = lr_scheduler(cfg, iters_per_epoch)
    if sched is not None:
        opt_params["lr_scheduler"] = sched
    kvstore = cfg.kvstore if num_devices > 1 or cfg.kvstore.startswith("dist") else None
    return gluon.Trainer(net.collect_params(), "sgd", opt_params, kvstore=kvstore)
