"""The Camera traps page keeps its review settings (confidence, per-class confidences, which images,
rows, hide suspect) in the address, as the Anchors and Detect pages do; the results file and the
photo folder, paths on the machine serving the app, never go there. A reload starts a new session
that has lost the typed results file, so the link's review settings wait until the filters are
first drawn (the file opened again), and until then stay in the address."""
from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT
from test_camtrap_page import write_season

APP = os.path.join(REPO_ROOT, "app.py")
PAGE = "app_pages/camera_traps.py"
OTHER = "another results file…"
HOSTILE = ["nan", "NaN", "inf", "-1", "1e999", "9" * 5000, "../../etc/passwd", "/etc/passwd",
           "<script>alert(1)</script>", "**bold** [x](http://evil.example)", "0.5\n# title", "\x00", "",
           "all\nempty", "episodes/../images", "maybe", "2"]
NAMES = ("conf", "show", "rows", "hide_suspect", "per_class", "conf_1", "conf_2")


@pytest.fixture
def season(monkeypatch, tmp_path, shipped_models_root):
    """A results file ``season.json`` (typical threshold 0.3, classes animal "1" and person "2")
    over ``photos/``; no run yet, so the page offers "another results file"."""
    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(tmp_path))
    write_season(tmp_path)
    return tmp_path


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _choose_results(at: AppTest, season) -> None:
    at.text_input(key="ct_results_path").set_value(str(season / "season.json"))
    at.text_input(key="ct_image_root").set_value(str(season / "photos")).run()
    _ok(at)


def _open(season, params: dict, file_in_first_run: bool = False) -> AppTest:
    """The page opened by a link; the results file chosen after its first run (a reload lost it)
    or, ``file_in_first_run``, already chosen in it."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(params)
    if file_in_first_run:
        at.session_state["ct_results"] = OTHER
        at.session_state["ct_results_path"] = str(season / "season.json")
        at.session_state["ct_image_root"] = str(season / "photos")
    at.switch_page(PAGE).run()
    _ok(at)
    if not file_in_first_run:
        _choose_results(at, season)
    return at


def _no_path_in_the_address(at: AppTest, season) -> None:
    pairs = [*at.query_params.keys(), *at.query_params.values()]
    assert not any(os.sep in p or "season" in p or "photos" in p or str(season) in p for p in pairs), pairs


def _metrics(at: AppTest) -> dict:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("file_in_first_run", [False, True])
def test_camera_page_opens_on_the_review_settings_of_its_link(season, file_in_first_run):
    at = _open(season, {"conf": "0.85", "show": "with-detections", "rows": "episodes", "hide_suspect": "0",
                        "per_class": "1", "conf_2": "0.35"}, file_in_first_run)
    assert at.slider(key="ct_conf").value == pytest.approx(0.85)
    assert at.selectbox(key="ct_state").value == "with detections"
    assert at.radio(key="ct_view").value == "episodes"
    assert at.checkbox(key="ct_hide_suspect").value is False
    assert at.checkbox(key="ct_per_class").value is True
    assert at.number_input(key="ct_thr_1").value == pytest.approx(0.85)    # not in the link: the main one
    assert at.number_input(key="ct_thr_2").value == pytest.approx(0.35)
    # at 0.85 with suspects shown: cam1/0 (animal .9); person at 0.35 lets cam2/u1 (.4) in
    assert _metrics(at)["With detections"] == "2"
    assert any("frame(s)" in t.value for t in at.text)                    # episode rows
    _no_path_in_the_address(at, season)
    assert at.query_params.get("conf") == "0.85" and at.query_params.get("conf_2") == "0.35"


@pytest.mark.parametrize("bad", HOSTILE)
def test_camera_page_ignores_a_link_value_its_widgets_would_not_allow(season, bad):
    at = _open(season, {**{name: bad for name in NAMES}, "per_class": "1"})
    _ok(at)
    assert at.slider(key="ct_conf").value == pytest.approx(0.3)            # the file's typical threshold
    assert at.selectbox(key="ct_state").value == "all"
    assert at.radio(key="ct_view").value == "images"
    assert at.checkbox(key="ct_hide_suspect").value is True
    assert at.number_input(key="ct_thr_1").value == pytest.approx(0.3)
    assert at.number_input(key="ct_thr_2").value == pytest.approx(0.3)
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.text, *at.warning])
    assert "passwd" not in shown and "script" not in shown and "evil" not in shown
    assert _metrics(at)["With detections"] == "2"
    _no_path_in_the_address(at, season)


def test_camera_page_writes_a_changed_review_setting_into_the_address_and_leaves_defaults_out(season):
    at = _open(season, {})
    assert dict(at.query_params) == {}                                  # all defaults: a bare link
    at.slider(key="ct_conf").set_value(0.5).run()
    at.selectbox(key="ct_state").set_value("cut short").run()
    at.radio(key="ct_view").set_value("episodes").run()
    at.checkbox(key="ct_hide_suspect").set_value(False).run()
    at.checkbox(key="ct_per_class").set_value(True).run()
    at.number_input(key="ct_thr_1").set_value(0.2).run()
    _ok(at)
    assert dict(at.query_params) == {"conf": "0.5", "show": "cut-short", "rows": "episodes", "hide_suspect": "0",
                                     "per_class": "1", "conf_1": "0.2"}
    at.slider(key="ct_conf").set_value(0.3).run()                       # back to the default: out of the link
    at.selectbox(key="ct_state").set_value("all").run()
    assert "conf" not in at.query_params and "show" not in at.query_params
    _no_path_in_the_address(at, season)
    again = _open(season, dict(at.query_params))                        # the link, reloaded
    assert again.radio(key="ct_view").value == "episodes"
    assert again.number_input(key="ct_thr_1").value == pytest.approx(0.2)


def test_the_link_waits_in_the_address_until_a_results_file_is_open(season):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"conf": "0.6", "rows": "episodes"})
    at.switch_page(PAGE).run()
    at.run()                                                            # no results file yet: nothing drawn
    _ok(at)
    assert at.query_params.get("conf") == "0.6" and at.query_params.get("rows") == "episodes"
    _choose_results(at, season)
    assert at.slider(key="ct_conf").value == pytest.approx(0.6)
    at.slider(key="ct_conf").set_value(0.7).run()                        # a change is not undone by the link
    at.run()
    assert at.slider(key="ct_conf").value == pytest.approx(0.7)
    assert at.query_params.get("conf") == "0.7"


def test_no_path_goes_into_the_address_whatever_is_chosen(season):
    at = _open(season, {"results": str(season / "season.json"), "folder": str(season / "photos")})
    assert at.text_input(key="ct_results_path").value == str(season / "season.json")   # typed, not from the link
    at = _open(season, {})
    _no_path_in_the_address(at, season)
    at.slider(key="ct_conf").set_value(0.4).run()
    at.radio(key="ct_view").set_value("episodes").run()
    _ok(at)
    assert dict(at.query_params) == {"conf": "0.4", "rows": "episodes"}
    _no_path_in_the_address(at, season)
