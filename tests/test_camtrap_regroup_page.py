"""The Camera traps page regroups an open results file's episodes (another gap, another camera
folder rule) as ``python -m ssd results summary|sort|export --episode-gap S --camera-depth N`` do,
on a copy: the counts, the episode rows and the exports follow; the file itself never changes."""
import io
import json
import zipfile

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from test_camtrap_page import APP, _metrics, _ok, write_season

import ssd.camtrap.episodes as episodes
from ssd.cli.main import main

# one camera's night across midnight, in a folder per day; another camera; the file made each day a camera
DAYS = [("cam1/2024-06-01/a.jpg", "2024:06:01 23:59:50"), ("cam1/2024-06-02/b.jpg", "2024:06:02 00:00:10"),
        ("cam2/2024-06-01/c.jpg", "2024:06:01 12:00:00")]


@pytest.fixture
def season(monkeypatch, tmp_path, shipped_models_root):
    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(tmp_path))
    write_season(tmp_path)
    return tmp_path


def write_days(tmp_path) -> str:
    """``days.json`` (recorded: a 30 s gap, camera = the first 2 folder levels) and its photos."""
    images = []
    for name, when in DAYS:
        path = tmp_path / "days" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (90, 120, 60)).save(path)
        images.append({"file": name, "width": 64, "height": 48, "datetime": when, "failure": None,
                       "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.3, 0.3]}]})
    doc = {"info": {"format_version": "1.6", "detector": "ssd-studio:test",
                    "detector_metadata": {"typical_detection_threshold": 0.3},
                    "ssd_batch": {"episode_gap": 30.0, "camera_depth": 2}},
           "detection_categories": {"1": "animal"}, "images": images}
    (tmp_path / "days.json").write_text(json.dumps(doc))
    return str(tmp_path / "days.json")


def _open(results: str, photos: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    at.text_input(key="ct_results_path").set_value(results)
    at.text_input(key="ct_image_root").set_value(photos).run()
    _ok(at)
    return at


def _prepared(at: AppTest):
    """The workbook's info sheet (name → value) and the package's metadata and deployment ids."""
    from openpyxl import load_workbook

    next(b for b in at.button if b.key == "ct_dp_prepare").click().run()
    _ok(at)
    ready = at.session_state["ct_dl_ready"]
    wb = load_workbook(io.BytesIO(ready["xlsx"]))
    info = {row[0]: row[1] for row in wb["info"].iter_rows(values_only=True)}
    package = zipfile.ZipFile(io.BytesIO(ready["zip"]))
    deployments = package.read("deployments.csv").decode().splitlines()[1:]
    return info, json.loads(package.read("datapackage.json"))["ssdStudio"], sorted(r.split(",")[0] for r in deployments)


def _cli_episodes(path: str, *flags: str, capsys) -> int:
    capsys.readouterr()
    assert main(["results", "summary", path, "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)["episodes"]["episodes"]


def test_the_controls_default_to_what_the_file_records(season):
    at = _open(str(season / "season.json"), str(season / "photos"))
    assert at.number_input(key="ct_rg_gap").value == 120.0 and at.selectbox(key="ct_rg_depth").value == "auto"
    at.text_input(key="ct_results_path").set_value(write_days(season))
    at.text_input(key="ct_image_root").set_value(str(season / "days")).run()
    _ok(at)
    assert at.number_input(key="ct_rg_gap").value == 30.0 and at.selectbox(key="ct_rg_depth").value == 2


def test_a_new_gap_counts_episodes_as_the_cli_does_and_the_exports_carry_it(season, capsys):
    path = str(season / "season.json")
    before = (season / "season.json").read_bytes()
    at = _open(path, str(season / "photos"))
    at.number_input(key="ct_dp_lat").set_value(46.5)
    at.number_input(key="ct_dp_lon").set_value(7.25).run()
    assert _metrics(at)["Episodes"] == str(_cli_episodes(path, capsys=capsys)) == "5"
    at.number_input(key="ct_rg_gap").set_value(3600.0).run()
    _ok(at)
    # cam1's six frames are at most 3,599 s apart: one burst; cam2's two untimed frames stand alone
    assert _metrics(at)["Episodes"] == str(_cli_episodes(path, "--episode-gap", "3600", capsys=capsys)) == "3"
    at.radio(key="ct_view").set_value("episodes").run()
    rows = [t.value for t in at.text if "frame(s)" in t.value]
    assert len(rows) == 3 and rows[0].startswith("cam1#1 · 6 frame(s)")
    info, package, _ = _prepared(at)
    assert info["episode gap (s)"] == 3600.0 and package["episode_gap"] == 3600.0
    assert package["camera_depth"] == "auto"
    at.number_input(key="ct_rg_gap").set_value(120.0).run()            # prepared at 3600 s: withdrawn
    assert not {"ct_dl_dp", "ct_dl_xlsx"} & {b.key for b in at.get("download_button")}
    assert _metrics(at)["Episodes"] == "5"
    assert (season / "season.json").read_bytes() == before             # never written


def test_sort_by_episode_follows_the_gap_shown(season):
    at = _open(str(season / "season.json"), str(season / "photos"))
    at.number_input(key="ct_rg_gap").set_value(3600.0).run()
    at.text_input(key="ct_sort_into").set_value(str(season / "sorted"))
    at.checkbox(key="ct_sort_episodes").check()
    at.button(key="ct_sort_go").click().run()
    _ok(at)
    # one burst: cam1's empty frames go where its animal goes
    assert len(list((season / "sorted" / "animal").rglob("*.jpg"))) == 6


def test_a_camera_folder_change_merges_day_folders_into_one_camera(season, capsys):
    path = write_days(season)
    at = _open(path, str(season / "days"))
    at.number_input(key="ct_dp_lat").set_value(46.5)
    at.number_input(key="ct_dp_lon").set_value(7.25).run()
    assert _metrics(at)["Episodes"] == "3"                  # each day its own camera: the night split in two
    _, package, deployments = _prepared(at)
    assert package["camera_depth"] == 2 and len(deployments) == 3
    at.selectbox(key="ct_rg_depth").set_value("auto").run()   # automatic: day folders belong to their camera
    _ok(at)
    assert _metrics(at)["Episodes"] == str(_cli_episodes(path, "--camera-depth", "auto", capsys=capsys)) == "2"
    info, package, deployments = _prepared(at)
    assert package["camera_depth"] == "auto" and deployments == ["cam1", "cam2"]
    assert info["camera folder"].startswith("automatic") and info["episode gap (s)"] == 30.0


def test_a_slider_move_after_a_regroup_does_not_regroup_again(season, monkeypatch):
    calls = []
    real = episodes.regroup_episodes
    monkeypatch.setattr(episodes, "regroup_episodes", lambda *a, **k: calls.append(a[1:]) or real(*a, **k))
    at = _open(str(season / "season.json"), str(season / "photos"))
    assert calls == []                                      # the file's own episodes: nothing regrouped
    at.number_input(key="ct_rg_gap").set_value(3600.0).run()
    assert len(calls) == 1 and calls[0][0] == 3600.0
    at.slider(key="ct_conf").set_value(0.85).run()
    at.checkbox(key="ct_hide_suspect").set_value(False).run()
    _ok(at)
    assert len(calls) == 1
    m = _metrics(at)                # at 0.85 only cam1/0.jpg (0.9): the one burst of cam1 at 3600 s
    assert (m["Episodes"], m["With detections"], m["Episodes with detections"]) == ("3", "1", "1")


def test_results_export_and_sort_take_an_episode_gap_too(season):
    """The page's exports have the CLI's equal: ``results export|sort --episode-gap``, file unchanged."""
    from openpyxl import load_workbook

    path = str(season / "season.json")
    before = (season / "season.json").read_bytes()
    assert main(["results", "export", path, "--format", "xlsx", "--out", str(season / "r.xlsx"),
                 "--episode-gap", "3600"]) == 0
    info = {row[0]: row[1] for row in load_workbook(season / "r.xlsx")["info"].iter_rows(values_only=True)}
    assert info["episode gap (s)"] == 3600.0
    assert main(["results", "sort", path, "--images", str(season / "photos"), "--into", str(season / "s"),
                 "--by-episode", "--episode-gap", "3600"]) == 0
    assert len(list((season / "s" / "animal").rglob("*.jpg"))) == 6
    assert (season / "season.json").read_bytes() == before
