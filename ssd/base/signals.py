"""Ctrl-C and SIGTERM as a polite request: long runs stop at a safe point instead of mid-file.

Training polls the request once per iteration and batch detection once per image; both then write
their checkpoint and exit, ready to resume. Handlers can only be installed in the main thread (the
CLI's ``main()`` also runs in other threads, in tests and jobs); elsewhere the request can still be
made by the caller. The previous handlers come back afterwards.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional


@contextmanager
def stop_requests(install: bool = True, second_interrupts: bool = False,
                  notice: Optional[str] = None) -> Iterator[threading.Event]:
    """An ``Event`` that SIGINT/SIGTERM set while the block runs.

    With ``second_interrupts`` a second signal raises ``KeyboardInterrupt`` (a person pressing
    Ctrl-C twice means it). ``notice`` is written to stderr at the first signal, at once: the safe
    point may be minutes away (a long clip decoding), and a Ctrl-C that said nothing till then
    looked ignored, so it was pressed again and the run killed. Written with ``os.write`` on the
    descriptor: a handler that used ``sys.stderr`` while the interrupted code was printing would
    raise a reentrant-call error.
    """
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if second_interrupts and stop.is_set():
            raise KeyboardInterrupt
        if notice and not stop.is_set():
            try:
                os.write(2, (notice.rstrip("\n") + "\n").encode("utf-8", "replace"))
            except OSError:
                pass
        stop.set()

    old = {}
    if install:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
    try:
        yield stop
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
