"""Atomic file writes: a reader (or a crash) never sees half a file.

Write to a temporary file in the destination's folder, fsync it, then ``os.replace`` it over
the destination, which is atomic on POSIX and Windows when both are on one filesystem.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from contextlib import contextmanager
import stat
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ssd.base.errors import OutputError

#: The names ``temp_beside`` gives: ``.NAME.``, ``mkstemp``'s eight characters (a-z, 0-9, ``_``), ``.tmp``.
_TEMP_NAME = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp", re.DOTALL)      # DOTALL: a name may hold a newline

#: Python can read the umask only by setting it: two threads reading it at once (``results draw``
#: writes from a pool) saw 0 and left 0 set for good. Reading it under this lock keeps it whole.
_UMASK_LOCK = threading.Lock()


def _refuse_special(dest: str) -> None:
    """``OutputError`` when ``dest`` exists and is not a regular file (a symlink, FIFO, device, folder).

    Why: ``os.replace`` over a symlink or a device would silently swap it for a plain file.
    """
    try:
        mode = os.lstat(dest).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else
                "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise OutputError(f"{dest} is {kind}; refusing to replace it: choose another output path")


def remove_stale_temp_files(folder: str) -> List[str]:
    """Delete the temporary files killed writers left in ``folder`` (``.NAME.XXXX.tmp`` from
    ``atomic_path``); only for folders this process owns exclusively (a run's folder under its
    lock). Returns the names removed."""
    return _remove_files(folder, lambda name: name.startswith(".") and name.endswith(".tmp"))


def _remove_files(folder: str, chosen: Callable[[str], object]) -> List[str]:
    """Delete the regular files (not links) of ``folder`` whose name ``chosen`` accepts; their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(folder, name)
        if chosen(name) and os.path.isfile(path) and not os.path.islink(path):
            try:
                os.unlink(path)
                removed.append(name)
            except OSError:
                pass
    return removed


def temp_target(name: str) -> Optional[str]:
    """The name of the file whose temporary file ``name`` is, when it is named exactly as
    ``temp_beside`` names them (``.NAME.XXXXXXXX.tmp``); else None.

    Why: a writer that cleans up after a killed run must know its own temporary files from a
    person's files that merely look alike."""
    match = _TEMP_NAME.fullmatch(name)
    return match.group(1) if match else None


def remove_stale_temps(dest: str) -> List[str]:
    """Delete the temporary files killed writers of ``dest`` left beside it (``.NAME.XXXXXXXX.tmp``,
    exactly the names ``temp_beside`` makes); returns the names removed.

    For a run's own outputs, when the run starts: two runs writing the same file at once are an
    error anyway (the later rename wins), and a half-written temp file is never of use.
    """
    folder = os.path.dirname(os.path.abspath(dest)) or "."
    pattern = re.compile(re.escape("." + os.path.basename(dest) + ".") + r"[a-z0-9_]{8}\.tmp")
    return _remove_files(folder, pattern.fullmatch)


def check_output_target(dest: Optional[str]) -> None:
    """Check before any work that ``dest`` can be written: its folder exists and takes a file, and
    whatever is there now is a regular file. ``OutputError`` says which and why."""
    if not dest:
        return
    folder = os.path.dirname(os.path.abspath(dest)) or "."
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write {dest}: the folder {folder} does not exist; create it first")
    _refuse_special(dest)
    try:
        fd, probe = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".tmp", dir=folder)
    except OSError as err:
        raise OutputError(f"cannot write {dest}: {err.strerror or err} in {folder}") from None
    os.close(fd)
    os.unlink(probe)


def check_output_targets(*dests: Optional[str]) -> None:
    """``check_output_target`` for each output a command was asked to write, and no two of them one
    file: the second written would replace the first (``detect``'s results under its CSV)."""
    seen: Dict[str, str] = {}
    for dest in dests:
        check_output_target(dest)
        if dest and dest != "-":
            key = os.path.realpath(dest)
            if key in seen:
                raise OutputError(f"'{seen[key]}' and '{dest}' are one file: give each output its own name")
            seen[key] = dest


@contextmanager
def atomic_path(dest: str) -> Iterator[str]:
    """Yield a temporary path next to ``dest``; on success move it over ``dest``.

    Refuses (``OutputError``) to replace anything that is not a regular file, before and after the
    write (a symlink could be planted meanwhile).
    """
    fd, tmp = temp_beside(dest)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        replace_with(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def temp_beside(dest: str) -> Tuple[int, str]:
    """``(fd, path)`` of a new ``.NAME.XXXX.tmp`` file in ``dest``'s folder, ordinary permissions.

    For writers that keep a file open and publish it later (a batch run's journal), and for
    ``atomic_path``; refuses (``OutputError``) when ``dest`` is not a regular file.
    """
    folder = os.path.dirname(os.path.abspath(dest)) or "."
    os.makedirs(folder, exist_ok=True)
    _refuse_special(dest)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".tmp", dir=folder)
    with _UMASK_LOCK:
        umask = os.umask(0)
        os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
    return fd, tmp


def replace_with(tmp: str, dest: str) -> None:
    """Move an fsync'd ``tmp`` over ``dest`` atomically, refusing a ``dest`` planted as a symlink or device."""
    _refuse_special(dest)
    os.replace(tmp, dest)


def atomic_write_bytes(dest: str, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(dest: str, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


def atomic_write_json(dest: str, obj: Any) -> None:
    atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
