"""What an image file is: the formats we open, what a refused file really is, and hidden damage.

* **Only the formats we need** (JPEG/MPO, PNG, BMP, WebP, TIFF, GIF, HEIC/HEIF, AVIF) are offered to
  Pillow's identifier, so exotic decoders (EPS runs Ghostscript, for one) are never reached from an upload.
* **HEIC/HEIF** (iPhones' default, some newer cameras' ``.HIF``) comes from pi-heif, registered with
  Pillow on the first open (:func:`open_image`), so commands that open no picture never pay its import.
  libheif applies the file's rotation (``irot``) itself and pi-heif then reports EXIF orientation 1,
  so our EXIF turn does not rotate a phone photo twice. AVIF is Pillow's own.
* When Pillow refuses a file, its magic bytes say what it is instead (a PDF, an HTML error page,
  an iPhone HEIC photo), so the message tells the person what to do.
* Some damage Pillow decodes without complaint (a PNG cut after its image data, a stray JPEG
  restart marker); :func:`damage` finds it.
"""
from __future__ import annotations

import os
import re
import struct
import threading
from typing import IO, Optional, Tuple

from PIL import Image

# Pillow format ids handed to ``Image.open(formats=...)``. MPO is how Pillow names the JPEGs
# many cameras write (a JPEG with a second, preview picture appended); a GIF is read as its first frame.
# HEIF is tried before AVIF: Pillow's AVIF identifier also accepts the generic "mif1" brand of HEIC files.
PIL_FORMATS: Tuple[str, ...] = ("JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF", "GIF", "HEIF", "AVIF")
JPEG_FORMATS = ("JPEG", "MPO")
FORMATS_TEXT = "JPEG, PNG, BMP, WebP, TIFF, GIF, HEIC/HEIF or AVIF"

#: File name extensions of those formats: what upload widgets offer (``st.file_uploader(type=...)``)
#: and what a run counts as a photo, one list so the Detect page and folder runs cannot drift apart.
SUPPORTED_EXTENSIONS: Tuple[str, ...] = ("jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "gif",
                                         "heic", "heif", "hif", "avif")

_plugins_lock = threading.Lock()
_plugins_ready = False


def register_plugins() -> None:
    """Register Pillow's own plugins and pi-heif's HEIC/HEIF opener, once per process.

    Why lazily: importing pi-heif loads libheif (~25 ms); ``python -m ssd --help`` and commands that
    never open a picture should not pay it. Without pi-heif, HEIC files get the "convert it" message."""
    global _plugins_ready
    if _plugins_ready:
        return
    with _plugins_lock:
        if _plugins_ready:
            return
        Image.init()
        try:
            from pi_heif import register_heif_opener
            register_heif_opener()
        except Exception:  # noqa: BLE001 - missing or unloadable: HEIC is then refused with advice
            pass
        _plugins_ready = True


def open_image(path: str) -> Image.Image:
    """``Image.open(path)`` with every plugin of ours registered: the library's way to open a file."""
    register_plugins()
    return Image.open(path)


def available_formats() -> Tuple[str, ...]:
    """Our formats that this Pillow build can open.

    ``Image.open(formats=...)`` raises ``KeyError`` for a format whose plugin is not registered
    yet (Pillow registers MPO, WebP and TIFF lazily, pi-heif on :func:`register_plugins`) or not
    built (WebP without libwebp, AVIF without libavif), so register every plugin and keep only the
    ones present.
    """
    register_plugins()
    return tuple(f for f in PIL_FORMATS if f in Image.OPEN)


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_RESTART = re.compile(rb"\xff[\xd0-\xd7]")


def damage(fh: IO[bytes], fmt: Optional[str]) -> Optional[str]:
    """Why a file Pillow decoded is still damaged (None when it looks whole).

    Why: Pillow decodes a PNG cut after its image data, and a JPEG whose scan holds a restart
    marker it never declared (a byte error libjpeg only prints a warning about), without
    complaint, so such files used to pass silently.

    Only the picture itself is looked at: bytes after a PNG's end chunk or after the JPEG's end
    (a phone's Motion Photo clip, an MPO camera's second picture with restart markers of its own,
    a maker's trailer) are not the picture's and must not make a whole photo "damaged".
    """
    fh.seek(0)
    data = fh.read()
    if fmt == "PNG" and data.rfind(_PNG_END) < 0:
        return "the PNG has no end chunk (IEND): the file was cut short"
    if fmt in JPEG_FORMATS:
        sos = data.find(b"\xff\xda")
        if sos >= 0 and data.find(b"\xff\xdd", 0, sos) < 0:   # no restart interval declared
            end = data.find(b"\xff\xd9", sos + 2)          # the first picture's end (EOI)
            bad = _JPEG_RESTART.search(data, sos + 2, end if end >= 0 else len(data))
            if bad is not None:
                return f"the JPEG's compressed data is damaged (stray restart marker at byte {bad.start()})"
    return None


_MAGIC: Tuple[Tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x7fELF", "a Linux program"),
    (b"MZ", "a Windows program"),
    (b"8BPS", "a Photoshop (PSD) file; export it as PNG or JPEG"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio/video file"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x93NUMPY", "a NumPy array file (.npy)"),
    (b"\x00\x00\x01\x00", "a Windows icon (.ico)"),
    (b"\xff\xd8\xff", "a JPEG whose header is damaged"),
    (b"\x89PNG\r\n\x1a\n", "a PNG whose header is damaged"),
    (b"GIF8", "a GIF whose header is damaged"),
    (b"II*\x00", "a TIFF whose header is damaged"),
    (b"MM\x00*", "a TIFF whose header is damaged"),
)


def looks_like(head: bytes, label: str) -> str:
    """Best guess at what a file Pillow refused really is, from magic bytes then the extension.

    The usual culprits are a PDF or an HTML error page saved with a .jpg name, or an iPhone HEIC
    photo; saying so tells the person what to do (convert, or download the file again).
    """
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            if "HEIF" in available_formats():
                return ("a HEIC/HEIF photo that could not be decoded (damaged, or cut short); "
                        "convert it to JPEG first")
            return "a HEIC/HEIF photo (iPhone format); convert it to JPEG first"
        if brand in (b"avif", b"avis"):
            if "AVIF" in available_formats():
                return ("an AVIF image that could not be decoded (damaged, or cut short); "
                        "convert it to JPEG or PNG first")
            return "an AVIF image; convert it to JPEG or PNG first"
        return "an MP4/MOV video"
    if head[:4] == b"RIFF":
        kind = head[8:12]
        if kind == b"WEBP":
            return "a WebP whose header is damaged"
        if kind == b"WAVE":
            return "a WAV audio file"
        if kind == b"AVI ":
            return "an AVI video"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[:2] == b"BM":
        return "a BMP whose header is damaged"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    low = text[:64].lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML web page (often an error page saved instead of the image)"
    if low.startswith(b"<svg") or (low.startswith(b"<?xml") and b"<svg" in low):
        return "an SVG vector drawing; export it as PNG first"
    if low.startswith(b"<?xml") or low.startswith(b"<"):
        return "an XML/HTML text file"
    if low.startswith((b"{", b"[")):
        return "a JSON text file"
    if _is_text(head):
        return "a text file"
    ext = os.path.splitext(label)[1].lower()
    if ext:
        return f"unknown binary data, despite its '{ext}' extension"
    return "unknown binary data"


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 64-byte boundary still counts as text.
        try:
            decoded = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
    return printable >= 0.95 * max(1, len(decoded))


def header_size(head: bytes) -> Optional[Tuple[int, int]]:
    """Width and height straight from a PNG/GIF/BMP header (no Pillow involved).

    Used only to word error messages: Pillow refuses a zero-width PNG as "cannot identify", and a
    bomb's ``DecompressionBombError`` does not carry the dimensions.
    """
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            return int(w), int(h)
        if head.startswith((b"GIF87a", b"GIF89a")):
            w, h = struct.unpack("<HH", head[6:10])
            return int(w), int(h)
        if head.startswith(b"BM") and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
            return abs(int(w)), abs(int(h))
    except struct.error:
        return None
    return None
