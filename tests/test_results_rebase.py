"""Results whose names were written on another machine: ``--path-prefix``, ``results rebase``, and
merges of ``--absolute-paths`` shards made under different roots.

MegaDetector writes absolute names by default (``D:\\season\\camA\\img0.jpg``); the photos are
then sorted or exported on a machine where the season is at ``/mnt/season``.
"""
from __future__ import annotations

import csv
import json
import os

import pytest

from ssd.cli.main import main
from test_camtrap_page import season  # noqa: F401  (the fixture)
from test_megadetector_files import _Detector, _md_file, _photo


def _season(tmp_path):
    images = tmp_path / "season"
    _photo(images / "camA" / "img0.jpg", "2024:05:01 10:00:00")
    _photo(images / "camB" / "img1.jpg", "2024:05:02 11:00:00")
    return images


def _sorted(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize("prefix, names", [
    ("D:\\season", ["D:\\season\\camA\\img0.jpg", "d:\\Season\\camB\\img1.jpg"]),   # Windows: any case
    ("\\\\server\\share\\season\\", ["\\\\server\\share\\season\\camA\\img0.jpg",
                                    "\\\\SERVER\\share\\season\\camB\\img1.jpg"]),
])
def test_windows_absolute_names_sort_under_the_images_folder_with_a_path_prefix(tmp_path, capsys, prefix, names):
    images = _season(tmp_path)
    results = _md_file(tmp_path, names)
    into = tmp_path / "sorted"
    assert main(["results", "sort", str(results), "--images", str(images), "--into", str(into),
                 "--path-prefix", prefix]) == 0, capsys.readouterr().err
    assert _sorted(into) == ["animal/camA/img0.jpg", "animal/camB/img1.jpg"]
    assert os.path.realpath(into / "animal" / "camB" / "img1.jpg") == str((images / "camB" / "img1.jpg").resolve())


def test_without_a_prefix_windows_names_are_refused_naming_the_flag_and_their_folder(tmp_path, capsys):
    images = _season(tmp_path)
    results = _md_file(tmp_path, ["D:\\season\\camA\\img0.jpg", "D:\\season\\camB\\img1.jpg"])
    into = tmp_path / "sorted"
    assert main(["results", "sort", str(results), "--images", str(images), "--into", str(into)]) != 0
    err = capsys.readouterr().err
    assert "--path-prefix" in err and "'D:\\season'" in err
    assert not into.exists()


def test_windows_absolute_names_export_with_a_path_prefix(tmp_path, capsys):
    images = _season(tmp_path)
    results = _md_file(tmp_path, ["D:\\season\\camA\\img0.jpg", "D:\\season\\camB\\img1.jpg"])
    out = tmp_path / "dp"
    assert main(["results", "export", str(results), "--format", "camtrap-dp", "--out", str(out), "--images",
                 str(images), "--path-prefix", "D:/season/", "--latitude", "1", "--longitude", "2"]) == 0
    with open(out / "media.csv", newline="") as fh:
        media = {r["filePath"]: r for r in csv.DictReader(fh)}
    assert sorted(media) == ["camA/img0.jpg", "camB/img1.jpg"]
    assert media["camB/img1.jpg"]["deploymentID"] == "camB"
    assert media["camB/img1.jpg"]["timestamp"].startswith("2024-05-02T11:00:00")     # the photo was found


@pytest.mark.parametrize("command", ["sort", "export", "summary"])
def test_a_name_outside_the_prefix_is_refused_and_nothing_is_written(tmp_path, capsys, command):
    images = _season(tmp_path)
    results = _md_file(tmp_path, ["D:\\season\\camA\\img0.jpg", "D:\\season2\\camB\\img1.jpg"])
    out = tmp_path / "out"
    extra = {"sort": ["--images", str(images), "--into", str(out)], "summary": [],
             "export": ["--images", str(images), "--format", "camtrap-dp", "--out", str(out), "--latitude", "1",
                        "--longitude", "2"]}[command]
    assert main(["results", command, str(results), "--path-prefix", "D:\\season", *extra]) != 0
    err = capsys.readouterr().err
    assert "D:\\\\season2\\\\camB\\\\img1.jpg" in err and "not under the path prefix 'D:\\season'" in err
    assert not out.exists()


def test_a_prefix_never_lets_a_name_climb_out_with_dotdot(tmp_path, capsys):
    images = _season(tmp_path)
    results = _md_file(tmp_path, ["D:\\season\\..\\secret\\img0.jpg"])
    assert main(["results", "sort", str(results), "--images", str(images), "--into", str(tmp_path / "s"),
                 "--path-prefix", "D:\\season"]) != 0
    assert "'..'" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_rebase_writes_a_new_file_with_the_names_rewritten(tmp_path, capsys):
    results = _md_file(tmp_path, ["D:\\season\\camA\\img0.jpg", "D:\\season\\camB\\img1.jpg"])
    before = results.read_text()
    out = tmp_path / "linux.json"
    assert main(["results", "rebase", str(results), "--from", "D:\\season", "--to", "/mnt/season",
                 "-o", str(out)]) == 0, capsys.readouterr().err
    assert results.read_text() == before
    doc = json.loads(out.read_text())
    assert [im["file"] for im in doc["images"]] == ["/mnt/season/camA/img0.jpg", "/mnt/season/camB/img1.jpg"]
    assert doc["info"]["rebased"] == [{"from": "D:\\season", "to": "/mnt/season"}]
    rel = tmp_path / "rel.json"
    assert main(["results", "rebase", str(results), "--relative-to", "d:/SEASON", "-o", str(rel)]) == 0
    assert [im["file"] for im in json.loads(rel.read_text())["images"]] == ["camA/img0.jpg", "camB/img1.jpg"]


def test_rebase_refuses_to_overwrite_its_input_and_names_outside_the_prefix(tmp_path, capsys):
    results = _md_file(tmp_path, ["D:\\season\\camA\\img0.jpg", "E:\\other\\img1.jpg"])
    before = results.read_text()
    assert main(["results", "rebase", str(results), "--from", "D:\\", "--to", "/mnt", "-o", str(results)]) != 0
    assert "must not replace" in capsys.readouterr().err and results.read_text() == before
    out = tmp_path / "out.json"
    assert main(["results", "rebase", str(results), "--from", "D:\\season", "--to", "/mnt/season",
                 "-o", str(out)]) != 0
    assert "E:\\\\other\\\\img1.jpg" in capsys.readouterr().err and not out.exists()


def _absolute_run(tmp_path, season, shard):
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.settings import RunSettings

    out = tmp_path / f"shard{shard}.json"
    opts = RunSettings("models/x", [str(season)], out_json=str(out), absolute_paths=True, shard=(shard, 2),
                       recursive=True)
    run_batch(opts, _Detector(), stream=None)
    return out


def test_absolute_shards_run_under_different_roots_do_not_merge_until_rebased(tmp_path, capsys):
    a, b = _season(tmp_path / "a"), _season(tmp_path / "b")
    s1, s2 = _absolute_run(tmp_path, a, 1), _absolute_run(tmp_path, b, 2)
    assert json.loads(s1.read_text())["info"]["ssd_batch"]["images_root"] == str(a)
    out = tmp_path / "all.json"
    assert main(["results", "merge", str(s1), str(s2), "-o", str(out)]) != 0
    err = capsys.readouterr().err
    assert str(a) in err and str(b) in err and "rebase" in err and not out.exists()
    moved = tmp_path / "shard2.rebased.json"
    assert main(["results", "rebase", str(s2), "--from", str(b), "--to", str(a), "-o", str(moved)]) == 0
    assert main(["results", "merge", str(s1), str(moved), "-o", str(out)]) == 0, capsys.readouterr().err
    assert sorted(im["file"] for im in json.loads(out.read_text())["images"]) == [
        f"{a}/camA/img0.jpg", f"{a}/camB/img1.jpg"]


def test_a_merged_file_completes_when_its_last_shard_did(tmp_path, capsys):
    paths = []
    for k, (name, when) in enumerate([("a.jpg", "2024-05-02 09:00:00"), ("b.jpg", "2024-05-03 18:30:00"),
                                      ("c.jpg", "2024-05-01 23:00:00")]):
        doc = json.loads(_md_file(tmp_path, [name]).read_text())
        doc["info"]["detection_completion_time"] = when
        paths.append(tmp_path / f"s{k}.json")
        paths[-1].write_text(json.dumps(doc))
    out = tmp_path / "all.json"
    assert main(["results", "merge", *map(str, paths), "-o", str(out)]) == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["info"]["detection_completion_time"] == "2024-05-03 18:30:00"


def test_the_camera_traps_page_shows_windows_named_photos_below_its_path_prefix(season):
    """Without the prefix the page says which folder to give; with it every frame is found."""
    from test_camtrap_page import APP, _ok
    from streamlit.testing.v1 import AppTest

    doc = json.loads((season / "season.json").read_text())
    for im in doc["images"]:
        im["file"] = "D:\\season\\" + im["file"].replace("/", "\\")
    (season / "season.json").write_text(json.dumps(doc))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    at.text_input(key="ct_results_path").set_value(str(season / "season.json"))
    at.text_input(key="ct_image_root").set_value(str(season / "photos")).run()
    assert any("path prefix" in w.value and "these names share" in w.value for w in at.warning)
    warning = next(w.value for w in at.warning if "path prefix" in w.value)
    assert "Path prefix in the results" in warning and "--path-prefix" not in warning   # the page's own words
    shown_without = len(at.image)
    at.text_input(key="ct_path_prefix").set_value("d:\\SEASON\\").run()
    _ok(at)
    assert not at.warning
    assert len(at.image) == 8 + 4 and shown_without < 8       # every frame once, and the review's four crops


def test_the_export_reads_no_photo_outside_the_images_folder(tmp_path, capsys, monkeypatch):
    """An absolute name elsewhere on this machine is left out, not opened for its EXIF time."""
    import ssd.camtrap.camtrap_dp as dp

    opened = []
    real = dp.exif_datetime
    monkeypatch.setattr(dp, "exif_datetime", lambda path: opened.append(path) or real(path))
    images = _season(tmp_path)
    _photo(tmp_path / "private" / "img9.jpg", "2024:05:09 09:00:00")
    results = _md_file(tmp_path, [str(images / "camA" / "img0.jpg"), str(tmp_path / "private" / "img9.jpg")])
    out = tmp_path / "dp"
    assert main(["results", "export", str(results), "--format", "camtrap-dp", "--out", str(out), "--images",
                 str(images), "--latitude", "1", "--longitude", "2"]) == 0
    with open(out / "media.csv", newline="") as fh:
        assert [r["filePath"] for r in csv.DictReader(fh)] == ["camA/img0.jpg"]
    assert "1 file(s) left out" in capsys.readouterr().err
    assert opened and not any("private" in p for p in opened)


def test_an_export_without_images_names_the_folder_the_run_recorded(tmp_path, capsys):
    """The README's order: ``detect /data/season --json season.json`` in another folder, then
    ``results export season.json``: photos are looked for beside the results file, not found, and
    left out; the message says which folder the run was over and which flag takes it."""
    images = _season(tmp_path)
    results = _md_file(tmp_path, ["camA/img0.jpg", "camB/img1.jpg"])
    doc = json.loads(results.read_text())
    doc["info"]["ssd_batch"] = {"images_root": str(images), "absolute_paths": False}
    results.write_text(json.dumps(doc))
    common = ["results", "export", str(results), "--format", "camtrap-dp", "--latitude", "1", "--longitude", "2"]
    assert main([*common, "--out", str(tmp_path / "dp")]) == 2           # none found: nothing written
    err = capsys.readouterr().err
    assert "no media to export" in err and f"--images {images}" in err, err
    _photo(tmp_path / "camA" / "img0.jpg", "2024:05:01 10:00:00")      # one name happens to exist beside it
    assert main([*common, "--out", str(tmp_path / "dp")]) == 0
    err = capsys.readouterr().err
    assert "1 file(s) left out" in err and f"--images {images}" in err, err
    assert main([*common, "--out", str(tmp_path / "dp2"), "--images", str(images)]) == 0
    assert "left out" not in capsys.readouterr().err


def test_the_threshold_explorer_follows_the_path_prefix(season):
    """The sweep is cached per path prefix too: with a fixed camera folder depth the prefix moves which
    folder is a camera, so a sweep cached without it showed the other prefix's episodes."""
    from test_camtrap_page import APP, _ok
    from streamlit.testing.v1 import AppTest

    doc = json.loads((season / "season.json").read_text())
    for im in doc["images"]:
        im["file"] = "D:\\season\\" + im["file"].replace("/", "\\")
        im.setdefault("datetime", doc["images"][0]["datetime"])      # cam2 at cam1's first burst
    (season / "season.json").write_text(json.dumps(doc))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    at.text_input(key="ct_results_path").set_value(str(season / "season.json"))
    at.text_input(key="ct_image_root").set_value(str(season / "photos"))
    at.text_input(key="ct_path_prefix").set_value("d:\\SEASON\\").run()
    at.selectbox(key="ct_rg_depth").set_value(1).run()
    at.toggle(key="ct_explore").set_value(True).run()
    _ok(at)

    def episodes():
        sweep = next(d.value for d in at.dataframe if "images changed" in d.value.columns)
        return list(sweep["episodes"])

    with_prefix = episodes()
    at.text_input(key="ct_path_prefix").set_value("").run()
    at.selectbox(key="ct_rg_depth").set_value(1).run()
    _ok(at)
    assert episodes() != with_prefix        # one 'camera' D: now: cam2's frames join cam1's burst


def test_a_rebase_to_an_absolute_folder_records_absolute_names_and_their_folder(tmp_path, capsys):
    """``--from site_A --to /data/season/site_A`` made the names absolute but left the file saying
    ``absolute_paths: false`` under the old images folder, which MegaDetector's tools then believe."""
    from test_reliability_results import _doc, _img

    doc = _doc([_img("site_A/a.jpg"), _img("site_A/cam1/b.jpg")])
    doc["info"]["ssd_batch"] = {"images_root": "/mnt/card", "absolute_paths": False}
    results = tmp_path / "season.json"
    results.write_text(json.dumps(doc))
    out = tmp_path / "abs.json"
    assert main(["results", "rebase", str(results), "--from", "site_A", "--to", "/data/season/site_A",
                 "-o", str(out)]) == 0, capsys.readouterr().err
    rebased = json.loads(out.read_text())
    assert [im["file"] for im in rebased["images"]] == ["/data/season/site_A/a.jpg", "/data/season/site_A/cam1/b.jpg"]
    assert rebased["info"]["ssd_batch"] == {"images_root": "/data/season/site_A", "absolute_paths": True}
    # and back: absolute names made relative by --to a relative folder say so, with no folder they are below
    back = tmp_path / "back.json"
    assert main(["results", "rebase", str(out), "--from", "/data/season", "--to", "season",
                 "-o", str(back)]) == 0, capsys.readouterr().err
    batch = json.loads(back.read_text())["info"]["ssd_batch"]
    assert batch["absolute_paths"] is False and "images_root" not in batch
