"""Results files from anyone: checked on load, one clear error naming the entry, never a traceback,
never NaN or a path outside its folder written back out. Each test failed before its fix."""
from __future__ import annotations

import json
import math
import os

import pytest

from ssd.cli.main import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")


def _doc(images, threshold=0.2, **info):
    return {"info": {"format_version": "1.6", "detector": "ssd-studio:x",
                     "detector_metadata": {"typical_detection_threshold": threshold,
                                           "conservative_detection_threshold": 0.08}, **info},
            "detection_categories": {"1": "animal"}, "images": images}


def _det(conf=0.9, **kw):
    return {"category": "1", "conf": conf, "bbox": [0.1, 0.1, 0.2, 0.2], **kw}


def _img(file, dets=None, **kw):
    return {"file": file, "failure": None, "detections": [_det()] if dets is None else dets, **kw}


BAD = [  # (the document, what the error must name)
    (_doc([_img("a.jpg"), _img("b.jpg", [_det(conf="high")])]), "images[1] ('b.jpg').detections[0].conf"),
    (_doc([_img("a.jpg", ["x"])]), "images[0] ('a.jpg').detections[0]"),
    (_doc([_img("a.jpg", [_det(conf=float("nan"))])]), "conf is nan"),
    (_doc([_img("a.jpg", [_det(conf=2.5)])]), "within 0–1"),
    (_doc([_img("a.jpg", [{"category": "1", "conf": 0.5, "bbox": [0.1, "x", 0, 0]}])]), "bbox"),
    (_doc([_img("a.jpg", [{"category": "7", "conf": 0.5, "bbox": [0, 0, 1, 1]}])]), "category"),
    (dict(_doc([_img("a.jpg")]), info=[1]), "info is [1]"),
    (_doc([_img("a.jpg")], threshold="0.2"), "typical_detection_threshold"),
    (_doc([_img("a.jpg")], threshold=float("nan")), "typical_detection_threshold is nan"),
    (_doc([_img("a.jpg", width="wide")]), "width"),
    (_doc([{"file": 7, "detections": []}]), "images[0] has no 'file'"),
    (_doc([{"file": "a.jpg", "detections": [], "failure": "boom"}]), "has a failure and detections"),
    (_doc([_img("a.jpg", extra=json.loads("[" * 40 + "]" * 40))]), "nested more than"),
]


@pytest.mark.parametrize("doc, named", BAD, ids=[n for _, n in BAD])
@pytest.mark.parametrize("command", ["summary", "sort", "merge"])
def test_results_commands_refuse_a_bad_file_naming_the_entry(tmp_path, capsys, doc, named, command):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    good = tmp_path / "other.json"
    good.write_text(json.dumps(_doc([_img("z.jpg")])))
    argv = {"summary": ["results", "summary", str(path)],
            "sort": ["results", "sort", str(path), "--images", str(tmp_path), "--into", str(tmp_path / "out")],
            "merge": ["results", "merge", str(good), str(path), "-o", str(tmp_path / "all.json")]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and named in err and "r.json" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "all.json").exists()


def test_a_hundred_thousand_deep_results_file_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")
    for argv in (["results", "summary", str(path)], ["results", "merge", str(path), str(path), "-o", "x.json"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "deep.json" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["nan", "-5", "1.5", "inf"])
def test_summary_and_sort_thresholds_are_range_checked(tmp_path, capsys, value):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_doc([_img("a.jpg")])))
    for argv in (["results", "summary", str(path), "--threshold", value],
                 ["results", "sort", str(path), "--into", str(tmp_path / "o"), "--threshold", value]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and "--threshold" in capsys.readouterr().err


def test_bad_previous_results_are_refused_before_any_work(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image

    Image.new("RGB", (64, 48), (90, 120, 40)).save(photos / "a.jpg")
    Image.new("RGB", (64, 48), (20, 20, 20)).save(photos / "b.jpg")
    prev = tmp_path / "prev.json"
    from ssd.camtrap.megadetector import category_map
    from ssd.inference.detector import Detector

    classes = Detector.load(MODEL).classes
    doc = _doc([{"file": "a.jpg", "failure": None, "detections": [{"category": "1", "conf": "high", "bbox": "x"}]}])
    doc["detection_categories"] = category_map(classes)
    prev.write_text(json.dumps(doc))
    rc = main(["detect", "--model", MODEL, str(photos), "--previous-results", str(prev), "--flag-repeats", "2",
               "--csv", str(tmp_path / "out.csv"), "--json", str(tmp_path / "out.json"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "prev.json" in err and "images[0] ('a.jpg').detections[0].conf" in err
    assert not os.listdir(tmp_path / "photos") == [] and not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.checkpoint.jsonl").exists()


def test_merge_writes_json_and_refuses_names_outside_the_folder(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc([_img("cam1/x.jpg")])))
    for name in ("../../etc/passwd", "/etc/passwd", "cam1/../../up.jpg"):
        b.write_text(json.dumps(_doc([_img(name)])))
        assert main(["results", "merge", str(a), str(b), "-o", str(tmp_path / "all.json")]) == 2
        err = capsys.readouterr().err
        assert name in err and "outside" in err and not (tmp_path / "all.json").exists()
    b.write_text(json.dumps(_doc([_img("cam2/y.jpg", max_detection_conf=0.9)])))
    assert main(["results", "merge", str(a), str(b), "-o", str(tmp_path / "all.json")]) == 0
    text = (tmp_path / "all.json").read_text()
    merged = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} written"))
    assert [im["file"] for im in merged["images"]] == ["cam1/x.jpg", "cam2/y.jpg"]
    assert all(math.isfinite(d["conf"]) for im in merged["images"] for d in im["detections"])


def test_absolute_names_merge_when_every_shard_has_them(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc([_img("/data/season/cam1/x.jpg")])))
    b.write_text(json.dumps(_doc([_img("/data/season/cam2/y.jpg")])))
    assert main(["results", "merge", str(a), str(b), "-o", str(tmp_path / "all.json")]) == 0
    b.write_text(json.dumps(_doc([_img("cam2/y.jpg")])))
    assert main(["results", "merge", str(a), str(b), "-o", str(tmp_path / "mixed.json")]) == 2


def test_detect_says_when_it_will_replace_an_earlier_results_file(tmp_path, capsys):
    """As MegaDetector's batch run warns: an earlier season's results (maybe another model's) named
    again by --json are replaced when the run finishes; the note comes first, so Ctrl-C keeps them."""
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (64, 48), (90, 120, 40)).save(photos / "a.jpg")
    out, csv = tmp_path / "season.json", tmp_path / "season.csv"
    argv = ["detect", "--model", MODEL, str(photos), "--json", str(out), "--csv", str(csv), "--quiet"]
    assert main(argv) == 0
    assert "replace" not in capsys.readouterr().err          # nothing there before
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"{out} exists" in err and f"{csv} exists" in err and "replaces" in err
    assert err.index("exists") < err.index("image(s) processed")


def test_a_photo_with_damaged_exif_prints_no_raw_pillow_warning(tmp_path):
    """Pillow warns 'Corrupt EXIF data' with its own source line: a second, raw message on the terminal
    for every such photo of a season. The photo is read (its EXIF time is simply absent)."""
    import subprocess
    import sys

    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    exif = b"Exif\x00\x00" + b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x05" + b"\xff" * 20
    Image.new("RGB", (64, 48), (90, 120, 40)).save(photos / "a.jpg", exif=exif)
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", MODEL, str(photos), "--json",
                        str(tmp_path / "r.json"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Warning" not in r.stderr and "EXIF" not in r.stderr, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["images"][0]["failure"] is None
