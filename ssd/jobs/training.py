"""Training jobs (``python -m ssd train`` in the background) and the Train page's view of runs:
which folders hold one, whether it can resume, its progress and overview, so the page only lays
out what these helpers return."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from ssd.base.errors import JobError, SSDError
from ssd.base.processes import pid_alive
from ssd.base.text import format_duration  # noqa: F401 - the pages read it from jobs
from ssd.jobs.process import JobInfo, alive, current, folders_holding, launch, nothing_starts, read_log_tail, stop
from ssd.training.events import EVENTS_FILE, read_events
from ssd.workspace import models_dir

LOCK_FILE = ".train.lock"
LOG_FILE = "train.log"


@dataclass
class RunStatus:
    """What a UI shows about a run, reconstructed from its event log alone."""

    state: str                                  # running | external | done | stopped | error | interrupted | new
    progress: Optional[Dict[str, Any]] = None   # the last 'progress' event
    history: List[Dict[str, Any]] = field(default_factory=list)
    message: str = ""
    start: Optional[Dict[str, Any]] = None


def config_to_argv(cfg) -> List[str]:
    """A ``TrainConfig`` as ``train`` CLI arguments (only the fields that differ from defaults)."""
    from ssd.training.config import TrainConfig

    flags = {"arch": "--model", "max_iters_per_epoch": "--max-iters"}
    argv = ["train"]
    default = TrainConfig(data="", out="")
    for f in fields(TrainConfig):
        if f.name == "command":
            continue
        value = getattr(cfg, f.name)
        if f.name not in ("data", "out") and value == getattr(default, f.name):
            continue
        flag = flags.get(f.name, "--" + f.name.replace("_", "-"))
        if f.name in ("augment", "cache"):             # on by default: the flag turns it off
            if not value:
                argv.append(f"--no-{f.name}")
        elif isinstance(value, bool):
            if value:
                argv.append(flag)
        elif f.name in ("sizes", "ratios"):
            argv += [flag, ";".join(",".join(str(v) for v in grp) for grp in value)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def current_job(models_root: str) -> Optional[JobInfo]:
    """The running training job of this models folder, clearing a stale lock."""
    return current(os.path.join(models_root, LOCK_FILE))


def start_job(models_root: str, cfg) -> JobInfo:
    """Launch ``python -m ssd train`` for ``cfg`` in the background; ``JobError`` if one runs."""
    os.makedirs(models_root, exist_ok=True)
    running = current_job(models_root)
    if running is not None:
        raise JobError(f"a training job is already running: {running.name} (pid {running.pid}); "
                       "stop it or wait for it to finish")
    return launch(os.path.join(models_root, LOCK_FILE), config_to_argv(cfg), cfg.out, LOG_FILE, "training job")


def stop_job(models_root: str, timeout: float = 0.0, pid: Optional[int] = None) -> bool:
    """Ask the running job (with ``pid``: only if it is that one) to stop (SIGTERM to its group);
    optionally wait up to ``timeout`` s."""
    return stop(os.path.join(models_root, LOCK_FILE), timeout, pid)


def run_status(run_dir: str, running: bool = False, started: Optional[float] = None) -> RunStatus:
    """Summarize a run from its events; ``running`` says whether its process is alive.

    ``started``: when the running process was launched. Until it logs its own ``start`` event (MXNet
    and the data take seconds to load) the previous process's progress is not shown as current.
    """
    events = read_events(run_dir)
    if not events:
        return RunStatus("running" if running else "new")
    st = RunStatus("running" if running else "interrupted")
    for ev in events:
        t = ev.get("type")
        if t == "start":
            st.start = ev
            st.state, st.message = ("running" if running else "interrupted"), ""   # a new process
            st.progress = None          # a new process: the last one's progress is over
            st.history = [h for h in st.history if h["epoch"] <= (ev.get("resumed_from") or 0)]
        elif t == "progress":
            st.progress = ev
        elif t == "epoch":
            st.history.append({k: v for k, v in ev.items() if k not in ("type", "time")})
        elif t in ("done", "stopped", "error") and not running:
            st.state = t
            st.message = ev.get("message", "")
    if not running and st.state == "interrupted" and _alive_elsewhere(st.start):
        st.state = "external"               # the CLI or `launch` runs it, not the app: shown, not stopped
    if running:
        st.state = "running"
        if started is not None and (st.start is None or float(st.start.get("time", 0)) < started - 1.0):
            st.progress = None
            st.message = "starting"
    return st


def external_run(models_root: Optional[str] = None) -> Optional[str]:
    """The newest run folder whose training runs outside the app right now, if any."""
    runs = run_folders(models_root)
    if runs and run_status(runs[0]).state == "external":
        return runs[0]
    return None


def _alive_elsewhere(start: Optional[Dict[str, Any]]) -> bool:
    """Is the process that logged ``start`` (its pid, on this host) still running?

    A run started outside the app (``python -m ssd train``, or rank 0 of ``python -m ssd launch``)
    has no job lock; its own start event names its process, so the Train page can follow it.
    """
    if not start or not start.get("pid") or start.get("host") != socket.gethostname():
        return False
    return pid_alive(int(start["pid"]))


def progress_text(p: Dict[str, Any]) -> str:
    """The progress bar's label: the epoch, the phase by name with its own count, and the ETA of the
    whole run (validation included)."""
    eta = f" · ETA {format_duration(p['eta_s'])}" if p.get("eta_s") is not None else ""
    if p.get("phase") == "validate":
        ready = "" if p.get("val_done") else " (getting ready: BatchNorm statistics, the first batch)"
        return (f"epoch {p['epoch']}/{p['epochs']} · validating, image {p.get('val_done', 0)}/"
                f"{p.get('val_total', '?')}{ready}{eta}")
    return f"epoch {p['epoch']}/{p['epochs']} · training, iteration {p['iter']}/{p['iters']}{eta}"


def train_log_tail(run_dir: str, lines: int = 20) -> str:
    """The last lines of a training run's log."""
    return read_log_tail(run_dir, lines, LOG_FILE)


def run_folders(models_root: Optional[str] = None) -> List[str]:
    """Model folders that hold a training run (an event log), newest activity first."""
    return folders_holding(models_root or models_dir(), EVENTS_FILE)


def delete_run(models_root: str, run_dir: str) -> None:
    """Delete a run's folder (a failed or unwanted run), refusing anything that is not one.

    Why: a run that failed before its first epoch leaves a folder the Train page lists and nothing
    could remove. ``JobError`` when the folder is outside the models folder, is not a training run,
    belongs to the job running now, or a job is starting (it may be this run's Resume).
    """
    import shutil

    root = os.path.realpath(models_root)
    path = os.path.realpath(run_dir)
    if os.path.dirname(path) != root or os.path.basename(path).startswith("."):
        raise JobError(f"{run_dir} is not a run folder of {models_root}; nothing was deleted")
    if not os.path.isfile(os.path.join(path, EVENTS_FILE)):
        raise JobError(f"{run_dir} holds no training run (no {EVENTS_FILE}); nothing was deleted")
    with nothing_starts(os.path.join(models_root, LOCK_FILE), "training job") as running:
        if running is not None and os.path.realpath(running.out) == path:
            raise JobError(f"{run_dir} is being trained right now (pid {running.pid}); stop it first")
        shutil.rmtree(path)


def can_resume(run_dir: str) -> bool:
    from ssd.training.checkpoint import CHECKPOINT_DIR

    return os.path.isfile(os.path.join(run_dir, CHECKPOINT_DIR, "checkpoint.json"))


def folder_taken(run_dir: str) -> bool:
    """Whether ``run_dir`` already holds a saved model or a resumable run: a new run there would
    overwrite it, so the Train page refuses the name (resuming is the way to continue it)."""
    from ssd.store import META_FILE

    return os.path.exists(os.path.join(run_dir, META_FILE)) or can_resume(run_dir)


def resume_config(run_dir: str):
    """The ``TrainConfig`` a run was started with, set to resume (from its meta.json)."""
    from ssd.base.json_file import read_json_file
    from ssd.base.meta_schema import MAX_META_BYTES
    from ssd.store import META_FILE
    from ssd.training.config import TrainConfig

    try:
        meta = read_json_file(os.path.join(run_dir, META_FILE), MAX_META_BYTES)
        args = meta["training"]["args"]
        if not isinstance(args, dict):
            raise TypeError("training.args is not an object")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SSDError(f"{run_dir}: cannot read the run's training arguments ({err})") from None
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in args.items() if k in known})
    recorded = (meta.get("dataset") or {}).get("path")
    if isinstance(cfg.data, str) and not os.path.isabs(cfg.data) and isinstance(recorded, str):
        cfg.data = recorded      # relative to where the run was started, not to the app's folder
    cfg.resume = True
    cfg.out = run_dir
    return cfg


def progress_fraction(progress: Optional[Dict[str, Any]]) -> float:
    """The bar's fill: the run's share done, training and validation together (``fraction``, which the
    run keeps from going back). A log written before runs reported it: the iterations' share."""
    if not progress:
        return 0.0
    if isinstance(progress.get("fraction"), (int, float)):
        return float(min(1.0, max(0.0, progress["fraction"])))
    total = progress.get("total_iters") or 0
    return float(min(1.0, max(0.0, progress.get("global_iter", 0) / total))) if total else 0.0


def run_figures(status: RunStatus) -> Dict[str, str]:
    """The numbers the Train page shows under a run, formatted: epochs done of those planned, the
    latest loss and speed, the best validation mAP so far, and the last validated epoch's micro-F1
    and accuracy over anchors (the ENA24 tutorial's).

    Loss and speed come from the latest progress event (a validation pass's carry the epoch it
    validates), else the last finished epoch (a log written before validation events carried them).
    """
    p = status.progress
    last = status.history[-1] if status.history else {}
    now = (p if p and "loss" in p else None) or last
    planned = (p or {}).get("epochs") or (status.start or {}).get("config", {}).get("epochs")
    maps = [h["val_map"] for h in status.history if isinstance(h.get("val_map"), (int, float))]
    return {"Epochs done": f"{len(status.history)}/{planned}" if planned else str(len(status.history)),
            "Loss": f"{now.get('loss', float('nan')):.4f}" if now else "–",
            "Samples/s": f"{now.get('samples_per_s', 0):.1f}" if now else "–",
            "Best val mAP": f"{max(maps):.4f}" if maps else "–",
            "Val micro-F1 / accuracy": anchor_metrics_text(last)}


def anchor_metrics_text(record: Dict[str, Any]) -> str:
    """``0.880 / 0.9985``: an epoch's validation micro-F1 and accuracy, or "–" when it has none."""
    f1, acc = record.get("val_micro_f1"), record.get("val_accuracy")
    return f"{f1:.3f} / {acc:.4f}" if isinstance(f1, (int, float)) and isinstance(acc, (int, float)) else "–"


def started_from(meta: Dict[str, Any]) -> str:
    """Where a model's weights started, as its meta.json records it (kept when a resume no longer finds
    the folder): a model folder or pretrained weights, with the classes that kept their weights by name."""
    start = meta.get("start") or meta.get("zoo") or {}
    where = start.get("pretrained") if isinstance(start, dict) else None
    if not where or str(where).lower() in ("none", "scratch"):
        return "scratch"
    reused = start.get("reused_classes")
    kept = f" (classes reused by name: {', '.join(map(str, reused))})" if isinstance(reused, dict) and reused else ""
    gone = " (no longer there: the run's own weights do not need it)" if (
        os.path.isabs(str(where)) and not os.path.exists(str(where))) else ""
    return f"{where}{gone}{kept}"


def model_overview(meta: Dict[str, Any]) -> List[Dict[str, str]]:
    """Key facts of a saved model as (field, value) rows."""
    from ssd.models.training_graph import arithmetic_text   # here: it loads MXNet, the rest of jobs does not

    anchors = meta.get("anchors") or {}
    ds = meta.get("dataset") or {}
    tr = meta.get("training") or {}
    best = (meta.get("metrics") or {}).get("best") or {}
    hist = (meta.get("metrics") or {}).get("history") or []
    args = tr.get("args") or {}
    rows = [
        ("architecture", meta.get("arch", "?")),
        ("classes", ", ".join(map(str, meta.get("classes", [])))),
        ("input size", f"{meta.get('input_size')}×{meta.get('input_size')}"),
        ("anchors", str(anchors.get("total", "?"))),
        ("status", str(meta.get("status", "?"))),
        ("epochs done", f"{len(hist)} of {args.get('epochs', '?')}"),
        ("best epoch", f"{best.get('epoch', '–')} (val mAP {best['val_map']:.4f}" + (
            f", micro-F1 {best['val_micro_f1']:.3f}, accuracy {best['val_accuracy']:.4f}"
            if isinstance(best.get("val_micro_f1"), (int, float)) else "") + ")" if isinstance(
            best.get("val_map"), (int, float)) else str(best.get("epoch", "–"))),
        ("dataset", f"{ds.get('kind', '?')} at {ds.get('path', '?')} ({ds.get('num_train', '?')} train / "
                    f"{ds.get('num_val', '?')} val)"),
        ("started from", started_from(meta)),
        ("trained on", str(tr.get("device", "?"))),
        ("training arithmetic", arithmetic_text(tr.get("arithmetic"))),
        ("saved", str(meta.get("finished") or meta.get("saved") or "?")),
        ("default model", "yes" if meta.get("default") else "no"),
        ("command", tr.get("command") or "(started from the app)"),
    ]
    return [{"field": k, "value": v} for k, v in rows]
