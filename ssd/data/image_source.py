"""Reading an image's bytes safely: a path, bytes or an upload, never a pipe, never unbounded.

Detection input comes from people (uploads in the app, paths on the command line). Before Pillow
sees anything, the source is opened here: only a regular file (a FIFO or a device would block or
never end), at most ``max_bytes`` read from a stream, and an empty or oversized file refused with
an :class:`~ssd.base.errors.ImageError` that names it.
"""
from __future__ import annotations

import io
import os
import stat
from typing import IO, Optional, Tuple, Union

from ssd.base.errors import ImageError

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]


def display_name(source: object, name: Optional[str]) -> str:
    """How messages name ``source``: the given name, else its path or file name, else "<image data>"."""
    if name:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)  # type: ignore[arg-type]
    given = getattr(source, "name", None)
    if isinstance(given, str) and given:
        return given
    return "<image data>"


def open_source(source: Source, label: str, max_bytes: int) -> Tuple[IO[bytes], bytes]:
    """Return a seekable binary stream positioned at 0 and the file's first bytes (for sniffing).

    Paths are opened directly (Pillow then reads only what it needs); bytes and file-like objects
    are read into memory, at most ``max_bytes + 1`` bytes so an endless stream cannot exhaust RAM.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ImageError(f"'{label}' does not exist")
        if os.path.isdir(path):
            raise ImageError(f"'{label}' is a folder, not an image file")
        fh: IO[bytes] = _open_regular(path, label)
        try:
            size = os.fstat(fh.fileno()).st_size
            _check_byte_size(size, label, max_bytes)
            head = fh.read(64)
            fh.seek(0)
        except ImageError:
            fh.close()
            raise
        except OSError as err:
            fh.close()
            raise ImageError(f"'{label}' could not be read: {err.strerror or err}") from None
        return fh, head

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        # A Streamlit UploadedFile survives reruns and may sit at EOF after an earlier read:
        # rewind so the same upload object always gives the same image.
        try:
            if getattr(source, "seekable", lambda: False)():
                source.seek(0)
            data = source.read(max_bytes + 1)
        except Exception as err:  # any stream error is a problem with the input
            raise ImageError(f"'{label}' could not be read: {err}") from None
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"load_image: {type(source).__name__}.read() returned "
                            f"{type(data).__name__}, expected bytes (open the file in binary mode)")
        data = bytes(data)
    else:
        raise TypeError(f"load_image: expected a path, bytes or a binary file object, "
                        f"got {type(source).__name__}")
    _check_byte_size(len(data), label, max_bytes)
    return io.BytesIO(data), data[:64]


def _open_regular(path: str, label: str) -> IO[bytes]:
    """Open ``path`` only if it is a regular file.

    Why: opening a FIFO blocks until someone writes to it, and a device (``/dev/zero``) never
    ends, so ``detect`` on a pipe named ``.jpg`` hung forever. The file is opened non-blocking
    and checked with ``fstat`` on the descriptor itself, so swapping it after a check cannot help.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        raise ImageError(f"'{label}' could not be opened: {err.strerror or err}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
                    or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise ImageError(f"'{label}' is {kind}, not an image file; refused without reading it")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_byte_size(size: int, label: str, max_bytes: int) -> None:
    if size == 0:
        raise ImageError(f"'{label}' is empty (0 bytes)")
    if size > max_bytes:
        raise ImageError(f"'{label}' is {_mb(size)}, larger than the {_mb(max_bytes)} limit "
                         "for one image; resize or re-encode it")


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"
