"""Keep a long-lived server lean and steady: resident memory near what it really holds, and no
garbage-collector pauses in the middle of a slider move.

Why it exists: Streamlit runs every rerun in a new thread and glibc gives threads their own malloc
arenas (up to 8 per core); memory freed in an arena stays resident. Over a walk of every page the
app's process held about 100 MiB more than with two arenas (``scripts/bench_memory.py``; elsewhere
than glibc those two calls do nothing). And once MXNet, pandas and matplotlib are imported the
process holds millions of objects: each full collection of Python's cyclic garbage collector took
130-240 ms, about one per slider move, most of a move's round trip (``scripts/bench_slider.py``).
"""
from __future__ import annotations

import ctypes
import contextlib
import ctypes.util
import functools
import gc
import sys
import threading
from typing import Iterator, Optional

_M_ARENA_MAX = -8          # mallopt parameter number, from glibc's malloc.h


@functools.lru_cache(maxsize=1)
def _libc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """At most ``arenas`` malloc arenas for threads started from now on; ``False`` where unsupported.

    Call early in a server (before its worker threads allocate): arenas already made stay.
    """
    libc = _libc()
    return bool(libc and libc.mallopt(_M_ARENA_MAX, int(arenas)) == 1)


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (``malloc_trim``); ``True`` when some were."""
    libc = _libc()
    return bool(libc and libc.malloc_trim(0) == 1)


_modules_when_frozen = 0


def freeze_after_imports(new_modules: int = 100) -> bool:
    """Once ``new_modules`` more modules are imported than at the last call that froze, collect the
    garbage and move every object still alive into the collector's permanent generation
    (``gc.freeze``): later full collections then walk only what was made since, not the libraries.

    Why after imports and not after every run: a frozen object that later becomes cyclic garbage is
    never freed, so only the long-lived bulk (modules, their functions and classes) is frozen, a few
    times per process. Objects freed by reference counting are freed as before.
    """
    global _modules_when_frozen
    if len(sys.modules) - _modules_when_frozen < new_modules:
        return False
    gc.collect()
    gc.freeze()
    _modules_when_frozen = len(sys.modules)
    return True


def freeze_loaded_data() -> int:
    """After a large, long-held document was read: collect the young generations and move every
    object alive into the permanent generation (``gc.freeze``); returns how many are frozen now.

    Why: a season's results held by the page (100,000 entries of ~84 boxes: tens of millions of
    dicts, lists and floats) made every full collection walk them all: 3.7 s on a 2-core AMD EPYC
    Zen 5, in whichever slider move it fell on, longer than the move's own counting. Parsed JSON
    holds no reference cycles, so reference counting still frees it when the cache lets it go;
    only cyclic garbage older than the young generations stays (as with ``freeze_after_imports``).
    """
    gc.collect(1)
    gc.freeze()
    return gc.get_freeze_count()


_pause_lock = threading.Lock()
_pauses = 0                 # how many ``collector_paused`` blocks are running, in any thread
_enable_after = False       # whether the collector was on when the first of them began


@contextlib.contextmanager
def collector_paused(freeze: bool = False) -> Iterator[None]:
    """The cyclic garbage collector off for the block (parsing a large JSON document), then as before.

    Why: ``json.loads`` of a season's results (50,000 entries of 84 boxes: millions of dicts and
    lists) ran 3x slower with the collector on, as every few hundred new containers started a
    collection and the older generations' passes walked all the document made so far (9.4 s
    instead of 2.9 s on a 2-core AMD EPYC Zen 5). A parsed document holds no reference cycles, so
    there is nothing for the collector to find in it. The collector is process-wide: with blocks
    in several threads (a server's sessions) it comes back on when the last one ends.

    ``freeze``: the young generations collected first, and everything alive at the end frozen
    (``freeze_loaded_data``'s reason): else the first collections after the block walked the new
    document, generation after generation, and the time saved was spent there (5.5 s in the first
    summary of the season above).
    """
    global _pauses, _enable_after
    with _pause_lock:
        if freeze:
            gc.collect(1)
        if _pauses == 0:
            _enable_after = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            if freeze:
                gc.freeze()
            _pauses -= 1
            if _pauses == 0 and _enable_after:
                gc.enable()
