"""Safe image loading for detection: one entry point, one error type, any file a person drops in.

Detection input comes from people (uploads in the app, paths on the command line), so every way a
file can be wrong must end as one :class:`~ssd.base.errors.ImageError` whose message names the file and
says what is wrong: empty, not an image at all (and what it looks like instead), truncated,
a decompression bomb, absurd dimensions, or simply too big. Nothing else may escape for bad input.

Why each step is here:

* **Only the formats we need** (JPEG/MPO, PNG, BMP, WebP, TIFF, GIF) are offered to Pillow's
  identifier, so exotic decoders (EPS runs Ghostscript, for one) are never reached from an upload.
* **Size limits are checked from the header, before decoding**: Pillow's ``Image.open`` only parses
  the header, so a 30000×30000 PNG of a few hundred bytes is refused without allocating 2.7 GB.
* **A full decode (``load()``) happens inside the function**, so truncation is found here and not
  later inside the network code. GluonCV sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` globally
  when it is imported (``gluoncv/data/mhp.py``), which would make Pillow silently pad a cut-off
  JPEG with grey. We therefore decode in strict mode for the duration of our own ``load()`` calls
  (see :func:`_strict_decoding`) and restore whatever the process had afterwards.
* **EXIF orientation is applied** because phones store portrait photos as rotated landscape
  pixels plus an orientation tag; boxes must be drawn on the image the person sees.
* **Every pixel mode becomes 8-bit RGB**: the network was trained on RGB uint8; alpha is
  composited onto white (what a viewer shows), 16-bit and float data are rescaled, not clipped.
* **JPEG draft decoding** (``draft_to``) lets libjpeg downscale by 1/2, 1/4 or 1/8 during the DCT,
  which turns a 1920×1080 camera-trap photo into a ~10 ms decode when the network only wants 256².
"""
from __future__ import annotations

import io
import os
import re
import stat
import struct
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Iterator, Optional, Tuple, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ssd.base.errors import ImageError

#: Largest image (in pixels, after the header is read) that we agree to decode: 100 megapixels.
#: A 100 MP RGB image already needs 300 MB once decoded; anything larger from an upload is far
#: more likely a decompression bomb than a photo. Pillow's own (global, 89 MP warning / 179 MP
#: error) limit is not used as the policy because other code in the process may change it.
MAX_PIXELS: int = 100_000_000

#: Largest file (in bytes) that we agree to read: 200 MB. Uploads and files are read whole.
MAX_BYTES: int = 200 * 1024 * 1024

#: Longest side divided by shortest side above which an image is refused (a 1×5000 "image" is a
#: corrupt header or a strip, not something a detector can say anything about).
MAX_ASPECT: float = 50.0

#: File name extensions offered by upload widgets (``st.file_uploader(type=...)``).
SUPPORTED_EXTENSIONS: Tuple[str, ...] = ("jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff")

# Pillow format ids handed to ``Image.open(formats=...)``. MPO is how Pillow names the JPEGs
# many cameras write (a JPEG with a second, preview picture appended); GIF is accepted (first
# frame) though not advertised in SUPPORTED_EXTENSIONS.
_PIL_FORMATS: Tuple[str, ...] = ("JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF", "GIF")
_JPEG_FORMATS = ("JPEG", "MPO")
_FORMATS_TEXT = "JPEG, PNG, BMP, WebP, TIFF or GIF"

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]


@dataclass
class LoadedImage:
    """A decoded image ready for detection.

    ``image`` is 8-bit RGB and already EXIF-rotated. ``original_size`` is ``(width, height)`` of
    the full-resolution image after rotation: the size a person sees, and the size boxes must be
    reported in. ``decode_scale`` is ``image.width / original_size[0]`` — below 1 only when JPEG
    draft decoding returned a reduced image; callers that work in normalized coordinates multiply
    by ``original_size`` and never need it, callers in decoded pixels divide by it.
    """

    image: Image.Image
    original_size: Tuple[int, int]
    name: str
    decode_scale: float = 1.0


# --------------------------------------------------------------------------------------------
# Reading the source
# --------------------------------------------------------------------------------------------

def _display_name(source: object, name: Optional[str]) -> str:
    if name:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)  # type: ignore[arg-type]
    given = getattr(source, "name", None)
    if isinstance(given, str) and given:
        return given
    return "<image data>"


def _open_source(source: Source, label: str, max_bytes: int) -> Tuple[IO[bytes], bytes]:
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


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_RESTART = re.compile(rb"\xff[\xd0-\xd7]")


def _damage(fh: IO[bytes], fmt: Optional[str]) -> Optional[str]:
    """Why a file Pillow decoded is still damaged (None when it looks whole).

    Why: Pillow decodes a PNG cut after its image data, and a JPEG whose scan holds a restart
    marker it never declared (a byte error libjpeg only prints a warning about), without
    complaint, so such files used to pass silently.
    """
    fh.seek(0)
    data = fh.read()
    if fmt == "PNG" and not data.endswith(_PNG_END):
        return "the PNG has no end chunk (IEND): the file was cut short"
    if fmt in _JPEG_FORMATS:
        sos = data.find(b"\xff\xda")
        if sos >= 0 and data.find(b"\xff\xdd", 0, sos) < 0:   # no restart interval declared
            bad = _JPEG_RESTART.search(data, sos + 2)
            if bad is not None:
                return f"the JPEG's compressed data is damaged (stray restart marker at byte {bad.start()})"
    return None


def _check_byte_size(size: int, label: str, max_bytes: int) -> None:
    if size == 0:
        raise ImageError(f"'{label}' is empty (0 bytes)")
    if size > max_bytes:
        raise ImageError(f"'{label}' is {_mb(size)}, larger than the {_mb(max_bytes)} limit "
                         "for one image; resize or re-encode it")


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


# --------------------------------------------------------------------------------------------
# Recognising what a file is when Pillow cannot
# --------------------------------------------------------------------------------------------

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


def _looks_like(head: bytes, label: str) -> str:
    """Best guess at what a file Pillow refused really is, from magic bytes then the extension.

    The usual culprits are a PDF or an HTML error page saved with a .jpg name, or an iPhone HEIC
    photo; saying so tells the person what to do (convert, or download the file again).
    """
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "a HEIC/HEIF photo (iPhone format); convert it to JPEG first"
        if brand in (b"avif", b"avis"):
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


def _header_size(head: bytes) -> Optional[Tuple[int, int]]:
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


# --------------------------------------------------------------------------------------------
# Strict decoding without touching the process-wide setting for good
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

def load_image(source: Source, name: Optional[str] = None, *, draft_to: Optional[int] = None,
               max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> LoadedImage:
    """Decode ``source`` (a path, bytes, or a binary file-like such as a Streamlit upload).

    Returns an EXIF-rotated 8-bit RGB :class:`LoadedImage`. ``name`` is used in messages and
    kept on the result; it defaults to the path or the file object's ``.name``.

    ``draft_to``: when the file is a JPEG, let libjpeg decode at 1/2, 1/4 or 1/8 scale, the
    smallest that keeps both sides ≥ ``draft_to`` (pass the network input size). Other formats
    are decoded in full. ``original_size`` always reports the full (rotated) size.

    Raises :class:`ImageError` for every problem with the input itself; ``TypeError`` /
    ``ValueError`` only for programming errors (a non-file argument, a non-positive size).
    """
    if draft_to is not None and int(draft_to) <= 0:
        raise ValueError(f"draft_to must be a positive size, got {draft_to!r}")
    label = _display_name(source, name)
    fh, head = _open_source(source, label, max_bytes)
    with fh:
        return _decode(fh, head, label, draft_to, max_pixels)


def _available_formats() -> Tuple[str, ...]:
    """Our formats that this Pillow build can open.

    ``Image.open(formats=...)`` raises ``KeyError`` for a format whose plugin is not registered
    yet (Pillow registers MPO, WebP and TIFF lazily) or not built (WebP without libwebp), so make
    sure every plugin is registered and keep only the ones present.
    """
    Image.init()
    return tuple(f for f in _PIL_FORMATS if f in Image.OPEN)


def _decode(fh: IO[bytes], head: bytes, label: str, draft_to: Optional[int],
            max_pixels: int) -> LoadedImage:
    try:
        im = Image.open(fh, formats=_available_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own ceiling (its global MAX_IMAGE_PIXELS, x2 for the error) fired first.
        size = _header_size(head)
        dims = f" ({size[0]}×{size[1]} pixels)" if size else ""
        raise ImageError(f"'{label}' declares a huge image{dims}: refused as a possible "
                         "decompression bomb") from None
    except UnidentifiedImageError:
        size = _header_size(head)
        if size is not None and (size[0] == 0 or size[1] == 0):
            raise ImageError(f"'{label}' has zero width or height ({size[0]}×{size[1]})") from None
        raise ImageError(f"'{label}' is not an image PIL can read (looks like "
                         f"{_looks_like(head, label)}); use {_FORMATS_TEXT}") from None
    except MemoryError:
        raise ImageError(f"'{label}' needs more memory than is available to open") from None
    except Exception as err:  # header parsers raise SyntaxError, struct.error, ValueError...
        raise ImageError(f"'{label}' has a corrupt header and cannot be read "
                         f"({type(err).__name__}: {err})") from None

    try:
        width, height = im.size
        _check_dimensions(width, height, label, max_pixels)
        header_size = (width, height)
        if draft_to is not None and im.format in _JPEG_FORMATS:
            try:
                im.draft("RGB", (int(draft_to), int(draft_to)))
            except Exception:
                pass  # draft is an optimisation only; a full decode is still correct
        try:
            with strict_decoding():
                im.load()  # the full decode: truncation and corrupt data surface here
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"'{label}' ({width}×{height}) was refused as a possible "
                             "decompression bomb") from None
        except MemoryError:
            raise ImageError(f"'{label}' ({width}×{height}) needs more memory than is available "
                             "to decode") from None
        except Exception as err:
            raise ImageError(f"'{label}' is truncated or corrupt and cannot be decoded "
                             f"({_reason(err)}); the file may be incomplete — copy or download "
                             "it again") from None

        damage = _damage(fh, im.format)
        if damage:
            raise ImageError(f"'{label}' is damaged: {damage}; copy or download it again")
        decoded = im
        decoded_size = decoded.size
        try:
            rotated = ImageOps.exif_transpose(decoded)
        except Exception:
            # A damaged EXIF block must not make a readable photo unusable: keep it unrotated.
            rotated = decoded.copy()
        if rotated is None:  # pragma: no cover - only with in_place=True
            rotated = decoded
        swapped = rotated.size != decoded_size
        original_size = (header_size[1], header_size[0]) if swapped else header_size
        try:
            rgb = to_rgb(rotated)
        except ImageError:
            raise
        except MemoryError:
            raise ImageError(f"'{label}' needs more memory than is available to convert") from None
        except Exception as err:
            raise ImageError(f"'{label}' has pixel mode {rotated.mode!r} that cannot be "
                             f"converted to RGB ({_reason(err)})") from None
        if rgb is im:  # never hand out the object that still references the file
            rgb = rgb.copy()
        rgb.info.pop("exif", None)  # rotation is applied; do not let savers re-apply it
        decode_scale = rgb.width / float(original_size[0])
        return LoadedImage(image=rgb, original_size=original_size, name=label,
                           decode_scale=decode_scale)
    finally:
        im.close()


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _check_dimensions(width: int, height: int, label: str, max_pixels: int) -> None:
    """Refuse impossible or dangerous sizes using the header only, before any pixel is decoded."""
    if width <= 0 or height <= 0:
        raise ImageError(f"'{label}' has zero width or height ({width}×{height})")
    pixels = width * height
    if pixels > max_pixels:
        raise ImageError(f"'{label}' is {width}×{height} = {pixels / 1e6:.0f} megapixels, above "
                         f"the {max_pixels / 1e6:g} megapixel limit: refused as a possible "
                         "decompression bomb (shrink the image first)")
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        raise ImageError(f"'{label}' has absurd dimensions {width}×{height} (aspect ratio "
                         f"{aspect:.0f}:1, limit {MAX_ASPECT:.0f}:1)")


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB the way a person would expect the image to look.

    Transparency is composited onto white (what browsers and viewers show; black would create
    dark blobs where a PNG is transparent). 16-bit, 32-bit integer and float images are rescaled
    into 0–255 by :func:`_to_uint8` instead of being clipped, which would turn most 16-bit photos
    white.
    """
    mode = im.mode
    if mode == "RGB":
        return im
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB", "1") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_to_uint8(np.asarray(im)), mode="L").convert("RGB")
    return im.convert("RGB")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Map one-channel integer/float pixel data to uint8.

    Data already in 0–255 is kept as is; unsigned 16-bit-range integers are divided by 257 (so
    65535 → 255, preserving what the file means); floats within 0–1 are scaled by 255; anything
    else (negative values, 32-bit ranges, HDR floats) is stretched min–max so the picture stays
    visible. NaN and infinities become 0.
    """
    a = np.asarray(arr, dtype=np.float64)
    a = np.where(np.isfinite(a), a, 0.0)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.uint8)
    lo, hi = float(a.min()), float(a.max())
    is_float = np.issubdtype(np.asarray(arr).dtype, np.floating)
    if is_float and lo >= 0.0 and hi <= 1.0:
        out = a * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        out = a
    elif not is_float and lo >= 0.0 and hi <= 65535.0:
        out = a / 257.0
    elif hi > lo:
        out = (a - lo) * (255.0 / (hi - lo))
    else:
        out = np.zeros_like(a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resize_for_network(img: Image.Image, size: int) -> np.ndarray:
    """The network input: ``(size, size, 3)`` uint8 RGB, bilinear, aspect ratio *not* preserved.

    SSD here is trained on square inputs made by stretching, so detection stretches the same
    way; boxes come back normalized to [0, 1] and map onto the original image by multiplying by
    its width and height, with no letterbox offsets to undo.
    """
    size = int(size)
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if img.mode != "RGB":
        img = to_rgb(img)
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(arr.reshape(size, size, 3))
