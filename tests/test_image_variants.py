"""The same photo read the same way on every path, whatever its file looks like.

Files that are whole but not plain (a phone's Motion Photo with its clip after the JPEG, a PNG
padded after its end chunk, an odd-sized rotated JPEG decoded at draft scale, a PIL image handed
to the library) must give the picture and the size a person sees, as the path-based loader does.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssd.base.errors import ImageError
from ssd.data.images import load_image


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------ whole files with data after their end

def test_a_motion_photo_with_its_clip_after_the_jpeg_is_read_as_its_photo() -> None:
    """Pixel and Galaxy phones append the clip (MP4 bytes) after the JPEG's end; MPO cameras a second
    JPEG with its own restart interval. Both held restart-marker bytes after the end and were refused
    as "damaged" on every path (Detect page, single file, folder run)."""
    photo = _jpeg(_noise(96, 64))
    clip = b"\x00\x00\x00\x18ftypmp42" + b"\xff\xd3\x12\x00\xff\xd5" + bytes(range(256)) * 4
    preview = _jpeg(_noise(32, 24, seed=1), restart_marker_blocks=1)
    assert b"\xff\xdd" in preview and b"\xff\xd0" in preview
    alone = load_image(photo, "photo.jpg")
    for tail in (clip, preview):
        got = load_image(photo + tail, "PXL_0001.MP.jpg", draft_to=32)
        assert got.original_size == (96, 64)
        assert _same_pixels(load_image(photo + tail, "PXL_0001.MP.jpg").image, alone.image)


def test_a_restart_marker_inside_the_scan_is_still_damage() -> None:
    photo = _jpeg(_noise(96, 64))
    sos = photo.find(b"\xff\xda")
    mid = (sos + len(photo)) // 2
    with pytest.raises(ImageError, match="damaged"):
        load_image(photo[:mid] + b"\xff\xd3" + photo[mid + 2:] + b"trailer", "x.jpg")


def test_a_png_with_bytes_after_its_end_chunk_is_read() -> None:
    """Some tools pad a PNG after IEND (block-aligned copies, appended metadata): the picture is whole."""
    buf = io.BytesIO()
    _noise(40, 30).save(buf, "PNG")
    png = buf.getvalue()
    assert _same_pixels(load_image(png + b"\x00" * 37, "padded.png").image, load_image(png, "p.png").image)
    with pytest.raises(ImageError, match="IEND"):
        load_image(png[:-12] + b"\x00" * 37, "cut.png")


# ------------------------------------------------------------------ rotation at draft scale

@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_the_rotated_size_is_right_when_the_draft_decode_is_square(orientation: int) -> None:
    """1002×1001 decodes at 1/8 as 126×126: the rotation could not be seen from the sizes, so the
    folder run recorded 1002×1001 for a picture shown 1001×1002 (boxes scaled by the wrong sides)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _jpeg(_noise(1002, 1001), exif=exif.tobytes())
    full = load_image(data, "tall.jpg")
    draft = load_image(data, "tall.jpg", draft_to=100)
    assert draft.image.size == (126, 126)
    assert full.original_size == draft.original_size == (1001, 1002)


# ------------------------------------------------------------------ a PIL image handed to the library

def _rgba_with_transparency() -> Image.Image:
    img = _noise(64, 48).convert("RGBA")
    alpha = np.full((48, 64), 255, dtype=np.uint8)
    alpha[:, :32] = 0
    img.putalpha(Image.fromarray(alpha, "L"))
    return img


@pytest.fixture(scope="module")
def shipped_detector(shipped_models_root):
    from ssd.inference.engines import load_detector

    return load_detector(f"{shipped_models_root}/tiny-pikachu", engine="mxnet")


def test_a_pil_image_is_seen_as_its_file_is(shipped_detector, tmp_path: Path) -> None:
    """``detect(Image.open(p))`` made transparency black and clipped 16-bit to white where
    ``detect(p)`` composites onto white and rescales: the same photo, other detections."""
    from ssd.viz.heads import network_image

    rgba = tmp_path / "cut-out.png"
    _rgba_with_transparency().save(rgba)
    deep = tmp_path / "deep.png"
    Image.fromarray((np.asarray(_noise(64, 48).convert("L"), dtype=np.uint16) * 257)).save(deep)
    for path in (rgba, deep):
        with Image.open(path) as im:
            assert np.array_equal(network_image(shipped_detector, im), network_image(shipped_detector, str(path)))
            from_pil = shipped_detector.detect(im, floor=0.0)
        from_path = shipped_detector.detect(str(path), floor=0.0)
        assert np.allclose(from_pil.scores, from_path.scores, atol=1e-6)
        assert from_pil.image_size == from_path.image_size


def test_a_pil_image_with_a_damaged_exif_block_is_still_detected(shipped_detector) -> None:
    img = _noise(64, 48)
    img.info["exif"] = b"Exif\x00\x00MM\x00*garbage"
    raw = shipped_detector.detect(img, floor=0.0)
    assert raw.image_size == (64, 48)


# ------------------------------------------------------------------ when it was taken

@pytest.mark.parametrize("original", ["0000:00:00 00:00:00", "    :  :     :  :  ", "garbage"])
def test_a_garbage_date_time_original_falls_back_to_date_time(tmp_path: Path, original: str) -> None:
    """Cameras that never had their clock set write zeros or blanks in DateTimeOriginal while DateTime
    holds the time: the photo lost its time stamp (episodes, Camtrap DP) though the file had one."""
    from ssd.data.exif import exif_datetime

    exif = Image.Exif()
    exif[0x0132] = "2024:05:01 06:30:00"                    # DateTime
    exif.get_ifd(0x8769)[36867] = original                  # DateTimeOriginal
    path = tmp_path / "IMG_0001.JPG"
    path.write_bytes(_jpeg(_noise(32, 24), exif=exif.tobytes()))
    assert load_image(str(path)).datetime == "2024:05:01 06:30:00"
    assert exif_datetime(str(path)) == "2024:05:01 06:30:00"
    exif[0x0132] = "garbage too"
    path.write_bytes(_jpeg(_noise(32, 24), exif=exif.tobytes()))
    assert load_image(str(path)).datetime is None
