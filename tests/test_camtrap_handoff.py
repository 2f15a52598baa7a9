"""What a camera-trap run hands to the next tools, as a researcher uses it: each test failed before its fix.

Sorting again into the same folder, a Camtrap DP package's media types and dates, a hard-link sort
onto another disk: each case lost or misstated something a consumer (a person counting folders, a
data platform reading the package) relies on.
"""
from __future__ import annotations

import json
import mimetypes
import os

from ssd.camtrap.camtrap_dp import PackageOptions, camtrap_tables
from ssd.cli.main import main
from test_reliability_sort import _doc, _write


def _seen(file, conf, when="2024:05:01 10:00:00"):
    dets = [{"category": "1", "conf": conf, "bbox": [0.1, 0.1, 0.5, 0.5]}]
    return {"file": file, "failure": None, "width": 4, "height": 4, "max_detection_conf": conf,
            "datetime": when, "detections": dets}


def _sorted_files(root):
    """Every file or link under ``root``, as ``class/relative/path``."""
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_sorting_again_at_another_threshold_never_leaves_an_image_in_two_class_folders(tmp_path, capsys):
    """Re-sorting into the same folder at a stricter threshold put the image into ``empty`` and left
    its link in ``animal``: the image was in both, and the counts printed missed the stale one."""
    photos, out = tmp_path / "photos", tmp_path / "sorted"
    (photos / "cam 1").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (photos / "cam 1" / name).write_bytes(name.encode())
    results = _write(tmp_path / "r.json", _doc(_seen("cam 1/a.jpg", 0.3), _seen("cam 1/b.jpg", 0.9)))
    args = ["results", "sort", results, "--images", str(photos), "--into", str(out)]
    assert main(args + ["--threshold", "0.2"]) == 0
    assert _sorted_files(out) == ["animal/cam 1/a.jpg", "animal/cam 1/b.jpg"]
    capsys.readouterr()
    assert main(args + ["--threshold", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "cam 1/a.jpg" in err and "animal" in err and "new folder" in err
    assert _sorted_files(out) == ["animal/cam 1/a.jpg", "animal/cam 1/b.jpg"]      # refused: nothing written
    assert main(args + ["--threshold", "0.2"]) == 0                                 # the same sort again: as is
    assert sorted(os.listdir(photos / "cam 1")) == ["a.jpg", "b.jpg"]


def test_a_hard_link_sort_onto_another_disk_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    """``--mode hardlink`` into a folder on another file system stopped at the first image with
    "Invalid cross-device link", after making folders; it is now refused up front, saying what to use."""
    photos, out = tmp_path / "photos", tmp_path / "sorted"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"a")
    results = _write(tmp_path / "r.json", _doc(_seen("a.jpg", 0.9)))
    real_stat = os.stat

    def other_disk(path, *a, **k):                  # the target's nearest existing folder is on another device
        st = real_stat(path, *a, **k)
        if os.path.abspath(str(path)) == str(tmp_path):
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev + 1) + tuple(st)[3:])
        return st

    monkeypatch.setattr(os, "stat", other_disk)
    rc = main(["results", "sort", results, "--images", str(photos), "--into", str(out), "--mode", "hardlink"])
    err = capsys.readouterr().err
    assert rc == 2 and "another disk" in err and "--mode copy" in err
    assert not out.exists()


def _package(doc, tmp_path):
    opts = PackageOptions(default_location=(52.0, 5.0), image_root=str(tmp_path))
    return camtrap_tables(doc, 0.2, opts)


def test_camtrap_dp_media_types_do_not_depend_on_the_machines_mime_table(tmp_path, monkeypatch):
    """A ``.mkv`` or ``.webp`` was written as ``image/jpeg`` where the system's MIME table lacks them
    (Python's own table has neither): a data platform then shows a video as a broken photo."""
    monkeypatch.setattr(mimetypes, "guess_type", lambda *a, **k: (None, None))
    names = ["cam/clip.mkv", "cam/clip.flv", "cam/p.webp", "cam/P.JPG", "cam/c.MP4", "cam/t.tif"]
    _, rows, _ = _package(_doc(*(_seen(n, 0.9) for n in names)), tmp_path)
    types = {r["filePath"]: r["fileMediatype"] for r in rows["media"]}
    assert types == {"cam/clip.mkv": "video/x-matroska", "cam/clip.flv": "video/x-flv", "cam/p.webp": "image/webp",
                     "cam/P.JPG": "image/jpeg", "cam/c.MP4": "video/mp4", "cam/t.tif": "image/tiff"}


def test_every_file_kind_a_run_reads_has_its_media_type():
    """A new image or video extension taught to the run must get its type too (else: the system's guess)."""
    from ssd.camtrap.camtrap_dp import MEDIA_TYPES
    from ssd.camtrap.video import VIDEO_EXTENSIONS
    from ssd.data.images import SUPPORTED_EXTENSIONS

    for ext in [f".{e}" for e in SUPPORTED_EXTENSIONS] + list(VIDEO_EXTENSIONS):
        assert MEDIA_TYPES[ext].split("/")[0] == ("video" if ext in VIDEO_EXTENSIONS else "image"), ext


def test_a_camtrap_dp_package_without_any_media_is_refused_not_dated_1970(tmp_path, capsys):
    """Exporting with the wrong images folder (files without EXIF time are then not found, so they
    have no date) wrote a "valid" package of nothing, dated 1970-01-01 at latitude 0, longitude 0."""
    photos, out = tmp_path / "photos", tmp_path / "dp"
    (photos / "cam").mkdir(parents=True)
    (photos / "cam" / "a.jpg").write_bytes(b"a")
    results = _write(tmp_path / "r.json", _doc(_seen("cam/a.jpg", 0.9, when=None)))
    args = ["results", "export", results, "--format", "camtrap-dp", "--out", str(out),
            "--latitude", "52", "--longitude", "5"]
    assert main(args + ["--images", str(tmp_path / "elsewhere")]) == 2
    err = capsys.readouterr().err
    assert "no media" in err and "images folder" in err and "elsewhere" in err
    assert not (out / "datapackage.json").exists()
    assert main(args + ["--images", str(photos)]) == 0                  # the right folder: the file's date
    media = (out / "media.csv").read_text(encoding="utf-8").splitlines()
    assert len(media) == 2 and media[1].startswith("cam/a.jpg,cam,")


def test_the_csv_says_which_frame_of_a_video_each_detection_is_in():
    """The CSV dropped the frame number MegaDetector's format keeps per video detection: a reader
    of the CSV could not find the animal in the clip."""
    import csv
    import io

    from ssd.camtrap.results import results_csv

    clip = {"file": "cam/clip.mp4", "failure": None, "width": 320, "height": 240, "max_detection_conf": 0.9,
            "frame_rate": 25.0, "frames_processed": [0, 25, 50],
            "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5], "frame_number": 25}]}
    broken = {"file": "cam/cut.mp4", "failure": "could not be opened as a video", "detections": None,
              "frame_rate": -1.0, "frames_processed": []}
    rows = list(csv.DictReader(io.StringIO(results_csv(_doc(clip, broken, _seen("cam/a.jpg", 0.5))))))
    assert [(r["file"], r["frame"], r["error"]) for r in rows] == [
        ("cam/clip.mp4", "25", ""), ("cam/cut.mp4", "", "could not be opened as a video"), ("cam/a.jpg", "", "")]
    assert rows[0]["xmin"] == "32.0" and rows[0]["score"] == "0.900"


def test_a_locations_row_naming_no_camera_folder_is_reported_not_silently_replaced(tmp_path, capsys):
    """A typo in the locations file (``siteA/cam 1`` for ``site A/cam 1``) gave that camera the
    default position without a word: the package put it at the wrong place."""
    (tmp_path / "loc.csv").write_text("deploymentID,latitude,longitude\nsiteA/cam 1,10,20\nsite B,11,21\n")
    results = _write(tmp_path / "r.json", _doc(_seen("site A/cam 1/a.jpg", 0.9), _seen("site B/b.jpg", 0.9)))
    rc = main(["results", "export", results, "--format", "camtrap-dp", "--out", str(tmp_path / "dp"),
               "--locations", str(tmp_path / "loc.csv"), "--latitude", "52", "--longitude", "5"])
    err = capsys.readouterr().err
    assert rc == 0 and "no camera folder of these results: 'siteA/cam 1'; if one is a typo" in err
    deployments = (tmp_path / "dp" / "deployments.csv").read_text(encoding="utf-8")
    assert "site A/cam 1,site A/cam 1,site A/cam 1,52.0,5.0" in deployments and "site B,site B,site B,11.0,21.0" in deployments


def test_a_locations_row_of_a_camera_whose_media_were_all_left_out_is_no_typo(tmp_path, capsys):
    """A camera whose files could not be dated (or lie elsewhere) has no deployment in the package,
    but its locations row names a camera of the results: it was reported as a typo."""
    (tmp_path / "loc.csv").write_text("deploymentID,latitude,longitude\nsite A,10,20\nsite B,11,21\n")
    undated = dict(_seen("site B/b.jpg", 0.9), datetime=None)
    results = _write(tmp_path / "r.json", _doc(_seen("site A/a.jpg", 0.9), undated))
    rc = main(["results", "export", results, "--format", "camtrap-dp", "--out", str(tmp_path / "dp"),
               "--images", str(tmp_path), "--locations", str(tmp_path / "loc.csv")])
    err = capsys.readouterr().err
    assert rc == 0 and "left out" in err and "name no camera folder" not in err


def test_shards_cut_at_different_numbers_of_detections_per_image_do_not_merge(shipped_models_root, tmp_path, capsys):
    """``--max-detections`` was neither written to the results nor compared by ``results merge`` or
    ``--previous-results``: a shard cut at 5 boxes per image merged with one cut at 100, and the
    merged file said neither."""
    import numpy as np
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photos / f"{i}.jpg")
    base = ["detect", "--model", os.path.join(shipped_models_root, "tiny-pikachu"), str(photos), "--quiet"]
    assert main(base + ["--shard", "1/2", "--json", str(tmp_path / "s1.json"), "--max-detections", "5"]) == 0
    assert main(base + ["--shard", "2/2", "--json", str(tmp_path / "s2.json")]) == 0
    assert json.loads((tmp_path / "s1.json").read_text())["info"]["ssd_batch"]["max_detections"] == 5
    capsys.readouterr()
    merged = tmp_path / "all.json"
    assert main(["results", "merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-o", str(merged)]) == 2
    assert "max_detections differs: 5" in capsys.readouterr().err and not merged.exists()
    again = base + ["--json", str(merged), "--previous-results", str(tmp_path / "s1.json")]
    assert main(again) == 2                                # its entries would pass as this run's
    assert "--max-detections 5" in capsys.readouterr().err and not merged.exists()


def test_a_second_run_over_a_timelapse_folder_leaves_its_results_and_databases_out(tmp_path, capsys,
                                                                                   shipped_models_root):
    """Timelapse keeps its .tdb/.ddb and the results file in the season's root folder: a second
    run over it listed them (and any earlier run's CSV) as failed images, counted in the summary
    and linked into the sort's ``failed/``. They are counted and left out; a file named on the
    command line is still tried, and a stray non-photo of another kind is still a failure."""
    from PIL import Image

    from ssd.camtrap.folders import list_inputs

    season = tmp_path / "season"
    (season / "cam1").mkdir(parents=True)
    Image.new("RGB", (64, 48), (90, 120, 60)).save(season / "cam1" / "a.jpg")
    for companion in ("results.json", "TimelapseData.ddb", "Template.tdb", "cam1/old.CSV", "counts.xlsx"):
        (season / companion).write_bytes(b"not a photo")
    (season / "cam1" / "notes.txt").write_text("field notes")
    files = list_inputs([str(season)], recursive=True)
    assert files.names == ["cam1/a.jpg", "cam1/notes.txt"] and files.companions_skipped == 5
    assert list_inputs([str(season / "results.json")]).names == [str(season / "results.json")]
    out = tmp_path / "again.json"
    model = os.path.join(shipped_models_root, "tiny-pikachu")
    assert main(["detect", "--model", model, str(season), "--recursive", "--json", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 failed" in err and "5 results or database file(s) skipped" in err
    assert [im["file"] for im in json.loads(out.read_text())["images"]] == ["cam1/a.jpg", "cam1/notes.txt"]


def test_a_locations_file_without_the_needed_columns_is_refused_by_its_header(tmp_path, capsys):
    """``camera,lat,lon`` was blamed on line 2 ("needs a deploymentID") and ``…,lat,lon`` on "latitude
    and longitude must be numbers": the header was wrong, not the row. ``camera`` names the folder, as
    summary and sort call it."""
    results = _write(tmp_path / "r.json", _doc(_seen("siteA/a.jpg", 0.9)))
    for header, ok in (("camera,latitude,longitude", True), ("site,latitude,longitude", False),
                       ("deploymentID,lat,lon", False)):
        (tmp_path / "loc.csv").write_text(f"{header}\nsiteA,10,20\n")
        out = tmp_path / f"dp-{header.replace(',', '-')}"
        rc = main(["results", "export", results, "--format", "camtrap-dp", "--out", str(out),
                   "--images", str(tmp_path), "--locations", str(tmp_path / "loc.csv")])
        err = capsys.readouterr().err
        if ok:
            assert rc == 0 and "siteA,siteA,siteA,10.0,20.0" in (out / "deployments.csv").read_text(encoding="utf-8")
        else:
            assert rc == 2 and "line 2" not in err and not out.exists()
            assert f"header is '{header}'" in err and "deploymentID (or camera), latitude, longitude" in err


def test_the_workbook_reads_photo_times_from_the_images_folder_as_the_package_does(tmp_path, capsys):
    """MegaDetector writes no times unless asked: Camtrap DP read each photo's EXIF time from
    ``--images``, the XLSX export of the same file left the time column empty and made each photo
    an episode of its own. Both now read the times the same way; times in the results stay first."""
    from openpyxl import load_workbook
    from PIL import Image

    photos = tmp_path / "photos"
    (photos / "cam").mkdir(parents=True)
    for name, when in (("a.jpg", "2024:05:01 10:00:00"), ("b.jpg", "2024:05:01 10:00:20")):
        exif = Image.Exif()
        exif[306] = when
        Image.new("RGB", (8, 8)).save(photos / "cam" / name, exif=exif)
    results = _write(tmp_path / "r.json", _doc(_seen("cam/a.jpg", 0.9, when=None), _seen("cam/b.jpg", 0.8, when=None),
                                               _seen("cam/c.jpg", 0.7, when="2024:05:02 08:00:00")))
    out = tmp_path / "r.xlsx"
    assert main(["results", "export", results, "--format", "xlsx", "--out", str(out), "--images", str(photos)]) == 0
    rows = list(load_workbook(out)["images"].iter_rows(values_only=True))
    head = rows[0]
    got = {r[head.index("file")]: (r[head.index("datetime")], r[head.index("episode")]) for r in rows[1:]}
    assert got["cam/a.jpg"][0] == "2024:05:01 10:00:00" and got["cam/b.jpg"][0] == "2024:05:01 10:00:20"
    assert got["cam/c.jpg"][0] == "2024:05:02 08:00:00"
    assert got["cam/a.jpg"][1] == got["cam/b.jpg"][1] != got["cam/c.jpg"][1]     # one burst, from the read times
    assert main(["results", "export", results, "--format", "xlsx", "--out", str(out),   # a workbook is kept
                 "--images", str(tmp_path / "elsewhere"), "--replace"]) == 0            # unless --replace
    rows = list(load_workbook(out)["images"].iter_rows(values_only=True))
    assert [r[head.index("datetime")] for r in rows[1:]] == [None, None, "2024:05:02 08:00:00"]
