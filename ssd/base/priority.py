"""CPU priority of the app's background jobs: they yield the cores to the app's own work.

Why: the app starts training runs, camera-trap folder runs and downloads as ``python -m ssd``
processes (``ssd.jobs.process.launch``) that use every core, on machines that often have two.
The Streamlit server's one inference thread (the Detect page: an upload, a slider move) then
waited behind the job: with a training job running, the page's work for one photo took several
times as long (docs/PERFORMANCE.md, "The app while a job runs"). A person at a desktop tool
expects the app to answer while a job runs, and accepts that the job goes a little slower.

How: the launcher names the level in the job's environment (``job_environment``); ``python -m
ssd`` applies it first thing (``lower_from_environment``), before MXNet, OpenMP or any thread
exists, so every thread and sub-process of the job inherits it (Linux keeps a nice value per
thread, copied to each new thread and child). A job runs in a session of its own, and where the
kernel groups sessions for scheduling (``/proc/sys/kernel/sched_autogroup_enabled``, on by default
in most desktop distributions) CPU time is first shared fairly between sessions, whatever the
nice values inside them: a nice job then still took half the cores from the server (measured). So
the job, as its session's leader, lowers its session's group too (``/proc/self/autogroup``).
Not ``preexec_fn``: forking Python in
Streamlit's threaded server is unsafe. A command a person types in a terminal has no such
variable and runs at the priority it was given.
"""
from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

#: How far below normal the app's background jobs run (nice 0 → 10). Under contention a nice-10
#: process gets about a tenth of a nice-0 one's CPU share, so the server's thread runs almost as if
#: alone, while a job on an otherwise idle machine still has every core.
JOB_NICE = 10

#: The environment variable that carries the level from the launcher into ``python -m ssd``.
JOB_NICE_ENV = "SSD_JOB_NICE"

_MAX_NICE = 19   # the lowest priority Linux has


def job_environment(env: Mapping[str, str], level: int = JOB_NICE) -> Dict[str, str]:
    """``env`` plus the variable that makes ``python -m ssd`` lower its priority to ``level``."""
    return dict(env, **{JOB_NICE_ENV: str(level)})


def requested_level(env: Mapping[str, str]) -> Optional[int]:
    """The nice level ``env`` asks for (0–19), or None when it asks for none (or for nonsense)."""
    raw = env.get(JOB_NICE_ENV, "").strip()
    try:
        level = int(raw)
    except ValueError:
        return None
    return min(max(level, 0), _MAX_NICE)


def lower_from_environment(env: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """Lower this process's priority to the level the environment names; returns the nice value now.

    Only ever lowers (a process already nicer stays as it is: unprivileged processes cannot raise
    it back), and sets a level rather than adding to it, so a job's own ``python -m ssd`` children
    (a cluster's workers) inheriting the variable end at the same level, not 20. Must run while
    the process has one thread: Linux applies it to the calling thread, which new threads copy.
    None when nothing was asked or the system refused.
    """
    level = requested_level(os.environ if env is None else env)
    if level is None:
        return None
    try:
        now = os.getpriority(os.PRIO_PROCESS, 0)
        if now < level:
            os.setpriority(os.PRIO_PROCESS, 0, level)
        now = os.getpriority(os.PRIO_PROCESS, 0)
    except (OSError, AttributeError):   # no such call on this platform, or refused: run as we are
        return None
    _lower_session_group(level)
    return now


def _lower_session_group(level: int) -> None:
    """Lower the scheduling group of this process's session (Linux autogroup) to ``level``, when
    this process leads the session: a job's own session, never a terminal's a person shares."""
    try:
        if os.getsid(0) != os.getpid():
            return
        with open("/proc/self/autogroup", encoding="ascii") as fh:   # "/autogroup-123 nice 0"
            now = int(fh.read().split()[-1])
        if now < level:
            with open("/proc/self/autogroup", "w", encoding="ascii") as fh:
                fh.write(str(level))
    except (OSError, ValueError, IndexError, AttributeError):   # no autogroups here, or refused
        pass
