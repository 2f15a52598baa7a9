"""When a video was recorded: the time its container carries, read from a few header bytes.

Why: a video's only other time is the file's modification time, and copying a card to a disk
often sets that to the copy's time, so clips of one night were dated the day they were copied and
split from the photos of the same visit. Containers carry the recording time:

* MP4 / MOV: QuickTime's ``com.apple.quicktime.creationdate`` (``moov/meta`` keys and items) or
  ``©day`` (``moov/udta``, classic or iTunes style): text with the camera's own time zone, read as
  the wall-clock time it states (as a photo's EXIF time is); else the movie header's ``mvhd``
  creation time, seconds since 1904-01-01. The format says UTC, but trail cameras, which know no
  time zone, write their clock there: it is read as the camera's clock, like EXIF (0 or a time
  outside ``EARLIEST_YEAR``.. a year from now means unknown: never set, or seconds since 1970).
* AVI: the ``IDIT`` chunk many trail cameras write (``MON JAN 01 12:00:00 2024`` or
  ``2024:01:01 12:00:00``).

Every time, text or number, outside those years is unknown: a clock never set, or garbage, gives
no plausible-looking lie. The file is untrusted: only a regular file is opened (a FIFO named
``.mp4`` would block ``open`` for ever); boxes and chunks are walked by seeking, each read is at most
``MAX_READ`` bytes whatever a header declares, and the walk stops after ``MAX_BOXES`` headers or
``MAX_DEPTH`` levels; anything odd means "no recording time" (None), never an error. No
dependency beyond the standard library.
"""
from __future__ import annotations

import calendar
import re
import struct
import time
from typing import BinaryIO, Iterator, Optional, Tuple

from ssd.base.json_file import open_regular
from ssd.data.exif import parse_time

MP4_EPOCH = 2082844800          # seconds from 1904-01-01 (MP4's zero) to 1970-01-01
EARLIEST_YEAR = 1990            # an mvhd time before this is a clock never set (or seconds since 1970)
MAX_READ = 4096                 # bytes read for any one header or value
MAX_BOXES = 2000                # box / chunk headers looked at per file
MAX_DEPTH = 6

SOURCE_MVHD = "mvhd"
SOURCE_CREATIONDATE = "QuickTime creationdate"
SOURCE_DAY = "\u00a9day"
SOURCE_IDIT = "IDIT"

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_CTIME = re.compile(r"[A-Za-z]{3}\s+([A-Za-z]{3})\s+(\d{1,2})\s+(\d{1,2}):(\d\d):(\d\d)\s+(\d{4})")


def recorded_time(path: str) -> Optional[Tuple[str, str]]:
    """(``"YYYY:MM:DD HH:MM:SS"``, source) of the video at ``path`` (source: ``mvhd``,
    ``QuickTime creationdate``, ``©day`` or ``IDIT``), or None when it carries none we trust."""
    try:
        with open(open_regular(path), "rb") as fh:         # a FIFO is refused, not waited on
            head = fh.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                return _avi_time(fh)
            return _mp4_time(fh)
    except (OSError, ValueError, struct.error, OverflowError):
        return None


class _Budget:
    """How many more headers the walk may read (a file of a million tiny boxes is not walked)."""

    def __init__(self) -> None:
        self.left = MAX_BOXES

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _file_end(fh: BinaryIO) -> int:
    fh.seek(0, 2)
    return fh.tell()


def _boxes(fh: BinaryIO, start: int, end: int, budget: _Budget) -> Iterator[Tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the MP4 boxes in [start, end), ends clamped to ``end``."""
    at = start
    while at + 8 <= end and budget.take():
        fh.seek(at)
        head = fh.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I", head[:4])[0], head[4:8]
        body = at + 8
        if size == 1:
            if len(head) < 16:
                return
            size, body = struct.unpack(">Q", head[8:16])[0], at + 16
        elif size == 0:
            size = end - at
        if size < body - at:
            return                              # smaller than its own header: the rest cannot be trusted
        stop = min(at + size, end)
        yield kind, body, stop
        at = at + size


def _read(fh: BinaryIO, start: int, end: int) -> bytes:
    fh.seek(start)
    return fh.read(max(0, min(end - start, MAX_READ)))


def _mp4_time(fh: BinaryIO) -> Optional[Tuple[str, str]]:
    budget, end = _Budget(), _file_end(fh)
    for kind, start, stop in _boxes(fh, 0, end, budget):
        if kind == b"moov":
            found = {}
            _walk_moov(fh, start, stop, budget, found, 0)
            for source in (SOURCE_CREATIONDATE, SOURCE_DAY, SOURCE_MVHD):
                if found.get(source):
                    return found[source], source
            return None
    return None


def _walk_moov(fh: BinaryIO, start: int, end: int, budget: _Budget, found: dict, depth: int) -> None:
    """Collect the times in ``moov`` (and its ``udta`` / ``meta`` / ``trak`` boxes) into ``found``."""
    if depth > MAX_DEPTH:
        return
    for kind, s, e in _boxes(fh, start, end, budget):
        if kind == b"mvhd":
            found.setdefault(SOURCE_MVHD, _mvhd_time(_read(fh, s, e)))
        elif kind == b"\xa9day":
            found.setdefault(SOURCE_DAY, _day_text(fh, s, e, budget))
        elif kind == b"meta":
            _walk_meta(fh, s, e, budget, found, depth + 1)
        elif kind == b"udta" or kind == b"ilst":
            _walk_moov(fh, s, e, budget, found, depth + 1)


def _mvhd_time(b: bytes) -> Optional[str]:
    """The movie header's creation time, when plausible (version 0: 32 bits, 1: 64 bits)."""
    if len(b) >= 8 and b[0] == 0:
        seconds = struct.unpack(">I", b[4:8])[0]
    elif len(b) >= 12 and b[0] == 1:
        seconds = struct.unpack(">Q", b[4:12])[0]
    else:
        return None
    return None if seconds == 0 else _plausible(seconds - MP4_EPOCH)


def _plausible(unix: float) -> Optional[str]:
    """``unix`` as ``"YYYY:MM:DD HH:MM:SS"`` if it lies in ``EARLIEST_YEAR``.. a year from now, else
    None: whatever field it came from, a clock never set or garbage is no recording time."""
    earliest = calendar.timegm((EARLIEST_YEAR, 1, 1, 0, 0, 0, 0, 0, 0))
    if not earliest <= unix <= time.time() + 366 * 86400:
        return None
    return time.strftime("%Y:%m:%d %H:%M:%S", time.gmtime(unix))


def _day_text(fh: BinaryIO, start: int, end: int, budget: _Budget) -> Optional[str]:
    """``©day``: iTunes style (a ``data`` box inside) or classic QuickTime (16-bit length, language, text)."""
    for kind, s, e in _boxes(fh, start, end, budget):
        if kind == b"data":
            return _stamp(_read(fh, s, e)[8:])
        break
    b = _read(fh, start, end)
    if len(b) < 4:
        return None
    n = struct.unpack(">H", b[:2])[0]
    return _stamp(b[4:4 + n])


def _walk_meta(fh: BinaryIO, start: int, end: int, budget: _Budget, found: dict, depth: int) -> None:
    """QuickTime ``meta`` (keys + items, no version field) or ISO ``meta`` (a full box: 4 bytes first)."""
    head = _read(fh, start, start + 8)
    if head[4:8] not in (b"hdlr", b"keys", b"ilst"):
        start += 4                              # ISO's version and flags
    creation_key = None
    for kind, s, e in _boxes(fh, start, end, budget):
        if kind == b"keys":
            creation_key = _creation_key(fh, s, e, budget)
        elif kind == b"ilst":
            for item, si, ei in _boxes(fh, s, e, budget):
                if item == b"\xa9day":
                    found.setdefault(SOURCE_DAY, _day_text(fh, si, ei, budget))
                elif creation_key is not None and item == struct.pack(">I", creation_key):
                    for data, sd, ed in _boxes(fh, si, ei, budget):
                        if data == b"data":
                            found.setdefault(SOURCE_CREATIONDATE, _stamp(_read(fh, sd, ed)[8:]))
                            break


def _creation_key(fh: BinaryIO, start: int, end: int, budget: _Budget) -> Optional[int]:
    """The 1-based index of ``com.apple.quicktime.creationdate`` in a ``keys`` box (its stated
    count is not trusted: the boxes present are walked, within the budget)."""
    for n, (_, s, e) in enumerate(_boxes(fh, start + 8, end, budget), 1):
        if _read(fh, s, e) == b"com.apple.quicktime.creationdate":
            return n
    return None


def _avi_time(fh: BinaryIO) -> Optional[Tuple[str, str]]:
    budget, end = _Budget(), _file_end(fh)
    fh.seek(4)
    riff_end = min(end, 8 + struct.unpack("<I", fh.read(4))[0])
    text = _idit(fh, 12, riff_end, budget, 0)
    return (text, SOURCE_IDIT) if text else None


def _idit(fh: BinaryIO, start: int, end: int, budget: _Budget, depth: int) -> Optional[str]:
    """The ``IDIT`` chunk's time in the RIFF chunks of [start, end) (``LIST`` descended, ``movi`` skipped)."""
    at = start
    while at + 8 <= end and budget.take():
        fh.seek(at)
        head = fh.read(12)
        if len(head) < 8:
            return None
        kind, size = head[:4], struct.unpack("<I", head[4:8])[0]
        stop = min(at + 8 + size, end)
        if kind == b"IDIT":
            return _stamp(_read(fh, at + 8, stop))
        if kind == b"LIST" and head[8:12] != b"movi" and depth < MAX_DEPTH:
            found = _idit(fh, at + 12, stop, budget, depth + 1)
            if found:
                return found
        at += 8 + size + (size & 1)
    return None


def _stamp(raw: bytes) -> Optional[str]:
    """A container's date text as ``"YYYY:MM:DD HH:MM:SS"`` (its wall clock; a zone suffix is
    dropped, as a photo's EXIF time has none), else None: ISO / EXIF forms or C's ``ctime`` form,
    in the years an ``mvhd`` time may have."""
    text = raw.decode("latin-1").strip().strip("\x00").strip()
    m = _CTIME.match(text)
    if m:
        month = _MONTHS.get(m.group(1).lower())
        text = f"{m.group(6)}:{month or 0:02d}:{int(m.group(2)):02d} {int(m.group(3)):02d}:{m.group(4)}:{m.group(5)}"
    seconds = parse_time(text[:19])
    return None if seconds is None else _plausible(seconds)
