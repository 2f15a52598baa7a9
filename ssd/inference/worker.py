"""One long-lived thread that runs every forward pass of a server process.

Why: Streamlit runs each rerun of a page in a fresh thread, and MXNet keeps per-thread state
(engine and memory pools) that is not given back when the thread ends: the app server grew about
15 MiB each time the network ran in a new thread. Submitting every forward (and the network's
construction and warm-up) to this one worker keeps that state to a single thread, so the process
stays flat however many sessions and reruns there are. Calls from the worker itself run inline.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_executor: Optional[ThreadPoolExecutor] = None
_worker_ident: Optional[int] = None


def _executor_now() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssd-inference")
            _executor.submit(_remember_ident).result()
        return _executor


def _remember_ident() -> None:
    global _worker_ident
    _worker_ident = threading.get_ident()


def on_worker(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` on the inference thread and return (or raise) its result."""
    executor = _executor_now()
    if threading.get_ident() == _worker_ident:
        return fn(*args, **kwargs)
    return executor.submit(fn, *args, **kwargs).result()


def worker_thread_ident() -> Optional[int]:
    """The inference thread's id (None before the first call), for tests."""
    return _worker_ident
