"""Files from strangers (archives, model folders, datasets, photos): refused or used, never a hang,
a traceback or a write outside their folder. Each test failed before its fix."""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import time
import zipfile

import pytest
from PIL import Image

from ssd.cli.main import main
from test_reliability import _in_thread


def _release(fifo) -> None:
    """Unblock a reader an old version left waiting on ``fifo`` (so a failing test cannot hang pytest)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


# ------------------------------------------------------------------ zip extraction and links

def test_zip_extraction_never_writes_through_a_link_in_the_target(tmp_path):
    from ssd.base.errors import DownloadError
    from ssd.data.archive import safe_extract

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("top/x.jpg", b"from the archive")
        zf.writestr("other.txt", b"fine")
    dest, victim = tmp_path / "dest", tmp_path / "victim"
    dest.mkdir()
    victim.mkdir()
    (victim / "x.jpg").write_bytes(b"precious")
    os.symlink(victim, dest / "top")
    with pytest.raises(DownloadError, match="symbolic link"):
        safe_extract(str(archive), str(dest))
    assert (victim / "x.jpg").read_bytes() == b"precious" and os.listdir(victim) == ["x.jpg"]
    assert not (dest / "other.txt").exists()                     # checked whole before anything is written
    os.unlink(dest / "top")
    os.symlink(tmp_path / "victim" / "x.jpg", dest / "other.txt")  # a link planted as a file name
    with pytest.raises(DownloadError, match="symbolic link"):
        safe_extract(str(archive), str(dest))
    assert (victim / "x.jpg").read_bytes() == b"precious"


# ------------------------------------------------------------------ meta.json: deep, FIFO

@pytest.fixture
def hostile_models(tiny_model_dir, tmp_path):
    """A models folder with a good model, one whose meta.json is 200,000 deep, one whose meta.json is a FIFO."""
    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root / "good")
    for name in ("deep", "fifo"):
        shutil.copytree(tiny_model_dir, root / name)
        os.unlink(root / name / "meta.json")
    (root / "deep" / "meta.json").write_text("[" * 200_000 + "]" * 200_000)
    os.mkfifo(root / "fifo" / "meta.json")
    yield root
    _release(root / "fifo" / "meta.json")


def test_ssd_models_lists_a_deep_or_fifo_meta_as_broken_without_hanging(hostile_models, capsys):
    rc = _in_thread(lambda: main(["models", "--root", str(hostile_models)]))
    cap = capsys.readouterr()
    assert rc == 0 and "good" in cap.out
    assert "skipped deep" in cap.err and "nested" in cap.err
    assert "skipped fifo" in cap.err and "FIFO" in cap.err


def test_pages_list_a_deep_or_fifo_meta_as_broken(hostile_models, monkeypatch, data_root):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT

    monkeypatch.setenv("SSD_MODELS_DIR", str(hostile_models))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")

    def visit():
        at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
        pages = {"home": (list(at.exception), [m.value for m in at.markdown])}
        for page in ("app_pages/detect.py", "app_pages/train.py", "app_pages/anchors.py",
                     "app_pages/camera_traps.py"):
            at.switch_page(page).run()
            pages[page] = (list(at.exception), [m.value for m in at.markdown])
        return pages

    pages = _in_thread(visit, timeout=600)
    for page, (exceptions, _) in pages.items():
        assert not exceptions, (page, [e.value for e in exceptions])
    broken = " ".join(pages["home"][1])
    assert "nested" in broken and "FIFO" in broken            # both listed as broken, with the reason


# ------------------------------------------------------------------ COCO Camera Traps ids

@pytest.mark.parametrize("where", ["image id", "annotation image_id", "category id"])
def test_a_cct_id_that_is_not_a_number_or_text_is_a_clear_error(tmp_path, capsys, where):
    root = tmp_path / "cct"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (64, 48)).save(root / "images" / "a.jpg")
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20]}],
           "categories": [{"id": 1, "name": "thing"}]}
    if where == "image id":
        doc["images"][0]["id"] = [1, 2]
    elif where == "annotation image_id":
        doc["annotations"][0]["image_id"] = {"x": 1}
    else:
        doc["categories"][0]["id"] = [1]
    (root / "camera_traps.json").write_text(json.dumps(doc))
    assert main(["data", "info", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "camera_traps.json" in err and "id" in err and "[0]" in err


# ------------------------------------------------------------------ EXIF: one open, capped metadata

def _jpeg_with_app1_segments(n: int, when: str = "2024:06:01 05:30:00") -> bytes:
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[306] = when
    Image.new("RGB", (320, 240), (40, 90, 30)).save(buf, "JPEG", exif=exif)
    jpg = buf.getvalue()
    filler = b"Exif\0\0" + b"MM\0*\0\0\0\x08" + b"\0" * (65533 - 2 - 14)
    segment = b"\xff\xe1" + struct.pack(">H", len(filler) + 2) + filler
    first = jpg.index(b"\xff\xdb")                 # after the real EXIF segment, before the tables
    return jpg[:first] + segment * n + jpg[first:]


def test_a_jpeg_with_900_exif_segments_is_opened_once_and_still_detected(tmp_path, tiny_model_dir):
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.settings import RunSettings

    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "big.jpg").write_bytes(_jpeg_with_app1_segments(900))   # 59 MB
    (tmp_path / "photos" / "small.jpg").write_bytes(_jpeg_with_app1_segments(0))
    opened = []
    real_open = Image.open

    def spy(fp, *a, **kw):
        opened.append(getattr(fp, "name", fp))
        return real_open(fp, *a, **kw)

    Image.open = spy
    try:
        t0 = time.perf_counter()
        res = run_batch(RunSettings(model=tiny_model_dir, inputs=(str(tmp_path / "photos"),), workers=1), stream=None)
        took = time.perf_counter() - t0
    finally:
        Image.open = real_open
    doc = res.document
    big = next(im for im in doc["images"] if im["file"] == "big.jpg")
    assert big["failure"] is None and big["width"] == 320
    assert len(opened) == 2                        # one open per photo (not one more for its time stamp)
    assert took < 20, took                         # was 57 s on the 2-core machine
    small = next(im for im in doc["images"] if im["file"] == "small.jpg")
    assert small["datetime"] == "2024:06:01 05:30:00"


# ------------------------------------------------------------------ dataset.json's numbers

@pytest.mark.parametrize("field, value", [("num_train", 1e400), ("num_val", -1), ("seed", None), ("num_train", "x")])
def test_a_regenerate_hint_never_repeats_nonsense_numbers(tmp_path, field, value):
    from ssd.base.errors import DatasetError
    from ssd.data.dataset import open_dataset
    from ssd.data.synthetic import generate

    out = tmp_path / "s"
    generate(str(out), num_train=4, num_val=2, seed=1, size=64)
    info = json.load(open(out / "dataset.json"))
    info[field] = value
    info.pop("complete")                           # so that the set is refused and the hint given
    (out / "dataset.json").write_text(json.dumps(info).replace("Infinity", "1e400"))
    with pytest.raises(DatasetError) as err:
        open_dataset(str(out))
    hint = str(err.value)
    assert "python -m ssd data synth" in hint
    for bad in ("inf", "-1", "None", "'x'", " x "):
        assert f"--num-train {bad.strip()}" not in hint and f"--seed {bad.strip()}" not in hint \
            and f"--num-val {bad.strip()}" not in hint


# ------------------------------------------------------------------ meta.json: provenance of the wrong type

@pytest.fixture
def odd_source_models(tmp_path):
    """The shipped model, and copies whose meta.json gives ``source`` (or its ``published``) as text."""
    from conftest import SHIPPED_MODEL

    root = tmp_path / "models"
    keep = shutil.ignore_patterns("int8*", "*.onnx", "onnx-int8.json")
    shutil.copytree(SHIPPED_MODEL, root / "good", ignore=keep)
    meta = json.loads((root / "good" / "meta.json").read_text())
    for name, source in (("text-source", "torchvision"),
                         ("text-published", {"kind": "torchvision", "published": "COCO AP 25.1"})):
        shutil.copytree(SHIPPED_MODEL, root / name, ignore=keep)
        (root / name / "meta.json").write_text(json.dumps(dict(meta, source=source, default=False)))
    return root


def test_a_meta_json_with_source_of_the_wrong_type_is_a_broken_folder_not_a_crash(odd_source_models, monkeypatch,
                                                                                   data_root, capsys):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT

    assert main(["models", "--root", str(odd_source_models)]) == 0
    err = capsys.readouterr().err
    assert "skipped text-source" in err and "'source' must be an object" in err
    assert "skipped text-published" in err and "'source.published' must be an object" in err
    monkeypatch.setenv("SSD_MODELS_DIR", str(odd_source_models))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    for page in (None, "app_pages/detect.py", "app_pages/camera_traps.py"):
        if page:
            at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
    at.switch_page("app_pages/home.py").run()
    assert "must be an object" in " ".join(m.value for m in at.markdown)
