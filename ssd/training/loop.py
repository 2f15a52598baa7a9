"""Training: one loop for every architecture, for the CLI and the app's background jobs.

The loop is SSD's algorithm with the architecture left out: for each epoch, step through the
batches, then recalibrate BatchNorm, validate (VOC07 mAP), checkpoint, and keep the best epoch
as the model. What differs between TinySSD and a GluonCV SSD (the net, its batches and targets,
its loss, its metadata) comes from the architecture's recipe as a ``TrainingPlan``.

Speed comes from the plans (decode once, augment in a producer thread, targets + losses +
metrics in one hybridized graph; see ``scripts/benchmark.py``). Robustness: every epoch ends
with an atomic checkpoint, the best epoch by validation mAP is copied to ``model.params``, and
``resume`` continues from the last complete epoch. SIGTERM/SIGINT stop cleanly after the
current iteration; a ``kill -9`` loses at most the epoch in progress.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ssd.base import device as devices
from ssd.base.atomic import remove_stale_temp_files
from ssd.base.signals import stop_requests
from ssd.base.text import terminal_safe
from ssd.base.errors import DatasetError, SSDError
from ssd.data.dataset import open_dataset
from ssd.data.identity import dataset_identity
from ssd.data.decoded import prepare_split
from ssd.data.shard import first_images
from ssd.inference.detector import Detector
from ssd.inference.evaluation import evaluate
from ssd.store import PARAMS_FILE, finish_interrupted_save, save_model, write_meta
from ssd.training.batchnorm import recalibrate_batchnorm
from ssd.training.checkpoint import Checkpoint, refuse_other_dataset
from ssd.training import distributed
from ssd.training.config import TrainConfig, prepared
from ssd.training.distributed import Membership
from ssd.training.events import EventLog, WorkerLog
from ssd.training.metadata import build_meta, start_note
from ssd.training.metrics import EpochMeter, epoch_line
from ssd.models.training_graph import arithmetic_text
from ssd.training.optimizer import make_trainer
from ssd.training.progress import RunProgress


@dataclass
class TrainResult:
    model_dir: str
    history: List[Dict[str, Any]]
    best: Dict[str, Any]
    status: str                           # done | stopped
    device: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    """The run's history so far and its best epoch (with that epoch's precision-recall curves)."""

    history: List[Dict[str, Any]] = field(default_factory=list)
    best: Dict[str, Any] = field(default_factory=dict)
    best_pr: Dict[str, Any] = field(default_factory=dict)
    dataset: Dict[str, Any] = field(default_factory=dict)    # the identity of the data trained on

    @classmethod
    def from_checkpoint(cls, state: Optional[Dict[str, Any]], dataset: Dict[str, Any]) -> "RunRecord":
        if not state:
            return cls(dataset=dataset)
        return cls(state["history"], state.get("best", {}), state.get("pr_curves", {}), dataset)

    def add(self, rec: Dict[str, Any], pr_curves: Dict[str, Any]) -> bool:
        """Append an epoch; True when it is the best so far (by val mAP; the last without validation)."""
        self.history.append(rec)
        improved = ("val_map" not in rec or not self.best
                    or rec["val_map"] >= self.best.get("val_map", -1))
        if improved:
            self.best, self.best_pr = dict(rec), pr_curves
        return improved

    def metrics(self) -> Dict[str, Any]:
        return {"history": self.history, "best": self.best, "pr_curves": self.best_pr}


def train(cfg: TrainConfig, on_event: Optional[Callable[[Dict[str, Any]], None]] = None,
          stop: Optional[Callable[[], bool]] = None, install_signal_handlers: bool = True) -> TrainResult:
    """Train a model into ``cfg.out``; see the module docstring for the guarantees.

    The options and the data are checked before anything is written, so a run that cannot start
    leaves no output folder behind (a mistyped ``--data`` used to leave one holding only an error).
    """
    recipe, defaults_used = prepared(cfg)
    # before anything is written: a refused run leaves the folder (and its event log) as it was
    resume_state = Checkpoint(cfg.out).state_for(cfg.resume, cfg.out, cfg.fixed_settings(), cfg.epochs)
    member = distributed.join(cfg.kvstore)   # blocks until every worker of a distributed run is up
    if member.distributed:
        _print(distributed.joined_line(member))   # the launcher names this worker by it from now on
    try:
        splits = _open_splits(cfg)
    except Exception as err:
        _refused(cfg, member, err, on_event)
        raise
    identity = dataset_identity(splits)
    refuse_other_dataset(resume_state, identity, cfg.out, cfg.data)   # before anything is written, too
    if member.writes:
        os.makedirs(cfg.out, exist_ok=True)
    log = EventLog(cfg.out) if member.writes else WorkerLog()

    def emit(type_: str, **fields: Any) -> None:
        ev = log.emit(type_, **fields)
        if on_event is not None:
            on_event(ev)

    with stop_requests(install_signal_handlers) as flag:
        try:
            return _run(cfg, recipe, defaults_used, splits, log, emit,
                        lambda: flag.is_set() or (stop is not None and stop()), member, resume_state, identity)
        except Exception as err:
            emit("error", message=_error_text(err))
            raise


def _open_splits(cfg: TrainConfig):
    """The dataset's splits, opened (labels read, images not decoded); ``DatasetError`` if unusable."""
    splits = open_dataset(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed)
    if len(splits.train) == 0:
        raise DatasetError(f"{cfg.data}: the training split has no images")
    return splits


def _refused(cfg: TrainConfig, member: Membership, err: BaseException,
             on_event: Optional[Callable[[Dict[str, Any]], None]]) -> None:
    """Say why a run could not start: to the caller, and in the event log of a folder that exists.

    Why: a background job's launcher makes the run folder (for its output log) before training
    starts; the Train page reads that folder's events to say why the run failed. No folder is made.
    """
    log = EventLog(cfg.out) if member.writes and os.path.isdir(cfg.out) else WorkerLog()
    ev = log.emit("error", message=_error_text(err))
    if on_event is not None:
        on_event(ev)


def _error_text(err: BaseException) -> str:
    """An error as the event log records it: our own errors speak for themselves."""
    return str(err) if isinstance(err, SSDError) else f"{type(err).__name__}: {err}"


def _run(cfg: TrainConfig, recipe, defaults_used: List[str], splits, log: EventLog, emit, should_stop,
         member: Membership, resume_state: Optional[Dict[str, Any]], identity: Dict[str, Any]) -> TrainResult:
    """The algorithm: prepare, then epochs of steps, validation and checkpoints, then finish.

    In a distributed run every worker runs this on its own shard; only rank 0 (``member.writes``)
    validates and writes the model folder (see ``ssd.training.distributed``).
    """
    import mxnet as mx

    ckpt = Checkpoint(cfg.out)
    if resume_state is None and member.writes and os.path.exists(log.path):
        os.unlink(log.path)  # a previous run that never checkpointed: start its log afresh
    mx.random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    shard, train_ds, val_ds, dist_info = _decode_splits(cfg, splits, member)
    device = _select_device(cfg, emit)
    _announce(cfg, splits, len(train_ds), device, resume_state, dist_info, defaults_used, member, emit)
    _report_decode_skips({"training": train_ds, "validation": val_ds}, emit)
    plan = recipe.training_plan(cfg, splits.classes, train_ds, device.contexts, emit,
                                resuming=resume_state is not None)
    _report_arithmetic(cfg, plan.arithmetic(), emit, member.writes)
    trainer = make_trainer(plan.net, cfg, plan.iters, len(device.contexts), member)
    meta = build_meta(cfg, plan, splits.classes, splits, device.summary(),
                      class_mapping=getattr(splits, "class_mapping", None))
    if dist_info:
        meta["training"] = {**meta.get("training", {}), "distributed": dist_info}
    if member.writes and resume_state is None and start_note(meta, splits.classes):
        _print(start_note(meta, splits.classes))
    record = RunRecord.from_checkpoint(resume_state, identity)
    start_epoch = _start_or_resume(cfg, ckpt, plan, trainer, device.contexts, resume_state, splits.classes,
                                   member, {**meta, "metrics": record.metrics()})
    distributed.start_together(member, trainer, plan.net, cfg.input_size, device.contexts[0])
    last_state = resume_state
    status = "done"
    progress = RunProgress(cfg.epochs, start_epoch, plan.iters, cfg.batch_size, len(val_ds) if val_ds else 0,
                           record.history)
    for epoch in range(start_epoch, cfg.epochs):
        meter = _train_epoch(plan, trainer, epoch, progress, emit, should_stop, member.workers)
        if meter is None:
            status = "stopped"
            break
        if member.distributed:   # the workers still agree, before the epoch is saved
            distributed.check_in_step(member, trainer._params, f"after epoch {epoch + 1}")
        rec = _epoch_record(meter, trainer, plan, member, emit)
        progress.validation_starts()
        pr_curves = (_validate(plan, epoch, val_ds, meta, device.contexts, rec,
                               _validation_progress(emit, epoch, progress, rec)) if member.writes else {})
        rec["val_time_s"] = progress.end_elapsed()
        improved = record.add(rec, pr_curves)
        if member.writes:
            last_state = _save_epoch(cfg, ckpt, plan, trainer, meta, record, improved, splits.classes, last_state)
            emit("epoch", **rec)
            _print(epoch_line(rec, cfg.epochs))
        progress.epoch_ends()
    if member.writes:
        _finish(cfg, meta, record, status)
    distributed.write_trace(member, plan.net, shard, progress.done)
    emit(status, best=record.best, epochs_done=len(record.history))
    return TrainResult(cfg.out, record.history, record.best, status, device.summary(),
                       extra={"distributed": dist_info} if dist_info else {})


def _decode_splits(cfg: TrainConfig, splits, member: Membership):
    """Train (this worker's shard of it) and val decoded once for the epochs ahead.

    Returns ``(shard, train, val, distributed layout or None)`` (``shard``: the images this worker
    was given, before decoding); only rank 0 decodes val.
    """
    train, dropped = distributed.shard_of(first_images(splits.train, cfg.limit_train), member)
    train_ds = prepare_split(train, cfg.input_size, splits.kind, cfg.data, distributed.split_name(member), None,
                             cfg.cache)
    val_ds = (prepare_split(splits.val, cfg.input_size, splits.kind, cfg.data, "val", cfg.limit_val, cfg.cache)
              if member.writes else None)
    info = member.summary(cfg.batch_size, cfg.lr, len(train), dropped) if member.distributed else None
    if dropped and member.writes:
        _print(f"{dropped} training image(s) left out so that the {member.workers} workers' shards are equal")
    return train, train_ds, val_ds, info


def _announce(cfg: TrainConfig, splits, num_train_here: int, device, resume_state: Optional[Dict[str, Any]],
              dist_info: Optional[Dict[str, Any]], defaults_used: List[str], member: Membership, emit) -> None:
    """The ``start`` event (what the Train page and ``follow`` show first) and the console's first lines."""
    emit("start", config=asdict(cfg), device=device.summary(), classes=splits.classes,
         num_train=len(splits.train), num_val=len(splits.val) if splits.val is not None else 0,
         resumed_from=resume_state["epoch"] if resume_state else None, pid=os.getpid(), host=socket.gethostname(),
         **({"distributed": dist_info} if dist_info else {}))
    _print(f"training on {device.summary()}" + (f", {member.label} "
                                                 f"({num_train_here} images)" if member.distributed else ""))
    if defaults_used and member.writes:
        _print(f"{cfg.arch} defaults: {', '.join(defaults_used)}")


def _start_or_resume(cfg: TrainConfig, ckpt: Checkpoint, plan, trainer, ctxs, resume_state: Optional[Dict[str, Any]],
                     classes: List[str], member: Membership, meta: Dict[str, Any]) -> int:
    """Tidy the model folder, restore the checkpoint when resuming, publish; the first epoch to run."""
    start_epoch = 0
    if member.writes:                      # the model folder is rank 0's alone
        finish_interrupted_save(cfg.out)
        for folder in (cfg.out, ckpt.dir):     # what writers killed mid-file left behind
            remove_stale_temp_files(folder)
    if resume_state is not None:
        ckpt.restore(plan.net, trainer, ctxs, resume_state, cfg.arch, classes)
        start_epoch = int(resume_state["epoch"])
        _print(f"resuming after epoch {start_epoch}")
    if member.writes:
        _publish(cfg, ckpt, resume_state, meta)
    return start_epoch


def _epoch_record(meter: EpochMeter, trainer, plan, member: Membership, emit) -> Dict[str, Any]:
    """The epoch's history record (speed over all workers), warning about images that did not decode."""
    rec = meter.record(trainer.learning_rate)
    if member.distributed:
        rec["samples_per_s"] = rec.get("samples_per_s", 0.0) * member.workers  # all workers together
    if plan.skipped_images():
        emit("warning", message=f"{plan.skipped_images()} training image(s) could not be decoded and "
                                "were skipped")
    return rec


def _report_decode_skips(decoded: Dict[str, Any], emit) -> None:
    """Warn about images the decode-once cache left out (a truncated JPEG passes the dataset's header
    check and fails only at full decode), with the reasons; the cache drops them without a word."""
    for split, ds in decoded.items():
        skipped = getattr(ds, "skipped", None)
        if isinstance(skipped, dict) and sum(skipped.values()):
            reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
            msg = (f"{sum(skipped.values())} image(s) of the {split} split could not be decoded and were "
                   f"left out ({reasons})")
            emit("warning", message=msg)
            _print(msg)


def _select_device(cfg: TrainConfig, emit):
    device = devices.select_devices(prefer_gpu=cfg.device != "cpu")  # looked up late: tests patch it
    if cfg.device == "gpu" and device.kind != "gpu":
        emit("warning", message=f"GPU requested but not usable; training on the CPU: {device.reason}")
    return device


def _report_arithmetic(cfg: TrainConfig, arith: Dict[str, Any], emit, writes: bool) -> None:
    """Say how the step computes (an ``arithmetic`` event; a warning when bfloat16 was asked for
    and cannot be had)."""
    emit("arithmetic", **arith)
    if cfg.precision == "bf16" and arith["precision"] != "bf16":
        emit("warning", message=f"bfloat16 training requested but not used; float32 instead: {arith['reason']}")
    if writes:
        _print(f"training arithmetic: {arithmetic_text(arith)}")


def _train_epoch(plan, trainer, epoch: int, progress: RunProgress, emit, should_stop,
                 workers: int = 1) -> Optional[EpochMeter]:
    """One pass over the training batches; None when a stop was asked for mid-epoch.

    ``samples_per_s`` in progress events counts all ``workers`` (they step in lockstep).
    """
    meter = EpochMeter(epoch)
    bar = _bar(plan.iters, f"epoch {epoch + 1}/{progress.epochs}")
    progress.epoch_starts()
    try:
        for it, batch in enumerate(plan.epoch(epoch)):
            if it >= plan.iters:
                break
            if should_stop():
                return None
            meter.add(plan.step(batch, trainer))
            progress.step_done()
            if bar is not None:
                bar.update(1)
            if progress.due(it == plan.iters - 1):
                emit("progress", **progress.training_fields(epoch, it + 1), loss=meter.mean_loss,
                     samples_per_s=meter.samples_per_s() * workers, lr=trainer.learning_rate)
    finally:
        if bar is not None:
            bar.close()
    return meter


def _validation_progress(emit, epoch: int, progress: RunProgress, rec: Dict[str, Any]) -> Callable[[int, int], None]:
    """Progress events for the validation pass (phase "validate"): the first at once, then at most one
    a second, and the last. They carry the epoch's own training loss and speed (the page showed the
    previous epoch's while this one was validated)."""
    def report(done: int, total: int) -> None:
        progress.validated(done)
        if progress.due(done in (0, total)):
            emit("progress", **progress.validation_fields(epoch), loss=rec["loss"],
                 samples_per_s=rec["samples_per_s"])

    return report


def _validate(plan, epoch: int, val_ds, meta: Dict[str, Any], ctxs, rec: Dict[str, Any],
              progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]:
    """Recalibrate BatchNorm, then VOC07 mAP on the validation split into ``rec``; the PR curves.

    ``progress(0, n)`` comes first, so the phase is named while BatchNorm is recalibrated."""
    has_val = val_ds is not None and len(val_ds) > 0
    if progress is not None and has_val:
        progress(0, len(val_ds))
    batches = plan.calibration_batches(epoch)
    if batches:
        recalibrate_batchnorm(plan.net, batches)
    if not has_val:
        return {}
    det = Detector(plan.net, meta, ctx=ctxs[0], hybridize=False, warm=False)
    res = evaluate(det, val_ds, progress=progress)
    rec["val_map"], rec["val_ap"] = res.map, res.per_class_ap
    rec["val_micro_f1"], rec["val_accuracy"] = res.micro_f1, res.accuracy
    return res.pr_curves


def _save_epoch(cfg: TrainConfig, ckpt: Checkpoint, plan, trainer, meta: Dict[str, Any], record: RunRecord,
                improved: bool, classes: List[str], previous: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Checkpoint the epoch (the commit point), then publish the model from it."""
    state = ckpt.save(plan.net, trainer, {"epoch": record.history[-1]["epoch"], "history": record.history,
                                          "best": record.best, "pr_curves": record.best_pr, "classes": classes,
                                          "arch": cfg.arch, "settings": cfg.fixed_settings(),
                                          "dataset": record.dataset},
                     best=improved, previous=previous)
    _publish(cfg, ckpt, state if improved else None, {**meta, "metrics": record.metrics()})
    return state


def _publish(cfg: TrainConfig, ckpt: Checkpoint, state: Optional[Dict[str, Any]], meta: Dict[str, Any]) -> None:
    """The model folder's weights and metadata as one step: the checkpoint's best weights when
    ``state`` names them (a new best, or a resume that must repair what a kill left), else only
    the metadata (its best epoch is unchanged, so it still describes ``model.params``)."""
    best = ckpt.best_params(state) if state else None
    if best is not None:
        save_model(cfg.out, None, meta, params_from=best)
    else:
        write_meta(cfg.out, meta)


def _finish(cfg: TrainConfig, meta: Dict[str, Any], record: RunRecord, status: str) -> None:
    """Final metadata: status and time stamps (only where a model was saved)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if os.path.isfile(os.path.join(cfg.out, PARAMS_FILE)):
        write_meta(cfg.out, {**meta, "metrics": record.metrics(), "status": status, "finished": now, "saved": now})


def _print(msg: str) -> None:
    print(terminal_safe(msg, keep_newlines=True), file=sys.stderr, flush=True)   # paths and names from outside


def _bar(total: int, desc: str):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)
