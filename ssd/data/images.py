"""Safe image loading for detection: one entry point, one error type, any file a person drops in.

Detection input comes from people (uploads in the app, paths on the command line), so every way a
file can be wrong must end as one :class:`~ssd.base.errors.ImageError` whose message names the file and
says what is wrong: empty, not an image at all (and what it looks like instead), truncated,
a decompression bomb, absurd dimensions, or simply too big. Nothing else may escape for bad input.

Why each step is here:

* **The bytes are read safely** (``ssd.data.image_source``): only regular files, bounded reads.
* **Only the formats we need** (JPEG/MPO, PNG, BMP, WebP, TIFF, GIF) are offered to Pillow's
  identifier (``ssd.data.image_formats``), so exotic decoders (EPS runs Ghostscript, for one) are
  never reached from an upload.
* **Size limits are checked from the header, before decoding**: Pillow's ``Image.open`` only parses
  the header, so a 30000×30000 PNG of a few hundred bytes is refused without allocating 2.7 GB.
* **A full decode (``load()``) happens inside the function**, so truncation is found here and not
  later inside the network code. GluonCV sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` globally
  when it is imported (``gluoncv/data/mhp.py``), which would make Pillow silently pad a cut-off
  JPEG with grey. We therefore decode in strict mode for the duration of our own ``load()`` calls
  (see :func:`ssd.data.decoding.strict_decoding`) and restore whatever the process had afterwards.
* **EXIF orientation is applied** because phones store portrait photos as rotated landscape
  pixels plus an orientation tag; boxes must be drawn on the image the person sees.
* **Every pixel mode becomes 8-bit sRGB** (``ssd.data.pixels``, shared with the training
  decoders): the network was trained on RGB uint8; alpha is composited onto white (what a viewer
  shows), 16-bit data is rescaled by its declared depth, embedded colour profiles are applied.
* **JPEG draft decoding** (``draft_to``) lets libjpeg downscale by 1/2, 1/4 or 1/8 during the DCT,
  which turns a 1920×1080 camera-trap photo into a ~10 ms decode when the network only wants 256².
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import IO, Optional, Tuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ssd.base.errors import ImageError
from ssd.data.decoding import EXIF_ORIENTATION, SIDE_SWAPPING, strict_decoding
from ssd.data.exif import datetime_of
from ssd.data.jpeg_metadata import capped
from ssd.data.image_formats import (FORMATS_TEXT, JPEG_FORMATS, available_formats, damage, header_size,
                                    looks_like)
from ssd.data.image_formats import SUPPORTED_EXTENSIONS  # noqa: F401 - pages and runs import it from here
from ssd.data.image_source import Source, display_name, open_source
from ssd.data.pixels import load_declared, to_rgb

#: Largest image (in pixels, after the header is read) that we agree to decode: 100 megapixels.
#: A 100 MP RGB image already needs 300 MB once decoded; anything larger from an upload is far
#: more likely a decompression bomb than a photo. Pillow's own (global, 89 MP warning / 179 MP
#: error) limit is not used as the policy because other code in the process may change it.
MAX_PIXELS: int = 100_000_000

# Pillow warns (on stderr, with its own source line) for every image between its 89 MP mark and
# twice that, before our own check refuses it or lets a 90 MP panorama through: a second, raw
# message beside ours. Silenced for that category only (a process-wide filter: ``catch_warnings``
# is not thread-safe, and decoding runs in threads); Pillow's 2x limit still raises.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# Likewise Pillow's "Corrupt EXIF data…" / "Possibly corrupt EXIF …" (camera firmware writes such
# tags): the photo is read, its EXIF time is simply absent; one raw line per photo was printed.
warnings.filterwarnings("ignore", message=r"(Possibly c|C)orrupt EXIF", category=UserWarning)

#: Largest file (in bytes) that we agree to read: 200 MB. Uploads and files are read whole.
MAX_BYTES: int = 200 * 1024 * 1024

#: Longest side divided by shortest side above which an image is refused (a 1×5000 "image" is a
#: corrupt header or a strip, not something a detector can say anything about).
MAX_ASPECT: float = 50.0




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
    datetime: Optional[str] = None      # EXIF DateTimeOriginal, read from the same open (``ssd.data.exif``)


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
    label = display_name(source, name)
    fh, head = open_source(source, label, max_bytes)
    with fh:
        return _decode(fh, head, label, draft_to, max_pixels)


def from_pil(im: Image.Image, name: Optional[str] = None) -> LoadedImage:
    """A PIL image a caller opened, made what :func:`load_image` makes of its file.

    Why: ``detect(Image.open(p))`` must see what ``detect(p)`` sees; a bare ``convert("RGB")``
    turned transparency black and clipped 16-bit pictures to white. The caller's image is not
    changed (rotation and conversion work on copies)."""
    label = name or getattr(im, "filename", "") or "image"
    _load_strictly(im, label, im.width, im.height)
    rgb, original_size = _upright_rgb(im, label, im.size)
    return LoadedImage(image=rgb, original_size=original_size, name=label, datetime=datetime_of(im))


def _decode(fh: IO[bytes], head: bytes, label: str, draft_to: Optional[int],
            max_pixels: int) -> LoadedImage:
    """Header checks, then the full strict decode, then rotation and RGB: one ``LoadedImage``.

    A JPEG whose metadata exceeds ``jpeg_metadata.MAX_METADATA_BYTES`` is decoded without the excess."""
    if head.startswith(b"\xff\xd8"):
        fh, _ = capped(fh)
    im = _open_header(fh, head, label)
    try:
        width, height = im.size
        _check_dimensions(width, height, label, max_pixels)
        if draft_to is not None and im.format in JPEG_FORMATS:
            try:
                im.draft("RGB", (int(draft_to), int(draft_to)))
            except Exception:
                pass  # draft is an optimisation only; a full decode is still correct
        _load_strictly(im, label, width, height)
        harm = damage(fh, im.format)
        if harm:
            raise ImageError(f"'{label}' is damaged: {harm}; copy or download it again")
        when = datetime_of(im)
        rgb, original_size = _upright_rgb(im, label, (width, height))
        decode_scale = rgb.width / float(original_size[0])
        return LoadedImage(image=rgb, original_size=original_size, name=label,
                           decode_scale=decode_scale, datetime=when)
    finally:
        im.close()


def _open_header(fh: IO[bytes], head: bytes, label: str) -> Image.Image:
    """``Image.open`` (the header only) with every refusal worded for a person."""
    try:
        return Image.open(fh, formats=available_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own ceiling (its global MAX_IMAGE_PIXELS, x2 for the error) fired first.
        size = header_size(head)
        dims = f" ({size[0]}×{size[1]} pixels)" if size else ""
        raise ImageError(f"'{label}' declares a huge image{dims}: refused as a possible "
                         "decompression bomb") from None
    except UnidentifiedImageError:
        size = header_size(head)
        if size is not None and (size[0] == 0 or size[1] == 0):
            raise ImageError(f"'{label}' has zero width or height ({size[0]}×{size[1]})") from None
        raise ImageError(f"'{label}' is not an image PIL can read (looks like "
                         f"{looks_like(head, label)}); use {FORMATS_TEXT}") from None
    except MemoryError:
        raise ImageError(f"'{label}' needs more memory than is available to open") from None
    except Exception as err:  # header parsers raise SyntaxError, struct.error, ValueError...
        raise ImageError(f"'{label}' has a corrupt header and cannot be read "
                         f"({type(err).__name__}: {err})") from None


def _load_strictly(im: Image.Image, label: str, width: int, height: int) -> None:
    """The full decode: truncation and corrupt data surface here, not later in the network code."""
    try:
        with strict_decoding():
            load_declared(im)
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


def _upright_rgb(decoded: Image.Image, label: str,
                 full_size: Tuple[int, int]) -> Tuple[Image.Image, Tuple[int, int]]:
    """The EXIF-rotated 8-bit RGB picture and its full-resolution ``(width, height)`` after rotation."""
    try:
        # Whether the sides swap is read from the tag, not from the sizes: a draft decode can be
        # square (1002×1001 at 1/8 is 126×126) where the full picture is not.
        swapped = decoded.getexif().get(EXIF_ORIENTATION, 1) in SIDE_SWAPPING
        rotated = ImageOps.exif_transpose(decoded)
    except Exception:
        # A damaged EXIF block must not make a readable photo unusable: keep it unrotated.
        swapped, rotated = False, decoded.copy()
    if rotated is None:  # pragma: no cover - only with in_place=True
        rotated = decoded
    original_size = (full_size[1], full_size[0]) if swapped else full_size
    try:
        rgb = to_rgb(rotated, like=decoded)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(f"'{label}' needs more memory than is available to convert") from None
    except Exception as err:
        raise ImageError(f"'{label}' has pixel mode {rotated.mode!r} that cannot be "
                         f"converted to RGB ({_reason(err)})") from None
    if rgb is decoded:  # never hand out the object that still references the file
        rgb = rgb.copy()
    rgb.info.pop("exif", None)  # rotation is applied; do not let savers re-apply it
    return rgb, original_size


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
