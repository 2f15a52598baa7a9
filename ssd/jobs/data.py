"""Dataset downloads as background jobs (``python -m ssd data KIND`` can take hours)."""
from __future__ import annotations

import os
from typing import List, Optional

from ssd.base.errors import JobError
from ssd.jobs.process import JobInfo, current, launch, read_log_tail

DATA_LOCK_FILE = ".download.lock"
DATA_LOG_FILE = "download.log"


def current_data_job(data_root: str) -> Optional[JobInfo]:
    """The running dataset download of this data folder, clearing a stale lock."""
    return current(os.path.join(data_root, DATA_LOCK_FILE))


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
    return launch(os.path.join(data_root, DATA_LOCK_FILE), ["data", kind, "--out", out] + list(extra or []),
                   out, DATA_LOG_FILE, "download")


def download_log_tail(out: str, lines: int = 20) -> str:
    """The last lines of a download's log."""
    return read_log_tail(out, lines, DATA_LOG_FILE)
