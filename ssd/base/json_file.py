"""Reading a JSON file from outside: a regular file only, a size cap, a nesting cap, one clear error.

Why: ``meta.json`` of a shared model, a results file or a dataset's description come from
strangers. ``open`` on a FIFO blocks for ever; ``json.load`` of ``[[[[…]]]]`` 200,000 deep raises
``RecursionError`` (not ``ValueError``), and a value nested a few hundred deep parses but makes
later code (``json.dumps``, recursive walks) fail far from the file. Here the file is opened
non-blocking and checked with ``fstat`` on the descriptor itself, read up to ``max_bytes``, and
its nesting measured, so every bad file ends as one ``JSONFileError`` naming it and the reason.
"""
from __future__ import annotations

import json
import os
import stat
from typing import Any, Optional

from ssd.base.memory import collector_paused

#: Deeper than any file of ours (a results file is 6 levels deep, meta.json 5).
MAX_DEPTH = 64

#: Our own state files (a training checkpoint's history, a run's settings and progress, a cache's
#: labels, a dataset's description): far above any we write, far below a file that would fill memory.
MAX_STATE_BYTES = 256 * 2 ** 20

#: A held document (``read_json_file``'s ``hold``) of at least this many characters is frozen after
#: parsing: below it the collector's passes over it are too short to matter, and each freeze keeps
#: for good whatever cyclic garbage the process has at that moment (a test run reads hundreds).
FREEZE_CHARS = 8 * 2 ** 20


class JSONFileError(ValueError):
    """A JSON file that cannot be used; the message names the file and says why."""


def read_json_file(path: str, max_bytes: int, max_depth: Optional[int] = MAX_DEPTH, hold: bool = False) -> Any:
    """The parsed content of ``path``; ``FileNotFoundError`` when it is absent, else ``JSONFileError``.

    ``max_depth``: the deepest nesting accepted (None: only what the parser itself survives, for
    callers that walk every value with a depth check of their own). ``hold``: a large document
    the caller keeps (a season's results): parsed with the garbage collector paused and frozen
    after when large (``FREEZE_CHARS``; ``memory.collector_paused``): 3x faster to read, and no
    later collection walks it.
    """
    raw = read_regular(path, max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise JSONFileError(f"{path} is not UTF-8 text (bad byte at {err.start})") from None
    del raw                            # not held beside the text and the document (a file's size less at the peak)
    try:
        with collector_paused(freeze=hold and len(text) >= FREEZE_CHARS):
            value = json.loads(text)
    except RecursionError:
        raise JSONFileError(f"{path} is nested too deeply to be a file of ours") from None
    except ValueError as err:
        raise JSONFileError(f"{path} is not valid JSON ({err})") from None
    if max_depth is not None and depth_over(value, max_depth):
        raise JSONFileError(f"{path} is nested more than {max_depth} levels deep")
    return value


def read_regular(path: str, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes`` (never blocks on a FIFO)."""
    fd = open_regular(path)
    st = os.fstat(fd)
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > max_bytes:
            raise JSONFileError(f"{path} is {st.st_size:,} bytes, more than the {max_bytes:,} this file may have")
        try:
            # the size the file has, plus one byte to see it grew: Python allocates a read's whole
            # size first, so read(max_bytes + 1) asked for 2 GiB to read any results file
            raw = fh.read(min(st.st_size, max_bytes) + 1)
            while st.st_size < len(raw) <= max_bytes:          # grew while read: the rest, still capped
                piece = fh.read(min(2 ** 20, max_bytes + 1 - len(raw)))
                if not piece:
                    break
                raw += piece
        except OSError as err:
            raise JSONFileError(f"{path} cannot be read ({err.strerror or err})") from None
    if len(raw) > max_bytes:
        raise JSONFileError(f"{path} is more than the {max_bytes:,} bytes this file may have")
    return raw


def open_regular(path: str, flags: int = os.O_RDONLY) -> int:
    """A blocking descriptor on ``path`` if it is a regular file; ``FileNotFoundError`` when absent,
    ``JSONFileError`` for anything else (a FIFO, a device, a folder: refused without waiting on it).

    Why non-blocking first: ``open`` of a FIFO waits for a writer for ever (SIGTERM included),
    so the kind is checked with ``fstat`` on the descriptor itself before anything reads it.
    """
    try:
        fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise
    except OSError as err:
        raise JSONFileError(f"{path} cannot be opened ({err.strerror or err})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):   # checked before ``fdopen``, which itself refuses a folder
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise JSONFileError(f"{path} is {kind}, not a JSON file; refused without reading it")
    os.set_blocking(fd, True)
    return fd


def depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if d > limit:
            return True
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list)))
    return False
