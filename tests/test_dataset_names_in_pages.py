"""Names that come with a dataset (skip reasons, category names) show as text on the pages, never as Markdown."""
from __future__ import annotations

import os

from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT
from test_cct_messy import _images, _write

APP = os.path.join(REPO_ROOT, "app.py")


def test_skip_reasons_from_the_dataset_are_not_markdown(monkeypatch, tmp_path):
    # "lynx" has no box, so its name reaches the "skipped" line; it carries a link and bold markup
    name = "**lynx** [click](http://evil.example)"
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(4)]
    _write(tmp_path / "data" / "cams", _images(4), anns, [{"id": 1, "name": "deer"}, {"id": 2, "name": name}])
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path / "models"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page("app_pages/train.py").run()
    at.selectbox(key="train_dataset").set_value(str(tmp_path / "data" / "cams")).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [w.value for w in at.warning if "Skipped or adjusted" in w.value]
    assert len(shown) == 1 and "lynx" in shown[0]
    assert "**lynx**" not in shown[0] and "](http" not in shown[0]


def test_class_names_from_a_camera_trap_set_are_not_markdown_in_nms_steps(monkeypatch, tmp_path, tiny_model_dir):
    # a model trained on a set whose category carries markup: its name must show as typed
    import json
    import shutil

    name = "**pika** [click](http://evil.example)"
    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root / "marked")
    meta_path = root / "marked" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = [name]
    meta["class_mapping"] = [{"index": 0, "id": 0, "name": name}]
    meta_path.write_text(json.dumps(meta))
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page("app_pages/learn_nms.py").run()
    at.slider(key="learn_nms_floor").set_value(0.01).run()
    assert not at.exception, [e.value for e in at.exception]
    steps = [m.value for m in at.markdown if "keeps a" in m.value]
    assert steps and "pika" in steps[0]
    assert "**pika**" not in steps[0] and "](http" not in steps[0]
