"""``results export --format csv``: a results file (ours or MegaDetector's) as the CSV ``detect --csv`` writes.

Why: a researcher holding a results file had no command for its CSV; MegaDetector has one
(``convert_output_format.py``). The CSV is detect's: one row per detection down to the floor (a
spreadsheet or script re-thresholds it), one per image without any, one per failure; no formula in
a cell; written under a temporary name; never over a file without ``--replace``.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from ssd.cli.main import main


def _doc(images, cats=None):
    return {"info": {"format_version": "1.4"}, "detection_categories": cats or {"1": "animal", "2": "person"},
            "images": images}


def _write(path, doc) -> str:
    path.write_text(json.dumps(doc, indent=1))
    return str(path)


def _expected(path) -> str:
    from ssd.camtrap.megadetector import read_results
    from ssd.camtrap.results import results_csv

    return results_csv(read_results(path))


def _entries(n=5):
    out = []
    for i in range(n):
        dets = [{"category": "1", "conf": 0.9 - i / 10, "bbox": [0.1, 0.2, 0.3, 0.4]},
                {"category": "2", "conf": 0.01, "bbox": [0.5, 0.5, 0.1, 0.1], "suspect": True}]
        out.append({"file": f"cam{i % 2}/IMG_{i}.JPG", "width": 640, "height": 480, "detections": dets})
    out.append({"file": "=HYPERLINK(\"x\").jpg", "width": 10, "height": 10, "detections": []})
    out.append({"file": "cam0/broken.jpg", "detections": None, "failure": "-cannot read"})
    return out


def test_detect_json_exported_to_csv_is_the_csv_detect_wrote(shipped_models_root, tmp_path, capsys):
    """The same run's CSV, byte for byte: from its JSON, as ``detect --csv`` wrote it beside."""
    photos = tmp_path / "photos"
    (photos / "cam1").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photos / "cam1" / f"p{i}.jpg")
    (photos / "cam1" / "broken.jpg").write_bytes(b"not a jpeg")
    rc = main(["detect", "--model", os.path.join(shipped_models_root, "tiny-pikachu"), str(photos), "--recursive",
               "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "detect.csv"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    rc = main(["results", "export", str(tmp_path / "r.json"), "--format", "csv", "--out", str(tmp_path / "x.csv")])
    assert rc == 0, capsys.readouterr().err
    detect_csv = (tmp_path / "detect.csv").read_bytes()
    assert detect_csv.count(b"\n") > 4                   # boxes down to the floor, and the failure's row
    assert (tmp_path / "x.csv").read_bytes() == detect_csv


def test_every_box_down_to_the_floor_with_its_suspect_flag_and_the_cells_guarded(tmp_path, capsys):
    path = _write(tmp_path / "r.json", _doc(_entries()))
    rc = main(["results", "export", path, "--format", "csv", "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert rc == 0, err
    text = (tmp_path / "x.csv").read_text(encoding="utf-8")
    assert text == _expected(path)
    assert ",person,0.010," in text and ",yes," in text          # below any threshold, and flagged
    assert "'=HYPERLINK" in text and "'-cannot read" in text
    assert "7 image(s)" in err and "x.csv" in err


def test_dash_writes_the_csv_to_stdout_and_only_it(tmp_path, capsys):
    path = _write(tmp_path / "r.json", _doc(_entries()))
    rc = main(["results", "export", path, "--format", "csv", "--out", "-"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out == _expected(path)
    assert not os.path.exists("-") and not (tmp_path / "-").exists()


def test_an_existing_file_is_kept_without_replace_and_the_results_file_never_replaced(tmp_path, capsys):
    path = _write(tmp_path / "r.json", _doc(_entries()))
    out = tmp_path / "x.csv"
    out.write_text("mine")
    assert main(["results", "export", path, "--format", "csv", "--out", str(out)]) == 2
    assert "--replace" in capsys.readouterr().err and out.read_text() == "mine"
    assert main(["results", "export", path, "--format", "csv", "--out", str(out), "--replace"]) == 0
    assert out.read_text(encoding="utf-8") == _expected(path)
    before = (tmp_path / "r.json").read_bytes()
    assert main(["results", "export", path, "--format", "csv", "--out", path, "--replace"]) == 2
    assert (tmp_path / "r.json").read_bytes() == before
    assert main(["results", "export", path, "--format", "csv", "--out", str(tmp_path)]) == 2
    assert "folder" in capsys.readouterr().err


def test_threshold_flags_are_refused_the_csv_holds_every_box(tmp_path, capsys):
    """A threshold would silently thin the rows a script re-thresholds: said, not ignored."""
    path = _write(tmp_path / "r.json", _doc(_entries()))
    for flags in (["--threshold", "0.5"], ["--thresholds", "animal=0.5"], ["--show-suspect"]):
        assert main(["results", "export", path, "--format", "csv", "--out", str(tmp_path / "x.csv"), *flags]) == 2
        assert "every detection" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_the_threshold_refusal_reads_as_a_sentence_for_one_flag_or_several(tmp_path, capsys):
    """The refusal names the flags in plain grammar: "does not apply; leave it out" for one,
    "do not apply; leave them out" for several (it read "do(es)" before)."""
    path = _write(tmp_path / "r.json", _doc(_entries()))
    out = str(tmp_path / "x.csv")
    assert main(["results", "export", path, "--format", "csv", "--out", out, "--threshold", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--threshold does not apply; leave it out" in err and "(es)" not in err
    assert main(["results", "export", path, "--format", "csv", "--out", out, "--threshold", "0.5",
                 "--show-suspect"]) == 2
    err = capsys.readouterr().err
    assert "--threshold, --show-suspect do not apply; leave them out" in err and "(es)" not in err


def test_path_prefix_makes_the_names_relative_as_the_other_exports_do(tmp_path, capsys):
    images = _entries(3)[:3]
    for im in images:
        im["file"] = "D:\\season\\" + im["file"].replace("/", "\\")
    path = _write(tmp_path / "r.json", _doc(images))
    rc = main(["results", "export", path, "--format", "csv", "--out", "-", "--path-prefix", "D:\\season"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert [r.split(",")[0] for r in out.splitlines()[1:3]] == ["cam0/IMG_0.JPG", "cam0/IMG_0.JPG"]
    rc = main(["results", "export", path, "--format", "csv", "--out", "-", "--path-prefix", "E:\\other"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and "E:" in err


def test_a_time_source_met_late_gets_its_column_as_the_whole_file_csv_does(tmp_path, capsys, monkeypatch):
    """The column is known only once every entry is read: a file whose first video comes late is
    written again with it (every row, the earlier ones with an empty cell)."""
    import ssd.camtrap.results_stream as results_stream

    monkeypatch.setattr(results_stream, "CHUNK", 2, raising=False)
    images = _entries(6)
    images.append({"file": "cam1/clip.mp4", "width": 640, "height": 480, "datetime": "2024:05:01 10:00:00",
                   "datetime_source": "mvhd", "detections": [{"category": "1", "conf": 0.7, "bbox": [0, 0, 1, 1],
                                                              "frame_number": 3}]})
    path = _write(tmp_path / "r.json", _doc(images))
    rc = main(["results", "export", path, "--format", "csv", "--out", str(tmp_path / "x.csv")])
    assert rc == 0, capsys.readouterr().err
    text = (tmp_path / "x.csv").read_text(encoding="utf-8")
    assert text == _expected(path) and text.splitlines()[0].endswith(",datetime_source")
    assert text.splitlines()[-1].endswith(",mvhd")


def test_megadetector_order_categories_after_the_images(tmp_path, capsys):
    """MegaDetector writes its categories after the images: the same CSV as of the file read whole."""
    doc = _doc(_entries())
    text = '{"images": ' + json.dumps(doc["images"]) + ', "detection_categories": ' + \
        json.dumps(doc["detection_categories"]) + ', "info": {"format_version": "1.4"}}'
    (tmp_path / "md.json").write_text(text)
    rc = main(["results", "export", str(tmp_path / "md.json"), "--format", "csv", "--out", str(tmp_path / "x.csv")])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "x.csv").read_text(encoding="utf-8") == _expected(str(tmp_path / "md.json"))


def test_a_broken_file_is_refused_as_read_results_refuses_it_and_nothing_written(tmp_path, capsys):
    from ssd.camtrap.megadetector import read_results

    path = tmp_path / "r.json"
    path.write_text(json.dumps(_doc(_entries()))[:-40])
    with pytest.raises(Exception) as whole:
        read_results(str(path))
    rc = main(["results", "export", str(path), "--format", "csv", "--out", str(tmp_path / "x.csv")])
    assert rc == 2 and str(whole.value) in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["r.json"]


def test_the_library_call_the_page_makes_is_the_same_csv_as_bytes(tmp_path):
    from ssd.camtrap.results_csv import results_csv_bytes

    path = _write(tmp_path / "r.json", _doc(_entries()))
    assert results_csv_bytes(path) == _expected(path).encode("utf-8")


def test_a_name_that_is_not_utf8_is_written_as_detect_names_it_not_a_traceback(tmp_path, capsys):
    """Another tool's file may hold a file system's undecodable byte as a lone surrogate (``\\udcff``),
    which UTF-8 cannot encode: written ``\\xff`` as detect writes such a name; any other lone
    surrogate as its escape."""
    doc = _doc([{"file": "cam1/a\udcff.jpg", "detections": []},
                {"file": "cam1/b.jpg", "detections": None, "failure": "odd \ud800 text"}])
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc), encoding="ascii")
    rc = main(["results", "export", str(path), "--format", "csv", "--out", str(tmp_path / "x.csv")])
    assert rc == 0, capsys.readouterr().err
    rows = (tmp_path / "x.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith("cam1/a\\xff.jpg,") and rows[2].endswith(",odd \\ud800 text,,")


@pytest.mark.parametrize("fmt, flags", [
    ("csv", ["--episode-gap", "60"]), ("csv", ["--camera-depth", "1"]), ("csv", ["--images", "."]),
    ("csv", ["--locations", "x.csv"]), ("xlsx", ["--latitude", "1", "--longitude", "2"]),
    ("xlsx", ["--taxa", "t.csv"]), ("xlsx", ["--utc-offset", "+02:00"]), ("coco", ["--title", "T"]),
    ("xlsx", ["--sampling-design", "targeted"]), ("csv", ["--contributor", "me"])])
def test_a_flag_the_format_does_not_use_is_refused_not_ignored(tmp_path, capsys, fmt, flags):
    """A flag given for nothing (a Camtrap DP position on a workbook, episodes on the CSV) would let a
    person believe the output honours it: each is named, and nothing is written."""
    path = _write(tmp_path / "r.json", _doc(_entries()))
    out = tmp_path / f"x.{fmt}"
    assert main(["results", "export", path, "--format", fmt, "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert flags[0] in err and f"--format {fmt}" in err and err.count("\n") == 1
    assert not out.exists()


def test_the_flags_each_format_uses_are_accepted(tmp_path, capsys):
    path = _write(tmp_path / "r.json", _doc(_entries()))
    assert main(["results", "export", path, "--format", "xlsx", "--out", str(tmp_path / "x.xlsx"),
                 "--episode-gap", "60", "--camera-depth", "1", "--images", str(tmp_path)]) == 0
    assert main(["results", "export", path, "--format", "coco", "--out", str(tmp_path / "x.json"),
                 "--images", str(tmp_path), "--threshold", "0.5"]) == 0


def test_a_workbook_never_replaces_the_results_nor_another_file_without_replace(tmp_path, capsys):
    """``--format xlsx --out R.json`` replaced the results file itself with a workbook, and any
    existing file went without a word; now as the CSV and COCO files: never the results, another
    file only with --replace."""
    path = _write(tmp_path / "r.json", _doc(_entries()))
    before = (tmp_path / "r.json").read_bytes()
    assert main(["results", "export", path, "--format", "xlsx", "--out", path, "--replace"]) == 2
    assert (tmp_path / "r.json").read_bytes() == before
    mine = tmp_path / "mine.xlsx"
    mine.write_bytes(b"my own notes")
    capsys.readouterr()
    assert main(["results", "export", path, "--format", "xlsx", "--out", str(mine)]) == 2
    assert "--replace" in capsys.readouterr().err and mine.read_bytes() == b"my own notes"
    assert main(["results", "export", path, "--format", "xlsx", "--out", str(mine), "--replace"]) == 0
    assert mine.read_bytes()[:2] == b"PK"
