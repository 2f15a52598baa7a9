"""Control characters in names from outside (class names in a model's meta.json, model and photo
folder names, file names) reach no widget as they are: plain-text widgets (``st.text``, option
labels) and Markdown ones show them escaped (``\\x1b``), as the command line prints them."""
from __future__ import annotations

import json
import os
import re
import shutil

from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")     # line breaks: the page's own Markdown
CLASS = "pika\x1b]0;PWNED\x07chu\rx"
FOLDER = "cam\x1b[31m1\x07"


def _shown(at: AppTest) -> list:
    """Every string the page shows: text, Markdown, captions, button labels and option labels."""
    out = [t.value for t in at.text] + [m.value for m in at.markdown] + [c.value for c in at.caption]
    out += [b.label for b in at.button]
    for box in [*at.selectbox, *at.multiselect]:
        out += list(box.options)
    return out


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_detect_page_escapes_control_characters_in_class_and_model_names(tmp_path, monkeypatch, tiny_model_dir):
    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root / FOLDER)
    meta_path = root / FOLDER / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = [CLASS]
    meta["class_mapping"] = [{"index": 0, "id": 0, "name": CLASS}]
    meta_path.write_text(json.dumps(meta))
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/detect.py").run()
    _ok(at)
    shown = _shown(at)
    assert any("\\x1b]0;PWNED\\x07chu" in s for s in [t.value for t in at.text])      # "Knows 1 class: …"
    assert any("pika" in o for m in at.multiselect for o in m.options)
    assert [s for s in shown if CONTROL.search(s)] == []


def _season(tmp_path) -> None:
    """A folder with a control-character name, three frames with a repeated box; a class name likewise."""
    photos = tmp_path / "photos" / FOLDER
    photos.mkdir(parents=True)
    images = []
    for i in range(3):
        name = f"{i}\x1b[2J.jpg"
        Image.new("RGB", (120, 90), (60 * i, 100, 60)).save(photos / name)
        images.append({"file": f"{FOLDER}/{name}", "width": 120, "height": 90, "failure": None,
                       "detections": [{"category": "1", "conf": 0.8, "bbox": [0.5, 0.5, 0.1, 0.1], "suspect": True}]})
    doc = {"info": {"format_version": "1.6", "detector": "ssd-studio:test",
                    "ssd_batch": {"episode_gap": 120.0, "flag_repeats": 2}},
           "detection_categories": {"1": CLASS}, "images": images}
    (tmp_path / "season.json").write_text(json.dumps(doc))


def test_camera_traps_page_escapes_control_characters_in_file_folder_and_class_names(
        tmp_path, monkeypatch, shipped_models_root):
    _season(tmp_path)
    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    at.text_input(key="ct_results_path").set_value(str(tmp_path / "season.json"))
    at.text_input(key="ct_image_root").set_value(str(tmp_path / "photos")).run()
    _ok(at)
    next(b for b in at.button if b.key and b.key.startswith("ct_open_")).click().run()     # the large view
    _ok(at)
    shown = _shown(at)
    assert any("\\x1b[2J.jpg" in t.value for t in at.text)
    assert [s for s in shown if CONTROL.search(s)] == []
    at.radio(key="ct_view").set_value("episodes").run()                                   # one row per burst
    _ok(at)
    assert [s for s in _shown(at) if CONTROL.search(s)] == []


def test_camera_traps_per_class_thresholds_show_a_class_name_as_text(tmp_path, monkeypatch, shipped_models_root):
    """A widget label is Markdown (bold, links, images fetched from a stranger's host): the class names
    from a results file label the per-class thresholds, escaped like every other name."""
    from ssd.base.text import md_escape

    _season(tmp_path)
    doc = json.loads((tmp_path / "season.json").read_text())
    marked = "**lynx** ![x](http://evil.example/p.png)\x07"
    doc["detection_categories"] = {"1": marked}
    (tmp_path / "season.json").write_text(json.dumps(doc))
    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    at.text_input(key="ct_results_path").set_value(str(tmp_path / "season.json"))
    at.text_input(key="ct_image_root").set_value(str(tmp_path / "photos")).run()
    at.checkbox(key="ct_per_class").check().run()
    _ok(at)
    assert [n.label for n in at.number_input if n.key.startswith("ct_thr_")] == [md_escape(marked)]
