"""``results split``: one results file per camera (or per folder N levels down), its names relative
to that folder, so Timelapse opened at a camera or site folder reads the file (MegaDetector's
``subset_json_detector_output --split_folders``)."""
from __future__ import annotations

import json

import pytest

from ssd.cli.main import main

NAMES = ["siteA/cam1/100RECNX/IMG_0001.JPG", "siteA/cam1/100RECNX/IMG_0002.JPG", "siteA/cam2/IMG_0001.JPG",
         "siteB/cam1/2024-05-01/IMG_0001.JPG", "siteB/cam1/2024-05-01/broken.jpg", "top.jpg"]


def _results(tmp_path, names=NAMES, camera_depth=None):
    images = []
    for k, n in enumerate(names):
        if n.endswith("broken.jpg"):
            images.append({"file": n, "failure": "not an image", "detections": None})
        else:
            images.append({"file": n, "max_detection_conf": 0.5 + k / 100,
                           "detections": [{"category": "1", "conf": 0.5 + k / 100, "bbox": [0.1, 0.2, 0.3, 0.4]}]})
    info = {"format_version": "1.6", "detector": "md_v5a.0.0.pt",
            "detector_metadata": {"typical_detection_threshold": 0.2}}
    if camera_depth is not None:
        info["ssd_batch"] = {"camera_depth": camera_depth, "images_root": "/data/season", "absolute_paths": False}
    doc = {"info": info, "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"}, "images": images}
    path = tmp_path / "season.json"
    path.write_text(json.dumps(doc))
    return path


def _read(path):
    return json.loads(path.read_text())


def test_split_per_camera_names_relative_to_each_camera(tmp_path, capsys):
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path)), "--out", str(out)]) == 0, capsys.readouterr().err
    files = sorted(p.name for p in out.iterdir())
    assert files == ["siteA_cam1.json", "siteA_cam2.json", "siteB_cam1.json", "top-folder.json"]
    cam1 = _read(out / "siteA_cam1.json")
    assert [im["file"] for im in cam1["images"]] == ["100RECNX/IMG_0001.JPG", "100RECNX/IMG_0002.JPG"]
    assert cam1["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert cam1["info"]["format_version"] == "1.6"
    assert cam1["info"]["detector_metadata"]["typical_detection_threshold"] == 0.2
    assert cam1["images"][0]["detections"][0]["bbox"] == [0.1, 0.2, 0.3, 0.4]
    b = _read(out / "siteB_cam1.json")["images"]
    assert b[1] == {"file": "2024-05-01/broken.jpg", "failure": "not an image", "detections": None}
    assert [im["file"] for im in _read(out / "top-folder.json")["images"]] == ["top.jpg"]


def test_split_at_one_level_serves_timelapse_opened_at_a_site(tmp_path, capsys):
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path, NAMES[:5])), "--out", str(out),
                 "--camera-depth", "1"]) == 0, capsys.readouterr().err
    site_a = _read(out / "siteA.json")
    assert [im["file"] for im in site_a["images"]] == ["cam1/100RECNX/IMG_0001.JPG", "cam1/100RECNX/IMG_0002.JPG",
                                                      "cam2/IMG_0001.JPG"]
    assert site_a["info"]["split_from"]["folder"] == "siteA"
    assert len(_read(out / "siteB.json")["images"]) == 2


def test_recorded_folder_and_depth_follow_the_split(tmp_path, capsys):
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path, NAMES[:3], camera_depth=2)), "--out", str(out),
                 "--camera-depth", "1"]) == 0, capsys.readouterr().err
    batch = _read(out / "siteA.json")["info"]["ssd_batch"]
    assert batch["images_root"] == "/data/season/siteA"
    assert batch["camera_depth"] == 1       # cameras stay siteA/cam1, siteA/cam2: one level below siteA


def test_absolute_names_need_a_path_prefix(tmp_path, capsys):
    names = ["D:\\season\\siteA\\cam1\\a.jpg", "D:\\season\\siteB\\cam1\\b.jpg"]
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path, names)), "--out", str(out)]) == 2
    assert "--path-prefix" in capsys.readouterr().err and not out.exists()
    assert main(["results", "split", str(_results(tmp_path, names)), "--out", str(out),
                 "--path-prefix", "D:\\season"]) == 0, capsys.readouterr().err
    assert [im["file"] for im in _read(out / "siteB_cam1.json")["images"]] == ["b.jpg"]


def test_posix_absolute_names_without_a_prefix_are_refused(tmp_path, capsys):
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path, ["/data/s/cam1/a.jpg"])), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--path-prefix" in err and "/data/s/cam1/a.jpg" in err and not out.exists()


@pytest.mark.parametrize("existing", ["siteA_cam2.json"])
def test_an_existing_file_is_never_replaced_and_nothing_is_written(tmp_path, capsys, existing):
    out = tmp_path / "split"
    out.mkdir()
    (out / existing).write_text("mine")
    assert main(["results", "split", str(_results(tmp_path)), "--out", str(out)]) == 2
    assert existing in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [existing] and (out / existing).read_text() == "mine"


def test_two_folders_that_would_share_a_file_name_are_refused(tmp_path, capsys):
    names = ["site_A/cam/a.jpg", "site/A_cam/b.jpg"]
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path, names)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "site_A/cam" in err and "site/A_cam" in err and not out.exists()


def test_names_climbing_out_are_refused(tmp_path, capsys):
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path, ["cam1/../../etc/x.jpg"])), "--out", str(out)]) == 2
    assert ".." in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("names", [["CamA/a.jpg", "cama/b.jpg"], ["Ch\u00e9/a.jpg", "Che\u0301/b.jpg"]])
def test_folders_one_file_name_on_macos_or_windows_are_refused(tmp_path, capsys, names):
    """Case and Unicode normalization aside (macOS, Windows: Timelapse's home), the two parts are one
    file: the second replaced the first there (was: written as two files only where names keep case)."""
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path, names)), "--out", str(out)]) == 2
    assert "would both be written" in capsys.readouterr().err and not out.exists()


def test_folder_names_no_file_system_takes_are_written_under_names_that_fit(tmp_path, capsys):
    """A part's file name over 255 bytes failed midway (ENAMETOOLONG, earlier parts left written);
    ``CON``, ``nul`` are devices on Windows, where the parts are opened."""
    long_a, long_b = "a" * 200 + "/" + "b" * 200, "a" * 200 + "/" + "c" * 200
    names = ["cam1/x.jpg", long_a + "/x.jpg", long_b + "/x.jpg", "CON/x.jpg", "nul.d/x.jpg"]
    out = tmp_path / "split"
    assert main(["results", "split", str(_results(tmp_path, names)), "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 5 and all(len(f.encode()) <= 255 for f in files)
    assert not any(f.split(".")[0].upper() in ("CON", "NUL") for f in files)
    assert sorted(_read(out / f)["images"][0]["file"] for f in files) == ["x.jpg"] * 5


@pytest.mark.parametrize("change", ["name", "info", "more"])
def test_a_file_changed_between_its_readings_is_refused_and_nothing_is_written(tmp_path, capsys, monkeypatch, change):
    """The split reads the file twice (the names and parts first, then each entry into its part):
    a file rewritten in between (a run still writing it) is refused, no part or temporary file left."""
    from ssd.camtrap import results_stream

    path = _results(tmp_path)
    first = results_stream.read_results_kept_where

    def then_changed(*args, **kwargs):
        doc = first(*args, **kwargs)
        now = json.loads(path.read_text())
        if change == "name":
            now["images"][2]["file"] = "siteA/cam2/IMG_0009.JPG"
        elif change == "info":
            now["info"]["detector"] = "other"
        else:
            now["images"].append(dict(now["images"][0], file="siteA/cam1/more.jpg"))
        path.write_text(json.dumps(now))
        return doc

    monkeypatch.setattr(results_stream, "read_results_kept_where", then_changed)
    out = tmp_path / "split"
    assert main(["results", "split", str(path), "--out", str(out)]) == 2
    assert "changed while it was split" in capsys.readouterr().err
    assert list(out.iterdir()) == []
