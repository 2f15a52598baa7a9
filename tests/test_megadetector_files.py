"""Results files written by MegaDetector's own tools (on Windows, without time stamps) read by ours.

A season's results often come from MegaDetector itself: its batch runs write no ``datetime``
unless asked (``--include_image_timestamp``), and older versions on Windows wrote ``\\`` between
folders. Our exports and the Camera traps page must find those images as sorting already does.
"""
from __future__ import annotations

import csv
import json

from PIL import Image

from ssd.cli.main import main


def _photo(path, when):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (64, 48), (90, 120, 60))
    exif = im.getexif()
    exif[0x0132] = when                       # DateTime, as many camera traps write it
    im.save(path, exif=exif)


def _md_file(tmp_path, names):
    """A MegaDetector v4-era results file: no datetime, no width/height, ``max_detection_conf``."""
    doc = {"info": {"format_version": "1.0", "detector": "megadetector_v4.1",
                    "detection_completion_time": "2020-01-01 10:00:00"},
           "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
           "images": [{"file": n, "max_detection_conf": 0.9,
                       "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.2, 0.3, 0.4]}]}
                      for n in names]}
    path = tmp_path / "md.json"
    path.write_text(json.dumps(doc))
    return path


def _export(tmp_path, results, images):
    out = tmp_path / "dp"
    rc = main(["results", "export", str(results), "--format", "camtrap-dp", "--out", str(out),
               "--images", str(images), "--latitude", "1", "--longitude", "2"])
    assert rc == 0
    with open(out / "media.csv", newline="") as fh:
        return {r["filePath"]: r for r in csv.DictReader(fh)}


def test_camtrap_dp_dates_a_megadetector_files_photos_by_their_exif_time_not_the_copy_time(tmp_path):
    images = tmp_path / "season"
    _photo(images / "camA" / "img0.jpg", "2024:05:01 10:00:00")
    media = _export(tmp_path, _md_file(tmp_path, ["camA/img0.jpg"]), images)
    assert media["camA/img0.jpg"]["timestamp"].startswith("2024-05-01T10:00:00")
    assert "modification" not in media["camA/img0.jpg"]["mediaComments"]


def test_camtrap_dp_finds_the_photos_of_a_results_file_written_with_backslashes(tmp_path):
    images = tmp_path / "season"
    _photo(images / "camA" / "img0.jpg", "2024:05:01 10:00:00")
    _photo(images / "camB" / "img1.jpg", "2024:05:02 11:00:00")
    media = _export(tmp_path, _md_file(tmp_path, ["camA\\img0.jpg", "camB\\img1.jpg"]), images)
    assert sorted(media) == ["camA/img0.jpg", "camB/img1.jpg"]
    assert media["camB/img1.jpg"]["deploymentID"] == "camB"
    assert media["camB/img1.jpg"]["timestamp"].startswith("2024-05-02T11:00:00")


def test_the_camera_traps_page_shows_images_named_with_backslashes(tmp_path):
    from ssd.camtrap.browse import image_path, name_and_folder

    images = tmp_path / "season"
    _photo(images / "camA" / "img0.jpg", "2024:05:01 10:00:00")
    assert image_path({"file": "camA\\img0.jpg"}, str(images)) == str((images / "camA" / "img0.jpg").resolve())
    assert name_and_folder("camA\\img0.jpg") == ("img0.jpg", "camA")
    assert image_path({"file": "..\\season2\\x.jpg"}, str(images)) is None


def _shard(tmp_path, name, files):
    doc = json.loads(_md_file(tmp_path, files).read_text())
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_megadetectors_absolute_windows_names_merge_as_absolute_names(tmp_path, capsys):
    """MegaDetector writes absolute names unless asked otherwise: on Windows a drive letter or a
    network share. Two such runs were refused as "an absolute path ... (or all absolute)"."""
    for prefix in ("D:\\season\\", "\\\\server\\share\\season\\"):
        a = _shard(tmp_path, "a.json", [prefix + "camB\\img0.jpg", prefix + "camA\\img1.jpg"])
        b = _shard(tmp_path, "b.json", [prefix + "camA\\img0.jpg"])
        out = tmp_path / "all.json"
        assert main(["results", "merge", str(a), str(b), "-o", str(out)]) == 0, capsys.readouterr().err
        files = [im["file"] for im in json.loads(out.read_text())["images"]]
        assert files == [prefix + "camA\\img0.jpg", prefix + "camA\\img1.jpg", prefix + "camB\\img0.jpg"]


def test_a_windows_name_climbing_out_with_dotdot_still_does_not_merge(tmp_path, capsys):
    a = _shard(tmp_path, "a.json", ["D:\\season\\..\\..\\other\\img0.jpg"])
    b = _shard(tmp_path, "b.json", ["D:\\season\\camA\\img0.jpg"])
    assert main(["results", "merge", str(a), str(b), "-o", str(tmp_path / "all.json")]) != 0
    assert "'..'" in capsys.readouterr().err


def test_one_image_named_with_either_separator_in_two_shards_is_an_overlap(tmp_path, capsys):
    a = _shard(tmp_path, "a.json", ["camA\\img0.jpg"])            # written on Windows
    b = _shard(tmp_path, "b.json", ["camA/img0.jpg", "camA/img1.jpg"])
    assert main(["results", "merge", str(a), str(b), "-o", str(tmp_path / "all.json")]) != 0
    assert "overlap" in capsys.readouterr().err and not (tmp_path / "all.json").exists()


class _Detector:
    """A network-free detector with MegaDetector's three classes."""

    input_size, classes = 32, ["animal", "person", "vehicle"]

    def engine_info(self):
        return {"engine": "onnxruntime", "precision": "fp32"}

    def describe(self):
        return "fake"

    def predict_arrays(self, images, nms=0.45, floor=0.005):
        import numpy as np

        return [(np.array([0]), np.array([0.4], np.float32), np.array([[1, 1, 10, 10]], np.float32)) for _ in images]


def test_megadetectors_own_results_are_not_adopted_as_previous_results_of_our_run(tmp_path):
    """``--previous-results`` entries are written as this run's, under our detector's name: a
    MegaDetector file with the same three categories was taken in silently, its boxes then passing
    as our model's (in Timelapse, in a merge, in a Camtrap DP ``classifiedBy``)."""
    import pytest

    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.megadetector import ResultsError
    from ssd.camtrap.settings import RunSettings

    images = tmp_path / "season"
    _photo(images / "img0.jpg", "2024:05:01 10:00:00")
    _photo(images / "img1.jpg", "2024:05:01 10:00:05")
    previous = _md_file(tmp_path, ["img0.jpg"])
    opts = RunSettings("models/x", [str(images)], out_json=str(tmp_path / "r.json"), previous_results=str(previous))
    with pytest.raises(ResultsError, match="megadetector_v4.1.*ssd-studio:x"):
        run_batch(opts, _Detector(), stream=None)
    assert not (tmp_path / "r.json").exists()


def test_a_file_with_categories_as_a_list_is_refused_by_what_is_wrong(tmp_path, capsys):
    """MegaDetector's CSV-to-JSON conversion writes ``detection_categories`` as a list of
    ``{"id", "name"}``: the refusal said the file had no 'detection_categories' at all."""
    doc = json.loads(_md_file(tmp_path, ["a.jpg"]).read_text())
    doc["detection_categories"] = [{"id": 1, "name": "animal"}]
    path = tmp_path / "from_csv.json"
    path.write_text(json.dumps(doc))
    assert main(["results", "summary", str(path)]) != 0
    err = capsys.readouterr().err
    assert "detection_categories is [{'id': 1, 'name': 'animal'}], expected an object of id → name" in err


def test_camtrap_dp_events_of_a_megadetector_file_come_from_the_photos_exif_times(tmp_path):
    """Two frames 5 s apart are one event, a third an hour later another: the events use the same
    EXIF times as the media rows (they were one event per photo when the results held no times)."""
    images = tmp_path / "season"
    for k, when in enumerate(["2024:05:01 10:00:00", "2024:05:01 10:00:05", "2024:05:01 11:00:00"]):
        _photo(images / "camA" / f"img{k}.jpg", when)
    _export(tmp_path, _md_file(tmp_path, [f"camA/img{k}.jpg" for k in range(3)]), images)
    with open(tmp_path / "dp" / "observations.csv", newline="") as fh:
        rows = {r["mediaID"]: r for r in csv.DictReader(fh)}
    events = [rows[f"camA/img{k}.jpg"]["eventID"] for k in range(3)]
    assert events[0] == events[1] != events[2]
    assert rows["camA/img0.jpg"]["eventEnd"].startswith("2024-05-01T10:00:05")
