"""A page's small settings live in the address (``st.query_params``): a reload, a bookmark or a shared
link opens the page as it was set. The address is untrusted: a value the widget would not allow is
ignored (the default stands), with no traceback, no path, no Markdown shown."""
from __future__ import annotations

import os
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT
from ssd.inference.thresholds import DEFAULT_NMS, MAX_DETECTIONS, SHOWN_THRESHOLD
from ssd.store import default_model

APP = os.path.join(REPO_ROOT, "app.py")
ANCHORS, DETECT = "app_pages/anchors.py", "app_pages/detect.py"
HOSTILE = ["nan", "NaN", "inf", "-1", "1e999", "9" * 5000, "../../etc/passwd", "/etc/passwd",
           "<script>alert(1)</script>", "**bold** [x](http://evil.example)", "0.5\n# title", "\x00", ""]


@pytest.fixture
def empty_env(tmp_path, monkeypatch):
    """No model (the Anchors page shows custom TinySSD anchors only), an empty data folder."""
    for name in ("models", "data"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    return tmp_path


@pytest.fixture
def two_models(tmp_path, monkeypatch, shipped_models_root):
    """The shipped tiny-pikachu and a copy of it named ``second``."""
    root = tmp_path / "models"
    shutil.copytree(shipped_models_root, root)
    shutil.copytree(root / "tiny-pikachu", root / "second")
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    return root


def _open(page: str, params: dict) -> AppTest:
    """The page opened by a link (``/page?params``): its first run sees the query string."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(params)
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _no_error_shown(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_anchors_page_opens_on_the_settings_of_its_link(empty_env):
    at = _open(ANCHORS, {"size": "320", "sizes": "0.1, 0.2; 0.3, 0.4; 0.5, 0.6; 0.7, 0.8; 0.85, 0.95",
                         "ratios": "1, 2", "iou": "0.3", "centres": "1", "map": "2", "row": "3", "col": "4"})
    _no_error_shown(at)
    assert at.number_input(key="anchors_input").value == 320
    assert at.text_input(key="anchors_sizes").value == "0.1, 0.2; 0.3, 0.4; 0.5, 0.6; 0.7, 0.8; 0.85, 0.95"
    assert at.text_input(key="anchors_ratios").value == "1, 2"
    assert at.slider(key="anchors_thr").value == pytest.approx(0.3)
    assert at.checkbox(key="anchors_centres").value is True
    assert at.selectbox(key="anchors_scale").value == 2
    assert (at.number_input(key="anchors_row::2").value, at.number_input(key="anchors_col::2").value) == (3, 4)
    assert _metric(at, "Anchors in this cell") == "3"                   # 2 sizes + 2 ratios - 1
    assert _metric(at, "Input size") == "320×320"


@pytest.mark.parametrize("bad", HOSTILE)
def test_anchors_page_ignores_a_link_value_its_widgets_would_not_allow(empty_env, bad):
    params = {name: bad for name in ("src", "size", "sizes", "ratios", "sample", "iou", "centres", "map", "row",
                                     "col", "cover", "cover_iou", "model")}
    at = _open(ANCHORS, params)
    _no_error_shown(at)
    assert at.number_input(key="anchors_input").value == 256
    assert at.text_input(key="anchors_sizes").value == "0.2, 0.272; 0.37, 0.447; 0.54, 0.619; 0.71, 0.79; 0.88, 0.961"
    assert at.text_input(key="anchors_ratios").value == "1, 2, 0.5"
    assert at.slider(key="anchors_thr").value == pytest.approx(0.5)
    assert at.checkbox(key="anchors_centres").value is False
    assert _metric(at, "Total anchors") == "5444"
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.text_input])
    assert "passwd" not in shown and "script" not in shown and "evil" not in shown


def test_anchors_page_ignores_values_out_of_range_or_off_the_step(empty_env):
    at = _open(ANCHORS, {"size": "260", "iou": "0.95", "map": "9", "row": "99", "sizes": "0.2; 0.3",
                         "ratios": "1, 2; 3"})
    _no_error_shown(at)
    assert at.number_input(key="anchors_input").value == 256            # not a multiple of 8
    assert at.slider(key="anchors_thr").value == pytest.approx(0.5)      # above the slider's 0.9
    assert at.text_input(key="anchors_sizes").value.count(";") == 4      # TinySSD has 5 feature maps
    assert at.text_input(key="anchors_ratios").value == "1, 2, 0.5"
    assert _metric(at, "Total anchors") == "5444"


def test_anchors_page_writes_a_changed_setting_into_the_address_and_leaves_defaults_out(empty_env):
    at = _open(ANCHORS, {})
    assert dict(at.query_params) == {}                                  # all defaults: a bare link
    at.slider(key="anchors_thr").set_value(0.35).run()
    at.number_input(key="anchors_input").set_value(320).run()
    assert not at.exception
    assert at.query_params.get("iou") == "0.35" and at.query_params.get("size") == "320"
    at.slider(key="anchors_thr").set_value(0.5).run()                   # back to the default: out of the link
    assert "iou" not in at.query_params
    again = _open(ANCHORS, dict(at.query_params))                       # the link, reloaded
    assert again.number_input(key="anchors_input").value == 320


def test_a_changed_setting_is_not_overwritten_by_the_link_it_was_opened_with(empty_env):
    at = _open(ANCHORS, {"iou": "0.3"})
    at.slider(key="anchors_thr").set_value(0.7).run()
    at.run()
    assert at.slider(key="anchors_thr").value == pytest.approx(0.7)
    assert at.query_params.get("iou") == "0.7"


def test_detect_page_opens_on_the_settings_of_its_link(two_models):
    at = _open(DETECT, {"model": "second", "conf": "0.35", "nms": "0.3", "max": "50", "view": "table"})
    _no_error_shown(at)
    assert os.path.basename(at.selectbox(key="detect_model").value) == "second"
    assert at.slider(key="detect_threshold").value == pytest.approx(0.35)
    assert at.slider(key="detect_nms").value == pytest.approx(0.3)
    assert at.number_input(key="detect_max").value == 50
    assert at.segmented_control(key="detect_tab").value == "Table"


@pytest.mark.parametrize("bad", HOSTILE + ["../tiny-pikachu", "no-such-model", "tiny-pikachu/../second"])
def test_detect_page_ignores_a_link_value_its_widgets_would_not_allow(two_models, bad):
    params = {name: bad for name in ("model", "engine", "precision", "md", "max", "conf", "nms", "view")}
    at = _open(DETECT, params)
    _no_error_shown(at)
    assert at.selectbox(key="detect_model").value == default_model(str(two_models)).path
    assert at.slider(key="detect_threshold").value == pytest.approx(SHOWN_THRESHOLD)
    assert at.slider(key="detect_nms").value == pytest.approx(DEFAULT_NMS)
    assert at.number_input(key="detect_max").value == MAX_DETECTIONS
    assert at.segmented_control(key="detect_tab").value == "Images"


def test_detect_page_writes_its_settings_into_the_address_by_model_name_not_path(two_models):
    at = _open(DETECT, {})
    default_model = at.selectbox(key="detect_model").value
    assert dict(at.query_params) == {}
    other = next(os.path.join(str(two_models), name) for name in ("second", "tiny-pikachu")
                 if os.path.join(str(two_models), name) != default_model)
    at.slider(key="detect_threshold").set_value(0.4).run()
    at.selectbox(key="detect_model").set_value(other).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params.get("conf") == "0.4"
    assert at.query_params.get("model") == os.path.basename(other)
    assert all(os.sep not in v for v in at.query_params.values())
