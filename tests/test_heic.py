"""Phone and newer-camera photos: HEIC/HEIF (through pi-heif) and AVIF (Pillow's own) open like a JPEG.

tests/data/pikachu*.heic are made by scripts/make_heic_fixtures.py (pi-heif cannot write HEIC)."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssd.base.errors import ImageError
from ssd.camtrap.camtrap_dp import media_type
from ssd.camtrap.folders import list_inputs
from ssd.data import image_formats
from ssd.data.cct_labels import read_header
from ssd.data.decoding import decode_rgb
from ssd.data.images import SUPPORTED_EXTENSIONS, load_image
from ssd.data.synthetic import render_example

DATA = Path(__file__).parent / "data"
HEIC = DATA / "pikachu.heic"
ROTATED = DATA / "pikachu_rotated.heic"


def _pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im, dtype=np.float32)


def test_heic_opens_from_a_path_and_from_upload_bytes() -> None:
    for source in (HEIC, HEIC.read_bytes()):
        loaded = load_image(source, name="IMG_0001.HEIC")
        assert loaded.image.mode == "RGB" and loaded.original_size == (224, 160)
        assert loaded.datetime == "2024:05:17 06:42:10"       # the phone's EXIF time is read too
    # the picture, not grey: close to the PNG it was encoded from
    img, _ = render_example(seed=9, index=0, split="val")
    source = _pixels(Image.fromarray(img).resize((224, 160)))
    assert np.abs(_pixels(load_image(HEIC).image) - source).mean() < 10


def test_phone_rotation_is_applied_once() -> None:
    """Stored on its side with irot + EXIF orientation 6: shown upright, as in the phone's gallery."""
    upright, turned = load_image(HEIC), load_image(ROTATED)
    assert turned.original_size == upright.original_size == (224, 160)
    assert np.abs(_pixels(turned.image) - _pixels(upright.image)).mean() < 10
    flipped = _pixels(upright.image.transpose(Image.Transpose.ROTATE_180))
    assert np.abs(_pixels(turned.image) - flipped).mean() > 20    # not turned the wrong way
    assert decode_rgb(str(ROTATED)).shape == (160, 224, 3)         # the training decoder agrees
    assert read_header(str(ROTATED), verify=True) == (224, 160)    # and dataset checks


def test_avif_opens(tmp_path: Path) -> None:
    img, _ = render_example(seed=9, index=1, split="val")
    path = tmp_path / "cam.avif"
    Image.fromarray(img).save(path, quality=90)
    loaded = load_image(path)
    assert loaded.original_size == (256, 256)
    assert np.abs(_pixels(loaded.image) - img.astype(np.float32)).mean() < 10


def test_size_limits_apply_to_heic() -> None:
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(HEIC, max_pixels=10_000)


def test_broken_heic_says_heic_and_what_to_do() -> None:
    cut = HEIC.read_bytes()[:400]
    with pytest.raises(ImageError) as info:
        load_image(cut, name="IMG_0002.HEIC")
    assert "HEIC" in str(info.value) and "convert it to JPEG" in str(info.value)


def test_without_the_plugin_heic_gets_the_convert_message(monkeypatch: pytest.MonkeyPatch) -> None:
    image_formats.register_plugins()
    monkeypatch.delitem(Image.OPEN, "HEIF")      # as if pi-heif were not installed
    with pytest.raises(ImageError, match=r"HEIC/HEIF photo \(iPhone format\); convert it to JPEG"):
        load_image(HEIC)


def test_extensions_and_folder_walk(tmp_path: Path) -> None:
    for ext in ("heic", "heif", "hif", "avif"):
        assert ext in SUPPORTED_EXTENSIONS
    shutil.copy(HEIC, tmp_path / "IMG_0001.HEIC")
    shutil.copy(HEIC, tmp_path / "b.heif")
    Image.new("RGB", (32, 32)).save(tmp_path / "c.avif")
    assert sorted(list_inputs([str(tmp_path)]).names) == ["IMG_0001.HEIC", "b.heif", "c.avif"]
    assert media_type("a/IMG_1.HEIC") == "image/heic" and media_type("x.avif") == "image/avif"


def test_detections_on_heic_equal_those_on_its_decoded_pixels(tiny_model_dir) -> None:
    from ssd.inference.detector import Detector

    det = Detector.load(tiny_model_dir)
    decoded = load_image(ROTATED).image
    png = io.BytesIO()
    decoded.save(png, format="PNG")
    a = det.detect(str(ROTATED), floor=0.0)
    b = det.detect(png.getvalue(), floor=0.0)
    assert len(a.scores) > 0
    np.testing.assert_array_equal(a.class_ids, b.class_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.boxes, b.boxes, rtol=0, atol=1e-4)


def test_detect_page_takes_a_heic_upload(app_env) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(os.path.join(os.path.dirname(DATA), os.pardir, "app.py"), default_timeout=120).run()
    at = at.switch_page("app_pages/detect.py").run()
    at.session_state["detect_tab"] = "Table"
    at.file_uploader(key="detect_upload").set_value([("IMG_0001.HEIC", ROTATED.read_bytes(), "image/heic")])
    at.slider(key="detect_threshold").set_value(0.0).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    rows = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert set(rows["image"]) == {"IMG_0001.HEIC"}
    assert rows["xmax"].max() <= 224 and rows["ymax"].max() <= 160      # the upright picture's pixels


def test_detect_command_writes_megadetector_json_and_csv_for_a_heic(tiny_model_dir, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    shutil.copy(ROTATED, tmp_path / "IMG_0003.HEIC")
    out = tmp_path / "md.json"
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", tiny_model_dir, str(tmp_path / "IMG_0003.HEIC"),
                        "--threshold", "0.0", "--json", str(out), "--csv", str(tmp_path / "d.csv"), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads(out.read_text())["images"]
    assert entry["file"].endswith("IMG_0003.HEIC") and not entry.get("failure"), entry
    assert (entry["width"], entry["height"]) == (224, 160)          # the upright picture's size
    assert "IMG_0003.HEIC" in (tmp_path / "d.csv").read_text()
