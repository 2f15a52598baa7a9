"""The optimizer of a run: SGD with the configured learning-rate schedule, on the right kvstore."""
from __future__ import annotations

from typing import Any


def lr_scheduler(cfg, iters_per_epoch: int, lr: float = None):
    """The learning-rate schedule of ``cfg`` over the whole run (None = constant), peaking at ``lr``."""
    import mxnet as mx

    lr = cfg.lr if lr is None else lr
    total = max(1, cfg.epochs * iters_per_epoch)
    warm = min(cfg.warmup_iters, total // 4)
    if cfg.lr_schedule == "constant":
        return None
    if cfg.lr_schedule == "cosine":
        return mx.lr_scheduler.CosineScheduler(max_update=total, base_lr=lr, final_lr=lr * 0.01,
                                               warmup_steps=warm, warmup_begin_lr=lr * 0.1)
    steps = sorted({max(1, int(total * f)) for f in (0.67, 0.89)})
    return mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=0.1, base_lr=lr,
                                                warmup_steps=warm, warmup_begin_lr=lr * 0.1)


def make_trainer(net, cfg, iters_per_epoch: int, num_devices: int, member: Any = None) -> Any:
    """``gluon.Trainer`` (SGD, weight decay, momentum, schedule); a kvstore only when it is needed.

    In a distributed run (``member``: ``ssd.training.distributed.Membership``) the trainer uses
    the worker's dist kvstore, averages the summed gradients over the workers and scales the
    learning rate for the global batch; the update runs on each worker, not on the servers.
    """
    from mxnet import gluon

    scale = member.lr_scale if member is not None and member.distributed else 1.0
    opt_params = {"learning_rate": cfg.lr * scale, "wd": cfg.wd}
    if cfg.momentum:
        opt_params["momentum"] = cfg.momentum
    sched = lr_scheduler(cfg, iters_per_epoch, cfg.lr * scale)
    if sched is not None:
        opt_params["lr_scheduler"] = sched
    if member is not None and member.distributed:
        opt_params["rescale_grad"] = 1.0 / member.workers
        return gluon.Trainer(net.collect_params(), "sgd", opt_params, kvstore=member.kvstore,
                             update_on_kvstore=False)
    kvstore = cfg.kvstore if num_devices > 1 else None
    return gluon.Trainer(net.collect_params(), "sgd", opt_params, kvstore=kvstore)
