"""A cap on a JPEG's metadata: a photo with megabytes of EXIF segments is still a photo.

Why: Pillow joins a JPEG's EXIF segments with ``info["exif"] += segment``, which copies everything
read so far at each segment: a 59 MB file of 900 64 kB APP1 segments took 24 s to open (and was
opened twice). Camera traps write one EXIF segment of a few kB, phones a few more (EXIF, XMP, an
ICC profile, MPF). So before Pillow sees a JPEG, its segments up to the first scan are walked (a
few bytes read per segment); when APP/COM segments hold more than ``MAX_METADATA_BYTES``, the ones
beyond the cap are left out of the copy Pillow decodes. The pixels are untouched.
"""
from __future__ import annotations

import io
import struct
from typing import IO, List, Tuple

#: Metadata kept per JPEG: far above a camera's EXIF + XMP + ICC profile, far below a slow open.
MAX_METADATA_BYTES = 4 * 1024 * 1024

_SOS = 0xDA
_STANDALONE = set(range(0xD0, 0xD9)) | {0x01}      # RSTn, SOI, EOI, TEM: no length field


def _segments(fh: IO[bytes]) -> List[Tuple[int, int, int]]:
    """``(marker, start, end)`` of each segment before the first scan (``[]`` if not a JPEG)."""
    fh.seek(0)
    if fh.read(2) != b"\xff\xd8":
        return []
    out: List[Tuple[int, int, int]] = []
    pos = 2
    while True:
        fh.seek(pos)
        head = fh.read(4)
        if len(head) < 4 or head[0] != 0xFF:
            return out
        marker = head[1]
        if marker == 0xFF:                             # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        end = pos + 2 + struct.unpack(">H", head[2:])[0]
        out.append((marker, pos, end))
        if marker == _SOS:
            return out
        pos = end


def _is_metadata(marker: int) -> bool:
    return 0xE0 <= marker <= 0xEF or marker == 0xFE      # APP0..APP15, COM


def capped(fh: IO[bytes]) -> Tuple[IO[bytes], int]:
    """``fh`` itself when its metadata is within the cap, else an in-memory copy without the APP/COM
    segments beyond it; and how many bytes of metadata were left out."""
    segments = _segments(fh)
    fh.seek(0)
    total = sum(end - start for marker, start, end in segments if _is_metadata(marker))
    if total <= MAX_METADATA_BYTES:
        return fh, 0
    data = fh.read()
    parts, kept, dropped, last = [data[:2]], 0, 0, 2
    for marker, start, end in segments:
        size = end - start
        if _is_metadata(marker) and kept + size > MAX_METADATA_BYTES:
            parts.append(data[last:start])
            dropped += size
            last = end
        elif _is_metadata(marker):
            kept += size
    parts.append(data[last:])
    return io.BytesIO(b"".join(parts)), dropped
