"""Background jobs: the app starts ``python -m ssd …`` commands as processes of their own.

Why a process and not a thread: a Streamlit rerun, a page switch or a browser refresh must
neither stop nor duplicate a run, and MXNet would starve the server's threads. The job is the
very CLI command a user could type, so the app and the CLI share one code path. It runs at a
lower CPU priority (``ssd.base.priority.JOB_NICE``) so the server's own work stays responsive.

One job of a kind at a time per folder, enforced by a lock file (created with O_EXCL, holding
the pid). A lock whose process is gone (or a zombie) is stale and removed. Stopping sends SIGTERM
to the job's process group; the command then checkpoints and exits, ready to resume.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterator, List, Optional

from ssd.base.errors import JobError
from ssd.base.json_file import JSONFileError, read_json_file
from ssd.base.meta_schema import MAX_META_BYTES
from ssd.base.priority import job_environment
from ssd.base.processes import pid_alive
from ssd.workspace import REPO_ROOT

STARTING_S = 60.0   # a lock still without its pid this long after creation was left by a killed launcher
_CHILDREN: Dict[int, subprocess.Popen] = {}   # reaped on poll so finished jobs leave no zombie


@dataclass
class JobInfo:
    pid: int
    name: str
    out: str
    argv: List[str]
    started: float


def alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:   # reaps our own finished child
            _CHILDREN.pop(pid, None)
            return False
        return True
    return pid_alive(pid)


def current(path: str) -> Optional[JobInfo]:
    try:
        info = JobInfo(**read_json_file(path, MAX_META_BYTES))
    except FileNotFoundError:
        return None
    except (JSONFileError, TypeError):
        # ``launch`` writes the pid only after the process started: a fresh unreadable lock is a job
        # starting now (deleting it let that job run unlocked and a second one start); an old one is stale
        if _age_s(path) > STARTING_S:
            remove_file(path)
        return None
    if alive(info.pid):
        return info
    remove_file(path)
    return None


def _age_s(path: str) -> float:
    """Seconds since ``path`` was last written (infinite when it is gone)."""
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return float("inf")


def remove_file(path: str) -> None:
    """Remove ``path`` if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def nothing_starts(lock: str, what: str) -> Iterator[Optional[JobInfo]]:
    """While the ``with`` body runs, no job of ``lock``'s kind can start; yields the job running now.

    Why: deleting a run folder after a "not running" check raced a Resume of that run from another
    tab (its lock is taken before its pid is written). A live job's lock already keeps every other
    start out; without one the lock is taken here, empty, so a Start meanwhile is told to wait.
    ``JobError`` while a job is starting (its lock holds no pid yet).
    """
    for _ in range(2):                     # a stale lock is removed by ``current``: then try once more
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            running = current(lock)
            if running is not None:
                yield running
                return
            if os.path.exists(lock):
                raise JobError(f"a {what} is starting right now; try again in a moment") from None
            continue
        try:
            yield None
        finally:
            os.close(fd)
            remove_file(lock)
        return
    raise JobError(f"a {what} is starting right now; try again in a moment")


def launch(lock: str, argv: List[str], out: str, log_name: str, what: str,
           prepare: Optional[Callable[[], None]] = None) -> JobInfo:
    """Start ``python -m ssd ARGV`` in its own session, logging to ``out/log_name``, under ``lock``.

    ``prepare``: what the job's folder needs first (checks, settings, removing an old run's files),
    run only once the lock is ours: two tabs' Starts at one moment both passed a "nothing runs"
    check, and the one refused at the lock had already written over the other's run folder.
    """
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise JobError(f"another {what} is starting right now; try again in a moment") from None
    try:
        if prepare is not None:
            prepare()
        os.makedirs(out, exist_ok=True)
        log = open(os.path.join(out, log_name), "ab")
        env = job_environment(dict(os.environ, PYTHONUNBUFFERED="1"))   # runs below the server's priority
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
        remove_file(lock)
        raise
    os.close(fd)
    return info


def terminate(job: Optional[JobInfo], timeout: float) -> bool:
    """SIGTERM a job's process group (it checkpoints and exits); wait up to ``timeout`` s for it."""
    if job is None:
        return False
    try:
        os.killpg(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.time() + timeout
    while timeout and time.time() < deadline and alive(job.pid):
        time.sleep(0.1)
    return True


def stop(lock: str, timeout: float, pid: Optional[int]) -> bool:
    """``terminate`` the job holding ``lock``; with ``pid``, only if it is still that job: a tab's
    Stop names the job it showed, and another tab may have started the next one since."""
    job = current(lock)
    if pid is not None and (job is None or job.pid != pid):
        return False
    return terminate(job, timeout)


def read_log_tail(run_dir: str, lines: int, log_name: str) -> str:
    """The last ``lines`` lines of a job's log (its last 8 KiB at most: logs grow for hours)."""
    try:
        with open(os.path.join(run_dir, log_name), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            return "\n".join(fh.read().decode("utf-8", "replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def folders_holding(root: str, marker: str) -> List[str]:
    """Visible subfolders of ``root`` that hold ``marker``, the most recently written marker first."""
    found = []
    if os.path.isdir(root):
        for d in os.listdir(root):
            p = os.path.join(root, d, marker)
            if not d.startswith(".") and os.path.isfile(p):
                found.append((os.stat(p).st_mtime, os.path.join(root, d)))
    return [p for _, p in sorted(found, reverse=True)]


def valid_model_name(name: str) -> Optional[str]:
    """None when ``name`` can be a model folder name, else the reason it cannot."""
    if not name:
        return "give the model a name"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        return "use letters, digits, '.', '_' or '-' (at most 64 characters, not starting with a symbol)"
    return None
