"""What a decoded picture's pixels mean, as 8-bit sRGB: the one conversion every reader uses.

Why one module: the Detect page, single files, folder runs, thumbnails and the training decoders
must show the network the same picture. Each step follows what the file declares, never a guess
from its values:

* **Bit depth from the mode or header**: a 16-bit file (PNG ``I;16*``, a TIFF with 16 bits per
  sample) is divided by 257 however dark it is; a near-black 16-bit picture whose values happen to
  be ≤ 255 was shown bright when depth was guessed from the values.
* **Transparency onto white** (what browsers and viewers show), for alpha channels, palette and
  grey/RGB ``tRNS`` entries, and a 16-bit grey ``tRNS`` value alike. A 16-bit RGB PNG's ``tRNS``
  colour is read in 16 bits by the depth its header declares, which Pillow forgets on ``load()``:
  readers open files with ``load_declared`` to keep it.
* **Embedded ICC profiles to sRGB** (Pillow's ImageCms, littlecms), so an Adobe RGB photo or a
  CMYK JPEG looks as it does in a viewer. Files without a profile pay one dictionary lookup; a
  transform is built once per distinct profile, and an sRGB profile (what many phones embed) is
  not applied at all; otherwise the transform costs ~3 ms on a draft-decoded 1920×1080 JPEG
  (480×270) and ~70 ms at full size (docs/PERFORMANCE.md). A profile littlecms refuses leaves
  the picture as it was decoded (no crash).
"""
from __future__ import annotations

import io
from functools import lru_cache
from typing import Optional

import numpy as np
from PIL import Image

try:  # Pillow built without littlecms: pictures decode as before, unconverted
    from PIL import ImageCms
    _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
except Exception:  # noqa: BLE001 - ImportError, or a littlecms that cannot build sRGB
    ImageCms, _SRGB = None, None

_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_TIFF_BITS = 258          # BitsPerSample
_TIFF_FORMAT = 339        # SampleFormat (1 unsigned, 2 signed, 3 float)
_RGB_BITS = "ssd_rgb_bits"    # im.info: bits per RGB sample the file declared (noted by load_declared)


def load_declared(im: Image.Image) -> None:
    """``im.load()``, noting first the bits per sample an RGB PNG declares.

    Why: Pillow reads a 16-bit RGB PNG as 8-bit RGB and, once loaded, keeps no trace of its depth
    (the decoder's raw mode goes with its tiles), while its ``tRNS`` colour stays in 16 bits. A key
    whose channels are all ≤ 255 looks 8-bit but is not: only the header can say."""
    bits = _tile_rgb_bits(im)
    if bits is not None:
        im.info[_RGB_BITS] = bits
    im.load()


def _tile_rgb_bits(im: Image.Image) -> Optional[int]:
    """16 or 8 for an RGB picture not yet loaded, read from its decoder's raw mode; else None."""
    if im.mode != "RGB" or not getattr(im, "tile", None):
        return None
    raw = im.tile[0][3]
    raw = raw[0] if isinstance(raw, tuple) and raw else raw
    return 16 if isinstance(raw, str) and raw.startswith("RGB;16") else 8


def to_rgb(im: Image.Image, like: Optional[Image.Image] = None) -> Image.Image:
    """``im`` as 8-bit sRGB, the way a person's viewer shows it.

    ``like`` is the image as decoded from its file when ``im`` is a rotated copy (a copy keeps the
    pixels but not the file's header: its TIFF tags). An RGB image without a profile or a
    transparent colour is returned as is."""
    like = im if like is None else like
    profile = im.info.get("icc_profile") or like.info.get("icc_profile")
    if im.mode == "RGB" and not profile and "transparency" not in im.info:
        return im
    eight = _eight_bit(im, like)
    if profile:
        eight = _to_srgb(eight, profile)
    if eight.mode == "RGBA":
        white = Image.new("RGBA", eight.size, (255, 255, 255, 255))
        eight = Image.alpha_composite(white, eight)
    return eight if eight.mode == "RGB" else eight.convert("RGB")


def _eight_bit(im: Image.Image, like: Image.Image) -> Image.Image:
    """``im`` in a mode littlecms and compositing understand: RGB, RGBA, L or CMYK (8 bits each)."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(im)
        grey = _to_uint8(arr, declared_bits(like))
        clear = im.info.get("transparency", like.info.get("transparency"))
        if isinstance(clear, int):
            grey[arr == clear] = 255              # a fully transparent pixel on white is white
        return Image.fromarray(grey, mode="L")
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB", "1") and "transparency" in im.info):
        return _with_eight_bit_key(im, like).convert("RGBA")
    if mode in ("RGB", "L", "CMYK"):
        return im
    return im.convert("RGB")


def _with_eight_bit_key(im: Image.Image, like: Image.Image) -> Image.Image:
    """``im`` with its transparent colour in the pixels' 8 bits.

    Pillow reads a 16-bit RGB PNG as 8-bit RGB (each sample's high byte) but keeps its ``tRNS``
    colour in 16 bits, so no pixel matched it and the transparent colour was shown. The depth the
    file declares decides (``load_declared``, or the tiles of a picture not yet loaded); without
    one, a key above 255 can only be 16-bit. A 16-bit key is compared by its high bytes, as the
    pixels were reduced (so a colour within 1/256 of it is taken as transparent too)."""
    key = im.info.get("transparency")
    if im.mode != "RGB" or not isinstance(key, tuple):
        return im
    bits = like.info.get(_RGB_BITS, im.info.get(_RGB_BITS)) or _tile_rgb_bits(like)
    if bits == 8 or (bits is None and max(key) <= 255):
        return im
    im = im.copy()
    im.info["transparency"] = tuple(int(v) >> 8 for v in key)
    return im


def declared_bits(im: Image.Image) -> Optional[int]:
    """Bits per sample the file declares for a one-channel integer picture (None: not declared).

    ``I;16``, ``I;16B``, ``I;16L``: 16 (Pillow's 16-bit PNG/TIFF modes). A TIFF read as ``I``:
    its BitsPerSample tag, when its samples are unsigned."""
    if im.mode.startswith("I;16"):
        return 16
    tags = getattr(im, "tag_v2", None)
    if im.mode == "I" and tags is not None:
        try:
            bits, kind = tags.get(_TIFF_BITS), tags.get(_TIFF_FORMAT, 1)
            bits = max(bits) if isinstance(bits, tuple) else bits
            kind = kind[0] if isinstance(kind, tuple) else kind
            return int(bits) if bits and int(kind) == 1 else None
        except (TypeError, ValueError):
            return None
    return None


def _to_uint8(arr: np.ndarray, bits: Optional[int] = None) -> np.ndarray:
    """Map one-channel integer/float pixel data to uint8.

    A declared depth decides: ``bits`` 16 divides by 257 (65535 → 255), 8 keeps the values. Without
    one (a 32-bit TIFF, an array handed in), data already in 0–255 is kept, unsigned 16-bit-range
    integers are divided by 257, floats within 0–1 scaled by 255, and anything else (negative
    values, 32-bit ranges, HDR floats) stretched min–max so the picture stays visible. NaN and
    infinities become 0.
    """
    a = np.asarray(arr, dtype=np.float64)
    a = np.where(np.isfinite(a), a, 0.0)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.uint8)
    if bits is not None and bits <= 16:
        out = a * (255.0 / (2 ** bits - 1))
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
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


def _to_srgb(im: Image.Image, profile: bytes) -> Image.Image:
    """``im`` converted from its embedded ``profile`` to sRGB; ``im`` itself when that cannot be done."""
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    transform = _transform(bytes(profile), im.mode, out_mode)
    if transform is None:
        return im
    try:
        out = transform.apply(im)
    except Exception:  # noqa: BLE001 - a profile that does not fit the pixels: decode as without one
        return im
    out.info.pop("icc_profile", None)   # sRGB now, like every picture without a profile
    return out


@lru_cache(maxsize=32)
def _transform(profile: bytes, in_mode: str, out_mode: str):
    """The littlecms transform for one profile and mode (built once: ~1 ms each), or None."""
    if ImageCms is None:
        return None
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        if in_mode in ("RGB", "RGBA") and "srgb" in (ImageCms.getProfileDescription(source) or "").lower():
            return None   # already sRGB (what many phones embed): converting would cost ~3 ms for nothing
        return ImageCms.buildTransform(source, _SRGB, in_mode, out_mode)
    except Exception:  # noqa: BLE001 - PyCMSError, OSError: a broken or mismatched profile
        return None
