"""A batch run's progress: done/total, images/s, ETA and failures, on stderr and for the app.

Why its own module: the run (``batch_run``) only counts; how often and in what form a person is
told is decided here, once, for the terminal, a log file and the app's status file alike.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, Optional, TextIO, Tuple

from ssd.base.atomic import atomic_write_json
from ssd.base.text import format_duration, terminal_safe

PROGRESS_EVERY_S = 2.0          # a terminal's and the app's pace
PROGRESS_LOG_EVERY_S = 60.0     # a log file's


class Progress:
    """done/total, images/s, ETA and failures on stderr (and in a status file for the app).

    Why two paces: a terminal (and the app's status file) is looked at live, so every
    ``PROGRESS_EVERY_S``; a log (``nohup``, SLURM, a scheduler) is read afterwards, and a line
    every 2 s is 18,000 lines for a ten-hour season: there, one a minute (``PROGRESS_LOG_EVERY_S``).
    """

    def __init__(self, total: int, done: int, stream: Optional[TextIO], status_file: Optional[str]) -> None:
        self.total, self.start_done, self.done, self.failures = total, done, done, 0
        self.stream, self.status_file = stream, status_file
        self.line_every = PROGRESS_EVERY_S if _is_terminal(stream) else PROGRESS_LOG_EVERY_S
        self.t0 = self.last_line = self.last_status = time.time()
        self.in_clip: Optional[Tuple[str, int, int]] = None    # (video, frames looked at, to look at)
        self._lock = threading.Lock()           # videos report from the decoding threads

    def clip(self, name: str) -> Callable[[int, int], None]:
        """The callback a video's decoding reports its frames to (``video.sample_frames``).

        Why: a long clip decodes for minutes while ``done`` stays put; the line said "0/6, ETA –"
        all that time, like a run that hung. It now names the clip and its frames."""
        def frames(done: int, total: int) -> None:
            self.in_clip = (name, done, total)
            self.report()
        return frames

    def rate(self) -> float:
        dt = time.time() - self.t0
        return (self.done - self.start_done) / dt if dt > 0 else 0.0

    def report(self, state: str = "running", force: bool = False) -> None:
        with self._lock:
            self._report(state, force)

    def _report(self, state: str, force: bool) -> None:
        now = time.time()
        line = self.stream is not None and (force or now - self.last_line >= self.line_every)
        status = bool(self.status_file) and (force or now - self.last_status >= PROGRESS_EVERY_S)
        if not (line or status):
            return
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else None
        clip, self.in_clip = self.in_clip, None     # said once: a later line is about later work
        within = f" ({terminal_safe(clip[0])}: {clip[1]}/{clip[2] or '?'} frames)" if clip and state == "running" else ""
        if line:
            self.last_line = now
            print(f"{state}: {self.done}/{self.total} images{within}, {rate:.1f} images/s, "
                  f"ETA {format_duration(eta)}, {self.failures} failed", file=self.stream, flush=True)
        if status:
            self.last_status = now
            report = {"state": state, "done": self.done, "total": self.total, "rate": rate, "eta_s": eta,
                      "failures": self.failures, "time": now, "pid": os.getpid()}
            if within:                          # the app's bar names the clip too (jobs.batch_progress_text)
                report["clip"] = {"file": clip[0], "frames_done": clip[1], "frames_total": clip[2]}
            atomic_write_json(self.status_file, report)


def _is_terminal(stream: Optional[TextIO]) -> bool:
    """Whether progress lines go to a terminal (else a log file, a pipe, a test's buffer)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):        # no isatty, or a closed file
        return False
