"""Ctrl-C and SIGTERM as a polite request: long runs stop at a safe point instead of mid-file.

Training polls the request once per iteration and batch detection once per image; both then write
their checkpoint and exit, ready to resume. Handlers can only be installed in the main thread (the
CLI's ``main()`` also runs in other threads, in tests and jobs); elsewhere the request can still be
made by the caller. The previous handlers come back afterwards.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def stop_requests(install: bool = True, second_interrupts: bool = False) -> Iterator[threading.Event]:
    """An ``Event`` that SIGINT/SIGTERM set while the block runs.

    With ``second_interrupts`` a second signal raises ``KeyboardInterrupt`` (a person pressing
    Ctrl-C twice means it).
    """
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if second_interrupts and stop.is_set():
            raise KeyboardInterrupt
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
