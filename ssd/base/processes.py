"""Processes: is one still running (lock files of background jobs and staging folders name their
pid), and starting children that neither outlive the launcher nor fork it.
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from functools import lru_cache
from typing import Any, Callable, List, Optional, Sequence, Tuple


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
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


def start_child(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv)`` in a session and process group of its own (so a whole group can be
    signalled, data-loader children included) that Linux SIGKILLs when the launcher dies.

    Why not ``preexec_fn`` (``prctl(PR_SET_PDEATHSIG)`` in the child): it makes Python fork, copying
    the page tables of a launcher that may hold MXNet and a dataset, and under memory pressure that
    fork failed ("Cannot allocate memory"). util-linux's ``setpriv --pdeathsig KILL`` sets the
    same signal and then execs the program (the signal survives exec), so Python can vfork. Without
    ``setpriv`` the ``prctl`` hook is the fallback; elsewhere than Linux, only the group. As with
    any death signal, it comes when the launcher's *thread* that started the child ends.
    """
    prefix, hook = _death_signal()
    if prefix and shutil.which(argv[0]) is None:   # what Popen raises, not setpriv's exit status 127
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    return subprocess.Popen([*prefix, *argv], start_new_session=True, preexec_fn=hook, **popen_kwargs)


@lru_cache(maxsize=1)
def _death_signal() -> Tuple[List[str], Optional[Callable[[], None]]]:
    """``(argv prefix, preexec hook)``: setpriv's prefix where it works, else the prctl hook, else neither."""
    if not sys.platform.startswith("linux"):
        return [], None
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    if prefix:
        try:      # util-linux before 2.33 has no --pdeathsig
            if subprocess.run([*prefix, "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0:
                return prefix, None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return [], _prctl_hook()


def _prctl_hook() -> Optional[Callable[[], None]]:
    """A function for the child (before exec) asking Linux to SIGKILL it when the launcher dies.

    libc is loaded here, in the launcher, so the child between fork and exec only calls into it
    (loading a library there could deadlock on a lock another launcher thread held)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    return set_death_signal
