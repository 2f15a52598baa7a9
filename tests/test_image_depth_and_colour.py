"""What a file's pixels mean, read the same on every path: formats offered, bit depth, 16-bit
transparency, colour profiles, and the dash form of EXIF time stamps.

Every path (a single file, a folder run at draft scale, a PIL image, the training decoders) goes
through the one conversion in ``ssd.data.pixels``; these tests read each picture through all of them.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from icc_fixture import adobe_rgb, broken, cmyk
from ssd.data.images import from_pil, load_image, resize_for_network


def _paths(path: Path, size: int = 32):
    """The RGB picture of ``path`` as each reader gives it (full size, or the network square)."""
    from ssd.camtrap.pipeline import decode_for_network
    from ssd.data.cache import _decode_resized
    from ssd.data.decoding import decode_rgb

    full = np.asarray(load_image(str(path)).image)
    with Image.open(path) as im:
        pil = np.asarray(from_pil(im).image)
    square = {"network": resize_for_network(load_image(str(path), draft_to=size).image, size),
              "folder run": decode_for_network(0, str(path), path.name, size).pixels[0],
              "training cache": _decode_resized(str(path), size)}
    return {"file": full, "PIL image": pil, "training": decode_rgb(str(path))}, square


def _agree(path: Path, expected: np.ndarray, atol: int = 0) -> None:
    full, square = _paths(path)
    for where, got in full.items():
        assert got.shape == expected.shape and np.abs(got.astype(int) - expected).max() <= atol, where
    small = resize_for_network(Image.fromarray(expected), 32)
    for where, got in square.items():
        assert np.abs(got.astype(int) - small).max() <= max(atol, 1), where


# ------------------------------------------------------------------ formats offered

def test_uploads_offer_every_format_a_folder_run_reads() -> None:
    """The Detect page refused .gif uploads while folder runs read GIFs and the error named GIF."""
    from ssd.camtrap.camtrap_dp import MEDIA_TYPES
    from ssd.data import image_formats, images

    assert images.SUPPORTED_EXTENSIONS is image_formats.SUPPORTED_EXTENSIONS
    assert "gif" in images.SUPPORTED_EXTENSIONS
    for ext in images.SUPPORTED_EXTENSIONS:
        assert MEDIA_TYPES["." + ext].startswith("image/")
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(buf, "GIF")
    assert load_image(buf.getvalue(), "still.gif").image.size == (8, 6)


# ------------------------------------------------------------------ 16-bit

def _dark_16bit() -> np.ndarray:
    return (np.arange(48 * 64).reshape(48, 64) % 200).astype(np.uint16)   # all ≤ 200 of 65535


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_a_dark_16_bit_picture_stays_dark(tmp_path: Path, fmt: str) -> None:
    """Values ≤ 255 in a 16-bit file are nearly black, not an 8-bit picture: they were shown bright."""
    path = tmp_path / f"dark.{fmt.lower()}"
    Image.fromarray(_dark_16bit()).save(path, fmt)
    expected = np.repeat(np.rint(_dark_16bit() / 257.0).astype(np.uint8)[..., None], 3, axis=2)
    assert expected.max() <= 1
    _agree(path, expected)


def test_a_16_bit_grey_png_with_a_transparent_value_is_composited_onto_white(tmp_path: Path) -> None:
    """tRNS in a 16-bit grey PNG names one value as transparent; it was shown as that grey."""
    grey8 = (np.arange(48 * 64).reshape(48, 64) % 250).astype(np.uint8)
    deep = tmp_path / "deep.png"
    Image.fromarray(grey8.astype(np.uint16) * 257).save(deep, transparency=7 * 257)
    expected = np.repeat(np.where(grey8 == 7, 255, grey8).astype(np.uint8)[..., None], 3, axis=2)
    _agree(deep, expected)
    shallow = tmp_path / "shallow.png"                           # the 8-bit file says the same
    Image.fromarray(grey8).save(shallow, transparency=7)
    assert np.array_equal(np.asarray(load_image(str(shallow)).image), expected)


def _rgb_png(path: Path, depth: int, px: np.ndarray, key: tuple) -> Path:
    """An RGB PNG written chunk by chunk (Pillow writes no 16-bit RGB): ``px`` rows, ``key`` its tRNS colour."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    px = px.astype(">u2" if depth == 16 else "u1")
    raw = b"".join(b"\0" + row.tobytes() for row in px)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", px.shape[1], px.shape[0], depth, 2, 0, 0, 0))
                     + chunk(b"tRNS", struct.pack(">HHH", *key))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_a_16_bit_rgb_png_with_a_transparent_colour_is_composited_onto_white(tmp_path: Path) -> None:
    """Pillow reduces a 16-bit RGB PNG's pixels to 8 bits but not its tRNS colour: nothing matched."""
    px = np.zeros((2, 4, 3), dtype=np.uint16)
    px[0], px[1] = (100 * 257, 50 * 257, 20 * 257), (7 * 257, 9 * 257, 11 * 257)
    path = _rgb_png(tmp_path / "deep-rgb.png", 16, px, (7 * 257, 9 * 257, 11 * 257))
    expected = np.zeros((2, 4, 3), dtype=np.uint8)
    expected[0], expected[1] = (100, 50, 20), (255, 255, 255)
    full, _ = _paths(path, 4)
    for where, got in full.items():
        assert np.array_equal(got, expected), where
    shallow = tmp_path / "rgb.png"                          # an 8-bit RGB tRNS colour: the same
    Image.fromarray(np.asarray(Image.open(path).convert("RGB"))).save(shallow, transparency=(7, 9, 11))
    assert np.array_equal(np.asarray(load_image(str(shallow)).image), expected)


def test_a_16_bit_rgb_pngs_dark_transparent_colour_is_read_in_16_bits(tmp_path: Path) -> None:
    """A 16-bit file's tRNS colour is in 16 bits even when every channel is ≤ 255: (0, 0, 100) is a
    near-black, whose 8-bit pixels are (0, 0, 0). It was taken as 8-bit, so the blue (0, 0, 100)
    pixels turned white and the transparent ones stayed black."""
    px = np.zeros((2, 4, 3), dtype=np.uint16)
    px[0], px[1] = (0, 0, 100 * 257), (0, 0, 100)          # row 0 blue, row 1 the transparent colour
    path = _rgb_png(tmp_path / "dark-key.png", 16, px, (0, 0, 100))
    expected = np.zeros((2, 4, 3), dtype=np.uint8)
    expected[0], expected[1] = (0, 0, 100), (255, 255, 255)
    _agree(path, expected)                                  # every reader, full size and network square
    shallow = _rgb_png(tmp_path / "eight.png", 8, np.array([[(0, 0, 100), (0, 0, 0)]]), (0, 0, 100))
    assert np.asarray(load_image(str(shallow)).image).tolist() == [[[255, 255, 255], [0, 0, 0]]]   # 8-bit: as declared


# ------------------------------------------------------------------ colour profiles

def _with_profile(tmp_path: Path, img: Image.Image, profile: bytes, name: str) -> Path:
    path = tmp_path / name
    img.save(path, "JPEG", quality=95, icc_profile=profile)
    return path


def _srgb_of(path: Path, profile: bytes) -> np.ndarray:
    from PIL import ImageCms

    with Image.open(path) as im:
        im.load()
        src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return np.asarray(ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"))


@pytest.mark.parametrize("mode, profile", [("RGB", adobe_rgb), ("CMYK", cmyk)], ids=["Adobe RGB", "CMYK"])
def test_a_photo_with_a_profile_is_shown_in_srgb(tmp_path: Path, mode: str, profile) -> None:
    """An Adobe RGB photo, a CMYK JPEG with its printer profile: shown as their profile says."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (48, 64, len(mode)), dtype=np.uint8), mode)
    path = _with_profile(tmp_path, img, profile(), "profiled.jpg")
    expected = _srgb_of(path, profile())
    with Image.open(path) as im:
        assert im.mode == mode
        assert np.abs(expected.astype(int) - np.asarray(im.convert("RGB"))).max() > 10   # the profile matters
    _agree(path, expected, atol=1)
    assert "icc_profile" not in load_image(str(path)).image.info   # converted: savers must not re-tag it


def test_a_broken_profile_is_ignored_as_before(tmp_path: Path) -> None:
    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8), "RGB")
    path = _with_profile(tmp_path, img, broken(), "odd.jpg")
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGB"))
    _agree(path, expected)


# ------------------------------------------------------------------ time stamps

@pytest.mark.parametrize("written", ["2024-05-01 10:00:00", "2024-05-01T10:00:00", "2024:05:01 10:00:00"])
def test_the_dash_form_of_a_date_time_is_read_where_the_colon_form_is(tmp_path: Path, written: str) -> None:
    """Some camera-trap makers and exiftool edits write ``2024-05-01 10:00:00``: such photos had no time."""
    from ssd.camtrap.episodes import parse_time
    from ssd.data.exif import exif_datetime

    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = written
    path = tmp_path / "IMG_0001.JPG"
    Image.new("RGB", (32, 24)).save(path, "JPEG", exif=exif.tobytes())
    assert load_image(str(path)).datetime == "2024:05:01 10:00:00"      # MegaDetector's form, always
    assert exif_datetime(str(path)) == "2024:05:01 10:00:00"
    assert parse_time(written) == parse_time("2024:05:01 10:00:00") is not None
