"""Pillow decodes that fail loudly: strict about truncation, with one list of Pillow's errors.

GluonCV sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` globally when it is imported
(``gluoncv/data/mhp.py``), which would make Pillow silently pad a cut-off JPEG with grey. Every
decode of ours therefore runs inside :func:`strict_decoding`, which turns the setting off for the
duration and puts back whatever the process had afterwards.
"""
from __future__ import annotations

import struct
import threading
from contextlib import contextmanager
from typing import Iterator, Tuple

import numpy as np
from PIL import Image, ImageFile, ImageOps

from ssd.base.errors import ImageError
from ssd.data.image_formats import open_image
from ssd.data.pixels import load_declared, to_rgb

#: What Pillow raises on a file that is not a readable image. ``DecompressionBombError`` is not an
#: ``OSError``; some plugins raise ``SyntaxError``/``ValueError``/``EOFError``/``struct.error`` on garbage.
PIL_ERRORS: Tuple[type, ...] = (OSError, Image.DecompressionBombError, SyntaxError, ValueError, EOFError,
                                struct.error)

_strict_lock = threading.Lock()
_strict_users = 0
_strict_saved: bool = False


@contextmanager
def strict_decoding() -> Iterator[None]:
    """Make Pillow raise on truncated data while at least one of our decodes runs.

    ``ImageFile.LOAD_TRUNCATED_IMAGES`` is a module global with no per-image override, and
    importing GluonCV sets it to True. A reference count lets several threads decode at once
    (Pillow releases the GIL while decoding) while the value the process had is put back when the
    last one finishes, so code outside this module sees no lasting change.
    """
    global _strict_users, _strict_saved
    with _strict_lock:
        if _strict_users == 0:
            _strict_saved = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _strict_users += 1
    try:
        yield
    finally:
        with _strict_lock:
            _strict_users -= 1
            if _strict_users == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _strict_saved


# The EXIF orientation tag (Detect reads it too: ssd.data.images); 5–8 turn the picture a quarter, swapping its sides.
EXIF_ORIENTATION = 0x0112
SIDE_SWAPPING = (5, 6, 7, 8)


def upright_rgb(im: Image.Image) -> Image.Image:
    """A decoded picture turned as its EXIF orientation says, as 8-bit RGB: what detection sees.

    Why: phones store portrait photos sideways with an orientation tag, and labelling tools
    (LabelImg, CVAT, Label Studio) draw boxes on the turned picture; training on the stored pixels
    would pair each box with the wrong part of the photo. A damaged EXIF block leaves it unturned.
    """
    try:
        turned = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not make a readable photo unusable
        turned = im
    return to_rgb(turned if turned is not None else im, like=im)


def upright_size(im: Image.Image) -> Tuple[int, int]:
    """``(width, height)`` of an opened picture once turned upright, read from its header only."""
    try:
        swapped = im.getexif().get(EXIF_ORIENTATION, 1) in SIDE_SWAPPING
    except Exception:  # noqa: BLE001 - as upright_rgb: a damaged EXIF block means no turn
        swapped = False
    w, h = im.size
    return (h, w) if swapped else (w, h)


def decode_rgb(path: str) -> np.ndarray:
    """Fully decode ``path`` to an (H, W, 3) uint8 RGB array, or raise ``ImageError``."""
    try:
        with strict_decoding(), open_image(path) as im:
            load_declared(im)
            rgb = upright_rgb(im)
        return np.asarray(rgb, dtype=np.uint8)
    except FileNotFoundError as err:
        raise ImageError(f"image {path} is missing ({err.strerror})") from err
    except PIL_ERRORS as err:
        raise ImageError(f"image {path} could not be decoded: {err}") from err
