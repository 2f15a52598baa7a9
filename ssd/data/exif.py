"""When a camera-trap photo was taken: its EXIF date-time, read from the header only.

Camera-trap analysis (activity patterns, independent events) runs on time stamps, so batch
results carry each image's ``DateTimeOriginal`` in the form MegaDetector writes
(``"YYYY:MM:DD HH:MM:SS"``). Reading it parses the header, never the pixels.
"""
from __future__ import annotations

import time
from typing import Optional

from PIL import Image

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_DATETIME = 306


def exif_datetime(path: str) -> Optional[str]:
    """``DateTimeOriginal`` (else ``DateTime``) of ``path`` when present and well formed, else None."""
    try:
        with Image.open(path) as im:
            return datetime_of(im)
    except Exception:  # noqa: BLE001 - an unreadable file simply has no time stamp
        return None


def datetime_of(im: Image.Image) -> Optional[str]:
    """The time stamp of an image already open (``load_image`` reads it with the pixels: one open).

    ``DateTimeOriginal`` first, then ``DateTime`` when the first is missing *or not a time*: cameras
    whose clock was never set write zeros or blanks in one and the time in the other."""
    try:
        exif = im.getexif()
        values = (exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL), exif.get(_DATETIME))
    except Exception:  # noqa: BLE001 - a missing or damaged EXIF block is simply "no time stamp"
        return None
    return next((v for v in map(_well_formed, values) if v is not None), None)


def _well_formed(value) -> Optional[str]:
    """``value`` as ``"YYYY:MM:DD HH:MM:SS"`` when it is one, else None."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = value.strip().rstrip("\x00")
    try:
        time.strptime(value, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return value
