"""ssd.data.images: every kind of bad file ends as one clear ImageError; every good one as RGB."""
from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from ssd.data import images
from ssd.base.errors import ImageError
from ssd.data.images import LoadedImage, load_image, resize_for_network


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG of a few dozen bytes whose IHDR claims ``w``×``h`` (the pixel data is a stub)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 8))
            + chunk(b"IEND", b""))


def _gradient(w: int, h: int) -> Image.Image:
    """A non-flat RGB picture so JPEG has real data to compress (truncation needs real scans)."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, size=(h, w, 3))
    arr = np.clip(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2) + noise, 0, 255)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def _save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


# ------------------------------------------------------------------ good files, every mode

def test_jpeg_exif_orientation_6_is_rotated(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = _save(_gradient(40, 20), tmp_path / "portrait.jpg", exif=exif.tobytes())
    out = load_image(path)
    assert isinstance(out, LoadedImage)
    assert out.image.mode == "RGB"
    assert out.image.size == (20, 40)
    assert out.original_size == (20, 40)
    assert out.decode_scale == 1.0
    assert out.name == str(path)


@pytest.mark.parametrize("mode,fmt,ext", [
    ("RGBA", "PNG", "png"), ("P", "PNG", "png"), ("L", "PNG", "png"), ("LA", "PNG", "png"),
    ("1", "PNG", "png"), ("CMYK", "JPEG", "jpg"), ("RGB", "TIFF", "tif"), ("L", "TIFF", "tiff"),
    ("RGB", "WEBP", "webp"), ("RGBA", "WEBP", "webp"), ("RGB", "BMP", "bmp"), ("P", "GIF", "gif"),
    ("F", "TIFF", "tif"), ("I", "TIFF", "tif"),
])
def test_every_mode_loads_as_rgb(tmp_path: Path, mode: str, fmt: str, ext: str) -> None:
    base = _gradient(32, 24)
    img = base.convert(mode) if mode not in ("F", "I") else base.convert("L").convert(mode)
    path = _save(img, tmp_path / f"x_{mode}.{ext}", format=fmt)
    out = load_image(path)
    assert out.image.mode == "RGB"
    assert out.image.size == (32, 24) == out.original_size
    arr = np.asarray(out.image)
    assert arr.dtype == np.uint8 and arr.shape == (24, 32, 3)
    assert arr.std() > 5  # not a flat (clipped or blank) image


def test_rgba_transparent_becomes_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    out = load_image(_save(img, tmp_path / "t.png"))
    arr = np.asarray(out.image)
    assert tuple(arr[5, 5]) == (255, 255, 255)
    assert tuple(arr[0, 0]) == (255, 0, 0)


def test_palette_with_transparency_composites_onto_white(tmp_path: Path) -> None:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0
    out = load_image(_save(img, tmp_path / "p.png", transparency=0))
    arr = np.asarray(out.image)
    assert tuple(arr[0, 0]) == (255, 255, 255)
    assert tuple(arr[1, 1]) == (0, 255, 0)


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path: Path) -> None:
    arr16 = np.zeros((4, 4), dtype=np.uint16)
    arr16[0, 0] = 65535
    arr16[1, 1] = 32896  # 128 * 257
    arr16[2, 2] = 1000   # would be white if clipped to 255
    img = Image.fromarray(arr16)
    assert img.mode.startswith("I;16")
    out = load_image(_save(img, tmp_path / "deep.png"))
    arr = np.asarray(out.image)
    assert tuple(arr[0, 0]) == (255, 255, 255)
    assert tuple(arr[1, 1]) == (128, 128, 128)
    assert arr[2, 2, 0] == 4
    assert arr[3, 3, 0] == 0


def test_float_image_in_unit_range_is_scaled() -> None:
    arr = np.array([[0.0, 0.5], [1.0, np.nan]], dtype=np.float32)
    rgb = images.to_rgb(Image.fromarray(arr, mode="F"))
    got = np.asarray(rgb)[..., 0]
    assert got.tolist() == [[0, 128], [255, 0]]


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = load_image(path)
    r, g, b = np.asarray(out.image)[6, 6]
    assert r > 200 and b < 50


# ------------------------------------------------------------------ sources

def test_load_from_bytes_and_file_like(tmp_path: Path) -> None:
    buf = io.BytesIO()
    _gradient(30, 20).save(buf, format="PNG")
    data = buf.getvalue()

    from_bytes = load_image(data, name="upload.png")
    assert from_bytes.name == "upload.png" and from_bytes.original_size == (30, 20)

    class Upload(io.BytesIO):  # shaped like Streamlit's UploadedFile
        name = "camera.png"

    up = Upload(data)
    up.read()  # a previous rerun already consumed it: load_image must rewind
    from_file = load_image(up)
    assert from_file.name == "camera.png"
    assert np.array_equal(np.asarray(from_file.image), np.asarray(from_bytes.image))

    assert load_image(bytearray(data)).name == "<image data>"
    (tmp_path / "a.png").write_bytes(data)
    assert load_image(str(tmp_path / "a.png")).image.size == (30, 20)
    assert load_image(tmp_path / "a.png").image.size == (30, 20)  # pathlib.Path too


def test_wrong_argument_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        load_image(12345)  # type: ignore[arg-type]


# ------------------------------------------------------------------ draft decoding

def test_draft_decoding_of_full_hd_jpeg(tmp_path: Path) -> None:
    path = _save(_gradient(1920, 1080), tmp_path / "cam.jpg", quality=90)
    full = load_image(path)
    assert full.image.size == (1920, 1080) and full.decode_scale == 1.0

    small = load_image(path, draft_to=256)
    assert small.original_size == (1920, 1080)
    assert small.image.size == (480, 270)  # 1/4 scale: smallest DCT scale with both sides >= 256
    assert small.decode_scale == pytest.approx(0.25)
    assert min(small.image.size) >= 256

    # Drafting never goes below the request: 300 needs the 1/2 scale on the 1080 side.
    assert load_image(path, draft_to=300).image.size == (960, 540)
    # Non-JPEG formats ignore the hint and decode fully.
    png = _save(_gradient(640, 360), tmp_path / "cam.png")
    assert load_image(png, draft_to=64).image.size == (640, 360)


def test_draft_with_exif_rotation_reports_rotated_original(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(_gradient(1920, 1080), tmp_path / "rot.jpg", exif=exif.tobytes())
    out = load_image(path, draft_to=256)
    assert out.original_size == (1080, 1920)
    assert out.image.size == (270, 480)
    assert out.decode_scale == pytest.approx(0.25)


def test_draft_to_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_image(_save(_gradient(8, 8), tmp_path / "a.jpg"), draft_to=0)


# ------------------------------------------------------------------ bad files

def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg' is empty \(0 bytes\)"):
        load_image(path)
    with pytest.raises(ImageError, match="is empty"):
        load_image(b"", name="up.png")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("these are my field notes, not a photo\n" * 3)
    with pytest.raises(ImageError, match=r"notes\.jpg' is not an image PIL can read \(looks like a text file\)"):
        load_image(path)


@pytest.mark.parametrize("content,expected", [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF document"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 30, "ZIP archive"),
    (b"<!DOCTYPE html><html><body>403 Forbidden</body></html>", "HTML web page"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
    (bytes(range(256)) * 2, "unknown binary data, despite its '.png' extension"),
])
def test_not_an_image_says_what_it_looks_like(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        load_image(path)
    msg = str(info.value)
    assert "photo.png" in msg and "is not an image PIL can read" in msg and expected in msg


def test_truncated_jpeg(tmp_path: Path) -> None:
    good = _save(_gradient(400, 300), tmp_path / "good.jpg", quality=95)
    data = good.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg' is truncated or corrupt"):
        load_image(cut)
    with pytest.raises(ImageError, match="truncated"):
        load_image(data[: len(data) // 2], name="cut-upload.jpg")


def test_truncation_caught_even_when_gluoncv_set_load_truncated(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """GluonCV flips LOAD_TRUNCATED_IMAGES to True on import; we must still refuse, and restore it."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _save(_gradient(400, 300), tmp_path / "g.jpg").read_bytes()
    with pytest.raises(ImageError, match="truncated"):
        load_image(data[: len(data) // 2], name="cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    load_image(data, name="ok.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png(tmp_path: Path) -> None:
    data = _save(_gradient(200, 200), tmp_path / "g.png").read_bytes()
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: len(data) * 2 // 3], name="cut.png")


def test_decompression_bomb_beyond_pillow_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(30000, 30000))
    assert path.stat().st_size < 200
    with pytest.raises(ImageError, match=r"bomb\.png.*30000×30000.*decompression bomb"):
        load_image(path)


def test_decompression_bomb_over_our_limit_checked_before_decoding() -> None:
    # 110 MP: above MAX_PIXELS but under Pillow's hard error, so our header check must catch it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageError, match=r"11000×10000 = 110 megapixels.*decompression bomb"):
            load_image(_png_header_only(11000, 10000), name="big.png")


def test_pillow_bomb_warning_turned_into_error_is_still_image_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageError, match="decompression bomb"):
            load_image(_png_header_only(11000, 10000), name="big.png")


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    path = _save(_gradient(100, 100), tmp_path / "a.png")
    with pytest.raises(ImageError, match="megapixel limit"):
        load_image(path, max_pixels=5000)


def test_zero_size_header() -> None:
    with pytest.raises(ImageError, match=r"zero\.png' has zero width or height \(0×10\)"):
        load_image(_png_header_only(0, 10), name="zero.png")


def test_absurd_aspect_ratio(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (1, 5000)), tmp_path / "strip.png")
    with pytest.raises(ImageError, match=r"strip\.png' has absurd dimensions 1×5000"):
        load_image(path)


def test_file_larger_than_max_bytes(tmp_path: Path) -> None:
    path = _save(_gradient(64, 64), tmp_path / "a.png")
    with pytest.raises(ImageError, match=r"a\.png' is .*larger than"):
        load_image(path, max_bytes=100)
    with pytest.raises(ImageError, match="larger than"):
        load_image(io.BytesIO(path.read_bytes()), name="up.png", max_bytes=100)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_corrupt_jpeg_body_and_random_garbage_never_escape(tmp_path: Path) -> None:
    data = bytearray(_save(_gradient(120, 90), tmp_path / "g.jpg").read_bytes())
    rng = np.random.default_rng(1)
    for trial in range(30):
        bad = bytearray(data)
        for pos in rng.integers(2, len(bad), size=12):
            bad[pos] = int(rng.integers(0, 256))
        cut = int(rng.integers(3, len(bad)))
        for sample in (bytes(bad), bytes(bad[:cut])):
            try:
                out = load_image(sample, name=f"fuzz{trial}.jpg")
            except ImageError as err:
                assert f"fuzz{trial}.jpg" in str(err)
            else:
                assert out.image.mode == "RGB"


# ------------------------------------------------------------------ network input

def test_resize_for_network() -> None:
    img = _gradient(320, 200)
    arr = resize_for_network(img, 256)
    assert arr.shape == (256, 256, 3) and arr.dtype == np.uint8 and arr.flags["C_CONTIGUOUS"]
    gray = resize_for_network(img.convert("L"), 64)
    assert gray.shape == (64, 64, 3)
    with pytest.raises(ValueError):
        resize_for_network(img, 0)


def test_supported_extensions() -> None:
    assert images.SUPPORTED_EXTENSIONS == ("jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "gif",
                                          "heic", "heif", "hif", "avif")
    assert images.MAX_PIXELS == 100_000_000
