"""Keep a long-lived server's resident memory near what it really holds (glibc's allocator, on Linux).

Why it exists: Streamlit runs every rerun in a new thread and glibc gives threads their own malloc
arenas (up to 8 per core); memory freed in an arena stays resident. Over a walk of every page the
app's process held about 100 MiB more than with two arenas (``scripts/bench_memory.py``). Elsewhere
(macOS, musl, Windows) these calls do nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Optional

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
