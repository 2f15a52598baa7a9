"""Which folder is the camera: a season laid out site/camera/date/ or site/camera/100RECNX/ made
each day folder its own camera (a deployment per day, a burst across midnight split in two).
Each test failed before the camera rule (``ssd.camtrap.cameras``) existed."""
from __future__ import annotations

import csv
import json
import os

import pytest
from PIL import Image

from ssd.camtrap.cameras import CameraRule, camera_depth, camera_folder, file_camera_rule, is_date_folder
from ssd.cli.main import main

# name → EXIF time. x1/x2: one burst across midnight, in two day folders of one camera.
SEASON = {
    "siteA/cam1/2024-05-01/x1.jpg": "2024:05:01 23:59:30",
    "siteA/cam1/2024-05-02/x2.jpg": "2024:05:02 00:00:30",
    "siteA/cam1/2024-05-02/100RECNX/x3.jpg": "2024:05:02 12:00:00",
    "siteA/cam2/20240501/y1.jpg": "2024:05:01 08:00:00",
    "siteB/20241399/100MEDIA/z1.jpg": "2024:05:01 09:00:00",      # a camera named by digits: no date
}


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    root = tmp_path_factory.mktemp("layered-season")
    for i, (name, when) in enumerate(SEASON.items()):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[306] = when
        Image.new("RGB", (64, 48), (30 * i, 90, 140)).save(root / name, exif=exif)
    return root


def _detect(models_root, season, out, *flags):
    model = os.path.join(models_root, "tiny-pikachu")
    assert main(["detect", "--model", model, str(season), "--recursive", "--json", str(out), "--quiet", *flags]) == 0
    return json.loads(out.read_text())


def _export(results, out, images, *flags):
    code = main(["results", "export", str(results), "--format", "camtrap-dp", "--out", str(out), "--images",
                 str(images), "--latitude", "52", "--longitude", "5", *flags])
    assert code == 0
    with open(out / "deployments.csv", encoding="utf-8") as fh:
        return sorted(row["deploymentID"] for row in csv.DictReader(fh))


def test_the_automatic_rule_removes_trailing_date_and_card_folders_only():
    assert camera_folder("site/cam/2024-05-01") == "site/cam"
    assert camera_folder("site/cam/2024-05-01/100RECNX") == "site/cam"
    assert camera_folder("site/cam/100RECNX/2024_05_01") == "site/cam"
    assert camera_folder("site/cam/101EK113") == camera_folder("site/cam/100_BTCF") == "site/cam"
    assert camera_folder("site/cam/100MEDIA") == camera_folder("site/cam/102DSCIM") == "site/cam"
    assert camera_folder("site/cam/01.05.2024") == camera_folder("site/cam/20240501") == "site/cam"
    # digit-named cameras that are no valid day are kept; a date in the middle is a name, not stripped
    for kept in ("site/20241399", "site/12345678", "site/2024", "site/0042", "site/19000101", "2024-05-01/cam3"):
        assert camera_folder(kept) == kept
    assert not is_date_folder("2024-02-30") and is_date_folder("2024-02-29")
    # never above the images folder: a card's folders at the top are the one camera "."
    assert camera_folder("2024-05-01/100RECNX") == "" and camera_folder("") == ""
    assert camera_folder("/data/cam/20240501") == "/data/cam" and camera_folder("/20240501") == "/"
    assert CameraRule().camera_of("cam1\\100RECNX\\a.jpg") == "cam1"
    assert CameraRule().camera_of("a.jpg") == CameraRule().camera_of("cam1/a.jpg")[:0] == ""


def test_a_camera_depth_takes_the_first_levels_whatever_they_are_called():
    assert camera_folder("site/cam/2024-05-01/100RECNX", 2) == "site/cam"
    assert camera_folder("site/cam/2024-05-01", 3) == "site/cam/2024-05-01"
    assert camera_folder("site", 2) == "site"              # shallower than N: its own folder
    assert camera_folder("site/cam", 0) == ""
    assert camera_depth("auto") is None and camera_depth("2") == 2
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(Exception):
            camera_depth(bad)


def test_a_layered_season_gives_one_deployment_per_camera_and_one_episode_across_midnight(
        shipped_models_root, season, tmp_path, capsys):
    doc = _detect(shipped_models_root, season, tmp_path / "r.json")
    episodes = {im["file"]: im["episode"] for im in doc["images"]}
    assert episodes["siteA/cam1/2024-05-01/x1.jpg"] == episodes["siteA/cam1/2024-05-02/x2.jpg"] == "siteA/cam1#1"
    assert episodes["siteA/cam1/2024-05-02/100RECNX/x3.jpg"] == "siteA/cam1#2"
    assert episodes["siteB/20241399/100MEDIA/z1.jpg"] == "siteB/20241399#1"
    assert doc["info"]["ssd_batch"]["camera_depth"] == "auto"
    assert _export(tmp_path / "r.json", tmp_path / "dp", season) == ["siteA/cam1", "siteA/cam2", "siteB/20241399"]
    meta = json.loads((tmp_path / "dp" / "datapackage.json").read_text())["ssdStudio"]
    assert meta["camera_depth"] == "auto"
    code = main(["results", "summary", str(tmp_path / "r.json"), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["episodes"]["episodes"] == 4


def test_camera_depth_on_detect_is_recorded_and_used_by_export_unless_overridden(
        shipped_models_root, season, tmp_path, capsys):
    doc = _detect(shipped_models_root, season, tmp_path / "r.json", "--camera-depth", "1")
    assert doc["info"]["ssd_batch"]["camera_depth"] == 1
    assert {im["episode"].split("#")[0] for im in doc["images"]} == {"siteA", "siteB"}
    assert file_camera_rule(doc) == CameraRule(1)
    assert _export(tmp_path / "r.json", tmp_path / "dp", season) == ["siteA", "siteB"]       # the recorded rule
    days = _export(tmp_path / "r.json", tmp_path / "dp3", season, "--camera-depth", "3")
    assert days == ["siteA/cam1/2024-05-01", "siteA/cam1/2024-05-02", "siteA/cam2/20240501", "siteB/20241399/100MEDIA"]
    with open(tmp_path / "dp3" / "observations.csv", encoding="utf-8") as fh:
        events = {row["mediaID"]: row["eventID"] for row in csv.DictReader(fh)}
    assert events["siteA/cam1/2024-05-01/x1.jpg"] != events["siteA/cam1/2024-05-02/x2.jpg"]
    assert _export(tmp_path / "r.json", tmp_path / "dpa", season, "--camera-depth", "auto") == [
        "siteA/cam1", "siteA/cam2", "siteB/20241399"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["results", "export", str(tmp_path / "r.json"), "--format", "xlsx", "--out", "x.xlsx",
              "--camera-depth", "-2"])
    assert "'auto' or an integer" in capsys.readouterr().err


def test_shards_made_with_different_camera_rules_do_not_merge(shipped_models_root, season, tmp_path, capsys):
    _detect(shipped_models_root, season, tmp_path / "s1.json", "--shard", "1/2")
    _detect(shipped_models_root, season, tmp_path / "s2.json", "--shard", "2/2", "--camera-depth", "2")
    capsys.readouterr()
    merged = tmp_path / "all.json"
    assert main(["results", "merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-o", str(merged)]) == 2
    assert "camera_depth differs: 'auto'" in capsys.readouterr().err and not merged.exists()
    _detect(shipped_models_root, season, tmp_path / "s2.json", "--shard", "2/2")
    assert main(["results", "merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-o", str(merged)]) == 0
    episodes = {im["file"]: im["episode"] for im in json.loads(merged.read_text())["images"]}
    assert episodes["siteA/cam1/2024-05-01/x1.jpg"] == episodes["siteA/cam1/2024-05-02/x2.jpg"]


def test_repeats_are_found_across_the_day_folders_of_one_camera():
    from ssd.camtrap.repeats import flag_repeats

    rock = [{"category": "1", "conf": 0.8, "bbox": [0.1, 0.1, 0.2, 0.2]}]
    images = [{"file": f"cam1/2024-05-0{d}/a.jpg", "detections": [dict(rock[0])]} for d in (1, 2, 3)]
    assert flag_repeats(images, 3, 0.5) == 3
    assert flag_repeats(images, 3, 0.5, camera=CameraRule(2)) == 0      # each day its own camera


def test_the_run_settings_carry_the_camera_depth_to_a_background_job_and_back():
    from ssd.camtrap.settings import RunSettings, SettingsError

    s = RunSettings("m", ("photos",), camera_depth=2)
    assert s.to_argv()[-4:] == ["--camera-depth", "2", "--", "photos"] and s.camera_rule == CameraRule(2)
    assert RunSettings.from_dict(s.to_dict()) == s
    assert "--camera-depth" not in RunSettings("m", ("photos",)).to_argv()
    with pytest.raises(SettingsError):
        RunSettings.from_dict(dict(s.to_dict(), camera_depth=-1))


def test_the_camera_traps_page_runs_with_the_camera_folder_chosen(monkeypatch, tmp_path, shipped_models_root, season):
    from streamlit.testing.v1 import AppTest

    from ssd import jobs
    from test_camera_traps_app import APP, _Browser, _start_run

    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(season.parent))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    box = at.selectbox(key="ct_camera_depth")
    assert box.value == "auto" and "automatic" in box.format_func(box.value)     # shown, not "Choose an option"
    box.set_value(1)
    browser = _Browser()
    browser.look(at)
    _start_run(at, browser, str(season), "by-site")
    doc = json.loads(open(os.path.join(jobs.camera_runs_dir(), "by-site", jobs.BATCH_RESULTS)).read())
    assert doc["info"]["ssd_batch"]["camera_depth"] == 1
    assert {im["episode"].split("#")[0] for im in doc["images"]} == {"siteA", "siteB"}


def _old_file(tmp_path, *, recorded):
    """A results file as an earlier version wrote it: episode ids made per immediate folder (the day
    folders of one camera apart), a burst across midnight split in two; ``recorded`` adds the rule."""
    batch = {"episode_gap": 120.0}
    if recorded:
        batch["camera_depth"] = "auto"
    images = [{"file": f"site/cam/{day}/IMG_{k}.JPG", "datetime": stamp, "episode": f"site/cam/{day}#1",
               "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}]}
              for k, (day, stamp) in enumerate([("2024-05-01", "2024:05:01 23:59:50"),
                                                ("2024-05-02", "2024:05:02 00:00:05")])]
    path = tmp_path / f"old-{recorded}.json"
    path.write_text(json.dumps({"info": {"format_version": "1.5", "ssd_batch": batch},
                                "detection_categories": {"1": "animal"}, "images": images}))
    return str(path)


@pytest.mark.parametrize("recorded", [False, True])
def test_summary_counts_episodes_by_the_camera_rule_and_says_which(tmp_path, capsys, recorded):
    """A file that records no rule was grouped per day folder: its episodes are made again by the
    automatic rule (as its deployments are); one that records a rule keeps its own ids."""
    assert main(["results", "summary", _old_file(tmp_path, recorded=recorded), "--threshold", "0.5"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("all"))
    assert row.split()[1:] == (["2", "2"] if recorded else ["2", "1"])
    assert "at most 120 s apart in one of 1 camera folder(s) (automatic" in out
