"""Background training jobs: the app starts ``python -m ssd train`` as its own process.

Why a process and not a thread: a Streamlit rerun, a page switch or a browser refresh must
neither stop nor duplicate a run, and MXNet training would starve the server's threads. The
job is the very CLI command a user could type, so the app and the CLI share one code path.

One job at a time per models folder, enforced by ``<models>/.train.lock`` (created with
O_EXCL, holding the pid). A lock whose process is gone (or a zombie) is stale and removed.
Stopping sends SIGTERM to the job's process group; training then ends after the current
iteration and keeps its last checkpoint, so the run can be resumed.

The Train page's view of runs (which folders hold one, whether it can resume, its progress
and overview) is here too, so the page only lays out what these helpers return.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from ssd.base.processes import pid_alive
from ssd.base.errors import JobError, SSDError
from ssd.inference.thresholds import TYPICAL_THRESHOLD
from ssd.training.events import EVENTS_FILE, read_events
from ssd.workspace import REPO_ROOT, models_dir

LOCK_FILE = ".train.lock"
LOG_FILE = "train.log"
DATA_LOCK_FILE = ".download.lock"
DATA_LOG_FILE = "download.log"
_CHILDREN: Dict[int, subprocess.Popen] = {}   # reaped on poll so finished jobs leave no zombie


@dataclass
class JobInfo:
    pid: int
    name: str
    out: str
    argv: List[str]
    started: float


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
        if f.name == "augment":
            if not value:
                argv.append("--no-augment")
        elif isinstance(value, bool):
            if value:
                argv.append(flag)
        elif f.name in ("sizes", "ratios"):
            argv += [flag, ";".join(",".join(str(v) for v in grp) for grp in value)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:   # reaps our own finished child
            _CHILDREN.pop(pid, None)
            return False
        return True
    return pid_alive(pid)


def current_job(models_root: str) -> Optional[JobInfo]:
    """The running training job of this models folder, clearing a stale lock."""
    return _current(os.path.join(models_root, LOCK_FILE))


def current_data_job(data_root: str) -> Optional[JobInfo]:
    """The running dataset download of this data folder, clearing a stale lock."""
    return _current(os.path.join(data_root, DATA_LOCK_FILE))


def _current(path: str) -> Optional[JobInfo]:
    try:
        with open(path, encoding="utf-8") as fh:
            info = JobInfo(**json.load(fh))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
        _remove(path)
        return None
    if _alive(info.pid):
        return info
    _remove(path)
    return None


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def start_job(models_root: str, cfg) -> JobInfo:
    """Launch ``python -m ssd train`` for ``cfg`` in the background; ``JobError`` if one runs."""
    os.makedirs(models_root, exist_ok=True)
    running = current_job(models_root)
    if running is not None:
        raise JobError(f"a training job is already running: {running.name} (pid {running.pid}); "
                       "stop it or wait for it to finish")
    return _launch(os.path.join(models_root, LOCK_FILE), config_to_argv(cfg), cfg.out, LOG_FILE, "training job")


DATA_KINDS = ("pikachu", "banana", "ena24")


def start_data_job(data_root: str, kind: str, out: str, extra: Optional[List[str]] = None) -> JobInfo:
    """Launch ``python -m ssd data KIND --out OUT`` in the background (downloads can take hours).

    The same command a user could type; its progress goes to ``OUT/download.log`` and whether it
    worked is read back by opening the dataset (``open_dataset``) once the process has ended.
    """
    if kind not in DATA_KINDS:
        raise JobError(f"unknown dataset {kind!r}; one of {', '.join(DATA_KINDS)}")
    os.makedirs(data_root, exist_ok=True)
    running = current_data_job(data_root)
    if running is not None:
        raise JobError(f"a download is already running: {running.name} (pid {running.pid})")
    return _launch(os.path.join(data_root, DATA_LOCK_FILE), ["data", kind, "--out", out] + list(extra or []),
                   out, DATA_LOG_FILE, "download")


def _launch(lock: str, argv: List[str], out: str, log_name: str, what: str) -> JobInfo:
    """Start ``python -m ssd ARGV`` in its own session, logging to ``out/log_name``, under ``lock``."""
    os.makedirs(out, exist_ok=True)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise JobError(f"another {what} is starting right now; try again in a moment") from None
    try:
        log = open(os.path.join(out, log_name), "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.Popen([sys.executable, "-m", "ssd"] + argv, cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        log.close()
        _CHILDREN[proc.pid] = proc
        info = JobInfo(proc.pid, os.path.basename(os.path.normpath(out)), os.path.abspath(out), argv, time.time())
        os.write(fd, json.dumps(asdict(info)).encode())
    except BaseException:
        os.close(fd)
        _remove(lock)
        raise
    os.close(fd)
    return info


def stop_job(models_root: str, timeout: float = 0.0) -> bool:
    """Ask the running job to stop (SIGTERM to its group); optionally wait up to ``timeout`` s."""
    return _terminate(current_job(models_root), timeout)


def _terminate(job: Optional[JobInfo], timeout: float) -> bool:
    """SIGTERM a job's process group (it checkpoints and exits); wait up to ``timeout`` s for it."""
    if job is None:
        return False
    try:
        os.killpg(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.time() + timeout
    while timeout and time.time() < deadline and _alive(job.pid):
        time.sleep(0.1)
    return True


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
    """The progress bar's label: the training iteration, or the validation pass with its own count."""
    if p.get("phase") == "validate":
        return f"epoch {p['epoch']}/{p['epochs']}: validating, image {p.get('val_done', 0)}/{p.get('val_total', '?')}"
    return (f"epoch {p['epoch']}/{p['epochs']}, iteration {p['iter']}/{p['iters']} — "
            f"ETA {format_duration(p.get('eta_s'))}")


def read_log_tail(run_dir: str, lines: int = 20, log_name: str = LOG_FILE) -> str:
    try:
        with open(os.path.join(run_dir, log_name), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            return "\n".join(fh.read().decode("utf-8", "replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


# --------------------------------------------------------------------------------------------
# runs as the Train page lists them
# --------------------------------------------------------------------------------------------


def run_folders(models_root: Optional[str] = None) -> List[str]:
    """Model folders that hold a training run (an event log), newest activity first."""
    return _folders_holding(models_root or models_dir(), EVENTS_FILE)


def _folders_holding(root: str, marker: str) -> List[str]:
    """Visible subfolders of ``root`` that hold ``marker``, the most recently written marker first."""
    found = []
    if os.path.isdir(root):
        for d in os.listdir(root):
            p = os.path.join(root, d, marker)
            if not d.startswith(".") and os.path.isfile(p):
                found.append((os.stat(p).st_mtime, os.path.join(root, d)))
    return [p for _, p in sorted(found, reverse=True)]


def delete_run(models_root: str, run_dir: str) -> None:
    """Delete a run's folder (a failed or unwanted run), refusing anything that is not one.

    Why: a run that failed before its first epoch leaves a folder the Train page lists and nothing
    could remove. ``JobError`` when the folder is outside the models folder, is not a training run,
    or belongs to the job running now.
    """
    import shutil

    root = os.path.realpath(models_root)
    path = os.path.realpath(run_dir)
    if os.path.dirname(path) != root or os.path.basename(path).startswith("."):
        raise JobError(f"{run_dir} is not a run folder of {models_root}; nothing was deleted")
    if not os.path.isfile(os.path.join(path, EVENTS_FILE)):
        raise JobError(f"{run_dir} holds no training run (no {EVENTS_FILE}); nothing was deleted")
    running = current_job(models_root)
    if running is not None and os.path.realpath(running.out) == path:
        raise JobError(f"{run_dir} is being trained right now (pid {running.pid}); stop it first")
    shutil.rmtree(path)


def can_resume(run_dir: str) -> bool:
    from ssd.training.checkpoint import CHECKPOINT_DIR

    return os.path.isfile(os.path.join(run_dir, CHECKPOINT_DIR, "checkpoint.json"))


def resume_config(run_dir: str):
    """The ``TrainConfig`` a run was started with, set to resume (from its meta.json)."""
    from ssd.store import META_FILE
    from ssd.training.config import TrainConfig

    try:
        with open(os.path.join(run_dir, META_FILE), encoding="utf-8") as fh:
            args = json.load(fh)["training"]["args"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SSDError(f"{run_dir}: cannot read the run's training arguments ({err})") from None
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in args.items() if k in known})
    cfg.resume = True
    cfg.out = run_dir
    return cfg


def valid_model_name(name: str) -> Optional[str]:
    """None when ``name`` can be a model folder name, else the reason it cannot."""
    if not name:
        return "give the model a name"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        return "use letters, digits, '.', '_' or '-' (at most 64 characters, not starting with a symbol)"
    return None


def progress_fraction(progress: Optional[Dict[str, Any]]) -> float:
    """The bar's fill: the run's iterations, or during validation the validation pass's own share."""
    if not progress:
        return 0.0
    if progress.get("phase") == "validate":
        total = progress.get("val_total") or 0
        return float(min(1.0, progress.get("val_done", 0) / total)) if total else 0.0
    total = progress.get("total_iters") or 0
    return float(min(1.0, max(0.0, progress.get("global_iter", 0) / total))) if total else 0.0


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


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
        ("best epoch", f"{best.get('epoch', '–')} (val mAP {best['val_map']:.4f})" if isinstance(
            best.get("val_map"), (int, float)) else str(best.get("epoch", "–"))),
        ("dataset", f"{ds.get('kind', '?')} at {ds.get('path', '?')} ({ds.get('num_train', '?')} train / "
                    f"{ds.get('num_val', '?')} val)"),
        ("trained on", str(tr.get("device", "?"))),
        ("training arithmetic", arithmetic_text(tr.get("arithmetic"))),
        ("saved", str(meta.get("finished") or meta.get("saved") or "?")),
        ("default model", "yes" if meta.get("default") else "no"),
        ("command", tr.get("command") or "(started from the app)"),
    ]
    return [{"field": k, "value": v} for k, v in rows]


# --------------------------------------------------------------------------------------------
# camera-trap batch runs (the Camera traps page): ``python -m ssd detect FOLDER --recursive``
# --------------------------------------------------------------------------------------------

BATCH_LOCK_FILE = ".camera.lock"
BATCH_LOG_FILE = "detect.log"
BATCH_RESULTS = "results.json"
BATCH_CSV = "results.csv"
BATCH_PROGRESS = "progress.json"
BATCH_SETTINGS = "run.json"


def camera_runs_dir() -> str:
    """Where the app keeps batch runs: ``<data folder>/.camera-runs`` (hidden from dataset lists)."""
    from ssd.workspace import data_dir

    return os.path.join(data_dir(), ".camera-runs")


def current_batch_job(runs_root: str) -> Optional[JobInfo]:
    """The running camera-trap batch of this runs folder, clearing a stale lock."""
    return _current(os.path.join(runs_root, BATCH_LOCK_FILE))


def batch_argv(run_dir: str, settings: Dict[str, Any], resume: bool = False) -> List[str]:
    """The ``detect`` command line of a batch run (results, CSV, checkpoint and progress in ``run_dir``)."""
    argv = ["detect", "--model", settings["model"], settings["folder"], "--quiet",
            "--json", os.path.join(run_dir, BATCH_RESULTS), "--csv", os.path.join(run_dir, BATCH_CSV),
            "--progress-file", os.path.join(run_dir, BATCH_PROGRESS),
            "--threshold", str(settings.get("threshold", TYPICAL_THRESHOLD)),
            "--checkpoint-every", str(settings.get("checkpoint_every", 100))]
    if settings.get("recursive", True):
        argv.append("--recursive")
    if settings.get("flag_repeats"):
        argv += ["--flag-repeats", str(int(settings["flag_repeats"]))]
    return argv + (["--resume"] if resume else [])


def start_batch_job(runs_root: str, name: str, settings: Optional[Dict[str, Any]] = None,
                    resume: bool = False) -> JobInfo:
    """Start (or, with ``resume``, continue) the batch run ``runs_root/name`` in the background.

    ``settings``: ``model``, ``folder``, ``recursive``, ``threshold``, ``flag_repeats``; saved in the
    run's ``run.json`` so a reloaded page can resume it without asking again.
    """
    problem = valid_model_name(name)
    if problem:
        raise JobError(f"run name {name!r}: {problem}")
    run_dir = os.path.join(runs_root, name)
    if resume:
        settings = batch_settings(run_dir)
    if not settings or not os.path.isdir(str(settings.get("folder", ""))):
        raise JobError(f"'{(settings or {}).get('folder', '')}' is not a folder on this machine")
    os.makedirs(runs_root, exist_ok=True)
    running = current_batch_job(runs_root)
    if running is not None:
        raise JobError(f"a camera-trap run is already going: {running.name} (pid {running.pid}); "
                       "stop it or wait for it to finish")
    from ssd.base.atomic import atomic_write_json

    os.makedirs(run_dir, exist_ok=True)
    atomic_write_json(os.path.join(run_dir, BATCH_SETTINGS), settings)
    if not resume:
        for f in (BATCH_PROGRESS, BATCH_RESULTS):
            _remove(os.path.join(run_dir, f))
    return _launch(os.path.join(runs_root, BATCH_LOCK_FILE), batch_argv(run_dir, settings, resume), run_dir,
                   BATCH_LOG_FILE, "camera-trap run")


def stop_batch_job(runs_root: str, timeout: float = 0.0) -> bool:
    """SIGTERM the running batch: it writes its checkpoint and exits, ready to resume."""
    return _terminate(current_batch_job(runs_root), timeout)


def batch_settings(run_dir: str) -> Dict[str, Any]:
    try:
        with open(os.path.join(run_dir, BATCH_SETTINGS), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def batch_status(run_dir: str, running: bool = False) -> Dict[str, Any]:
    """The run's last progress report; ``state`` is ``running``, ``done``, ``stopped`` or ``interrupted``."""
    try:
        with open(os.path.join(run_dir, BATCH_PROGRESS), encoding="utf-8") as fh:
            st = json.load(fh)
    except (OSError, ValueError):
        st = {"state": "running" if running else "new", "done": 0, "total": 0}
    if running:
        st["state"] = "running"
    elif st.get("state") == "running":
        st["state"] = "interrupted"         # killed without its last report: resumable from the checkpoint
    if os.path.isfile(os.path.join(run_dir, BATCH_RESULTS)) and not running:
        st["state"] = "done"
    return st


def batch_runs(runs_root: str) -> List[str]:
    """Batch run folders, newest first."""
    return _folders_holding(runs_root, BATCH_SETTINGS)
