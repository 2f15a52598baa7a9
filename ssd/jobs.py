"""Background training jobs: the app starts ``python -m ssd train`` as its own process.

Why a process and not a thread: a Streamlit rerun, a page switch or a browser refresh must
neither stop nor duplicate a run, and MXNet training would starve the server's threads. The
job is the very CLI command a user could type, so the app and the CLI share one code path.

One job at a time per models folder, enforced by ``<models>/.train.lock`` (created with
O_EXCL, holding the pid). A lock whose process is gone (or a zombie) is stale and removed.
Stopping sends SIGTERM to the job's process group; training then ends after the current
iteration and keeps its last checkpoint, so the run can be resumed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from .errors import JobError
from .events import read_events

LOCK_FILE = ".train.lock"
LOG_FILE = "train.log"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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

    state: str                                  # running | done | stopped | error | interrupted | new
    progress: Optional[Dict[str, Any]] = None   # the last 'progress' event
    history: List[Dict[str, Any]] = field(default_factory=list)
    message: str = ""
    start: Optional[Dict[str, Any]] = None


def config_to_argv(cfg) -> List[str]:
    """A ``TrainConfig`` as ``train`` CLI arguments (only the fields that differ from defaults)."""
    from .training import TrainConfig

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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            if fh.read().split(")")[-1].split()[0] == "Z":
                return False
    except OSError:
        pass
    return True


def current_job(models_root: str) -> Optional[JobInfo]:
    """The running job of this models folder, clearing a stale lock."""
    path = os.path.join(models_root, LOCK_FILE)
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
    argv = config_to_argv(cfg)
    os.makedirs(cfg.out, exist_ok=True)
    lock = os.path.join(models_root, LOCK_FILE)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise JobError("another training job is starting right now; try again in a moment") from None
    try:
        log = open(os.path.join(cfg.out, LOG_FILE), "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.Popen([sys.executable, "-m", "ssd"] + argv, cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        log.close()
        _CHILDREN[proc.pid] = proc
        info = JobInfo(proc.pid, os.path.basename(os.path.normpath(cfg.out)), os.path.abspath(cfg.out),
                       argv, time.time())
        os.write(fd, json.dumps(asdict(info)).encode())
    except BaseException:
        os.close(fd)
        _remove(lock)
        raise
    os.close(fd)
    return info


def stop_job(models_root: str, timeout: float = 0.0) -> bool:
    """Ask the running job to stop (SIGTERM to its group); optionally wait up to ``timeout`` s."""
    job = current_job(models_root)
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


def run_status(run_dir: str, running: bool = False) -> RunStatus:
    """Summarize a run from its events; ``running`` says whether its process is alive."""
    events = read_events(run_dir)
    if not events:
        return RunStatus("running" if running else "new")
    st = RunStatus("running" if running else "interrupted")
    for ev in events:
        t = ev.get("type")
        if t == "start":
            st.start = ev
            st.history = [h for h in st.history if h["epoch"] <= (ev.get("resumed_from") or 0)]
        elif t == "progress":
            st.progress = ev
        elif t == "epoch":
            st.history.append({k: v for k, v in ev.items() if k not in ("type", "time")})
        elif t in ("done", "stopped", "error") and not running:
            st.state = t
            st.message = ev.get("message", "")
    if running:
        st.state = "running"
    return st


def read_log_tail(run_dir: str, lines: int = 20) -> str:
    try:
        with open(os.path.join(run_dir, LOG_FILE), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            return "\n".join(fh.read().decode("utf-8", "replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
