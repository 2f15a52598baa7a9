"""A function of one file, computed once per version of that file.

Why: pages and runs ask the same question of the same file again and again (a video's frame time
stamps for every frame the browser shows, whether a JSON is a COCO Camera Traps file on every
rerun of a page), while the answer changes only when the file does. Keyed by path, size and
modification time, a file replaced or rewritten in place is read again; nothing stale is served.
"""
from __future__ import annotations

import functools
import os
from typing import Callable, TypeVar

T = TypeVar("T")


def per_file_version(maxsize: int, missing: T) -> Callable[[Callable[[str, int], T]], Callable[[str], T]]:
    """Decorate ``fn(path, size)``: the call ``fn(path)`` is cached per (path, size, mtime) in an
    LRU cache of ``maxsize`` versions; ``missing`` is returned, uncached, when the file cannot be
    looked at. The decorated function's ``cache_clear`` empties the cache (benchmarks, tests)."""
    def wrap(fn: Callable[[str, int], T]) -> Callable[[str], T]:
        @functools.lru_cache(maxsize=maxsize)
        def version(path: str, size: int, mtime_ns: int) -> T:
            return fn(path, size)

        @functools.wraps(fn)
        def call(path: str) -> T:
            try:
                st = os.stat(path)
            except OSError:
                return missing
            return version(path, st.st_size, st.st_mtime_ns)

        call.cache_clear = version.cache_clear      # type: ignore[attr-defined]
        return call
    return wrap
