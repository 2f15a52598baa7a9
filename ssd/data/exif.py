"""When a camera-trap photo was taken: its EXIF date-time, read from the header only.

Camera-trap analysis (activity patterns, independent events) runs on time stamps, so batch
results carry each image's ``DateTimeOriginal`` in the form MegaDetector writes
(``"YYYY:MM:DD HH:MM:SS"``). Reading it parses the header, never the pixels. Some camera-trap
makers and exiftool edits write ``YYYY-MM-DD HH:MM:SS`` (or ISO's ``T``) instead: one parser,
:func:`parse_time`, reads every form here and in results files (episodes, Camtrap DP), and a photo's
stamp is always reported in the colon form.
"""
from __future__ import annotations

import calendar
import re
import time
from typing import Any, Optional

from PIL import Image

from ssd.data.image_formats import open_image

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_DATETIME = 306

_FORMATS = ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
# the usual shape of those formats (two-digit fields, ASCII digits): read without ``strptime``
_PLAIN = re.compile(r"(\d{4}):(\d\d):(\d\d) (\d\d):(\d\d):(\d\d)|(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)",
                    re.ASCII)


def exif_datetime(path: str) -> Optional[str]:
    """``DateTimeOriginal`` (else ``DateTime``) of ``path`` when present and well formed, else None."""
    try:
        with open_image(path) as im:
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
    """``value`` as ``"YYYY:MM:DD HH:MM:SS"`` when it is a time in one of ``_FORMATS``, else None."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    seconds = parse_time(value.strip().rstrip("\x00"))
    return None if seconds is None else time.strftime("%Y:%m:%d %H:%M:%S", time.gmtime(seconds))


def parse_time(text: Any) -> Optional[float]:
    """Seconds of an EXIF-style ``"YYYY:MM:DD HH:MM:SS"`` (or dash, or ISO) time stamp; None if there is none.

    Camera clocks have no time zone: the value is only compared with other frames of the same camera.
    """
    if not isinstance(text, str):
        return None
    text = text.strip()[:19]
    plain = _plain_time(text)
    if plain is not None:
        return plain
    for fmt in _FORMATS:
        try:
            return float(calendar.timegm(time.strptime(text, fmt)))
        except ValueError:
            continue
    return None


def _plain_time(text: str) -> Optional[float]:
    """``parse_time`` of a well-formed stamp in one of ``_FORMATS``, else None (``strptime`` decides).

    Why: ``time.strptime`` costs ~12 µs; episodes parse every entry's stamp, which made it most of
    ``results summary`` on a season (200,000 entries: 2.5 s of stamps). Only what ``strptime``
    would accept with the same value is read here (fields in range, the day in its month).
    """
    m = _PLAIN.fullmatch(text)
    if m is None:
        return None
    y, mo, d, hh, mm, ss = (int(v) for v in (m.groups()[:6] if m.group(1) else m.groups()[6:]))
    if not (y >= 1 and 1 <= mo <= 12 and hh <= 23 and mm <= 59 and ss <= 61) \
            or not 1 <= d <= calendar.monthrange(y, mo)[1]:
        return None
    return float(calendar.timegm((y, mo, d, hh, mm, ss, 0, 0, 0)))
