"""Camera-trap batches: folders in, MegaDetector-valid results out, resumable, shardable, sortable."""
import csv
import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from kill_helpers import kill9_after_first_checkpoint
from ssd.camtrap.batch_run import run_batch
from ssd.camtrap.settings import RunSettings
from ssd.camtrap.megadetector import ResultsError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ssd", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def _photo(path, seed, size=(320, 180), when=None):
    from ssd.data.synthetic import render_example

    img, _ = render_example(seed=seed, index=seed % 7, split="val")
    exif = Image.Exif()
    if when:
        exif[306] = when
    Image.fromarray(img).resize(size).save(path, quality=85, exif=exif)


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    """site/camera folders: good JPEGs (with EXIF times), a truncated JPEG, a text file, a hidden file."""
    root = tmp_path_factory.mktemp("season")
    for i, rel in enumerate(["siteA/cam1/a.jpg", "siteA/cam1/b.jpg", "siteA/cam2/c.jpg", "siteB/d.jpg",
                             "top.jpg"]):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        _photo(p, i, when=f"2024:06:0{i + 1} 05:30:00")
    data = (root / "top.jpg").read_bytes()
    (root / "siteB" / "cut.jpg").write_bytes(data[: len(data) // 2])
    (root / "siteA" / "notes.txt").write_text("field notes, not a photo")
    (root / ".DS_Store").write_bytes(b"\0\0")
    return str(root)


@pytest.fixture(scope="module")
def detector():
    from ssd.inference.detector import Detector

    return Detector.load(MODEL)


def _strip_times(doc):
    doc = json.loads(json.dumps(doc))
    doc["info"].pop("detection_completion_time", None)
    return doc


def test_folder_run_passes_megadetector_validator(season, tmp_path):
    from megadetector.postprocessing.validate_batch_results import (ValidateBatchResultsOptions,
                                                                    validate_batch_results)

    out, out_csv = tmp_path / "season.json", tmp_path / "season.csv"
    r = run_cli("detect", "--model", MODEL, season, "--recursive", "--json", str(out), "--csv", str(out_csv),
                "--threshold", "0.3", "--quiet")
    assert r.returncode == 0 and "Traceback" not in r.stderr  # two failures are reported, the rest processed
    assert "2 failed" in r.stderr and "1 hidden file(s) skipped" in r.stderr and "images/s" in r.stderr
    opts = ValidateBatchResultsOptions()
    opts.check_image_existence, opts.relative_path_base = True, season
    assert validate_batch_results(str(out), opts)["validation_results"]["errors"] == []
    doc = json.loads(out.read_text())
    assert doc["info"]["format_version"] == "1.6"
    meta = doc["info"]["detector_metadata"]
    assert meta["typical_detection_threshold"] == 0.3 and 0 < meta["conservative_detection_threshold"] < 0.3
    files = [im["file"] for im in doc["images"]]
    assert files == ["siteA/cam1/a.jpg", "siteA/cam1/b.jpg", "siteA/cam2/c.jpg", "siteA/notes.txt",
                     "siteB/cut.jpg", "siteB/d.jpg", "top.jpg"]
    by = {im["file"]: im for im in doc["images"]}
    for bad in ("siteA/notes.txt", "siteB/cut.jpg"):
        assert by[bad]["detections"] is None and by[bad]["failure"]
    good = by["siteA/cam2/c.jpg"]
    assert good["failure"] is None and (good["width"], good["height"]) == (320, 180)
    assert good["datetime"] == "2024:06:03 05:30:00"
    confs = [d["conf"] for im in doc["images"] for d in im["detections"] or []]
    assert confs and min(confs) >= 0.005 and all(round(c, 3) == c for c in confs)
    assert max(len(im["detections"] or []) for im in doc["images"]) <= 100      # --max-detections
    assert all(im["detections"] == sorted(im["detections"], key=lambda d: -d["conf"])
               for im in doc["images"] if im["detections"])
    assert all(round(v, 4) == v for im in doc["images"] for d in im["detections"] or [] for v in d["bbox"])
    # CSV: a row per detection, plus one per image without any, plus one per failure
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    expected = sum(max(1, len(im["detections"] or [])) for im in doc["images"])
    assert len(rows) == expected and sum(1 for r in rows if r["error"]) == 2
    # --absolute-paths turns the relative names off
    r = run_cli("detect", "--model", MODEL, os.path.join(season, "siteB"), "--absolute-paths", "--quiet",
                "--json", str(tmp_path / "abs.json"))
    assert all(os.path.isabs(im["file"]) for im in json.loads((tmp_path / "abs.json").read_text())["images"])


def test_kill9_then_resume_gives_the_same_results(tmp_path):
    folder = tmp_path / "card"
    for i in range(90):
        sub = folder / f"cam{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        _photo(sub / f"{i:03d}.jpg", i, size=(96, 64))
    args = ["--model", MODEL, str(folder), "--recursive", "--batch-size", "1", "--workers", "1", "--quiet"]
    ckpt, out = tmp_path / "run.checkpoint.jsonl", tmp_path / "run.json"
    kill9_after_first_checkpoint(REPO, ["detect", *args, "--json", out, "--checkpoint-every", "3"], ckpt, out)
    done_before = ckpt.read_bytes().count(b"\n") - 1       # whole entry lines after the settings line
    assert 0 < done_before < 90
    r = run_cli(*["detect", *args, "--json", str(out), "--resume"])
    assert r.returncode == 0, r.stderr
    assert f"running: {done_before}/90" in r.stderr   # the checkpoint's images were not redone
    assert not ckpt.exists()
    r = run_cli(*["detect", *args, "--json", str(tmp_path / "once.json")])
    assert r.returncode == 0, r.stderr
    resumed, once = json.loads(out.read_text()), json.loads((tmp_path / "once.json").read_text())
    assert _strip_times(resumed) == _strip_times(once)


def test_resume_refuses_a_checkpoint_of_other_settings(season, tmp_path, detector):
    from ssd.camtrap.run_checkpoint import save_checkpoint

    opts = RunSettings(MODEL, [season], out_json=str(tmp_path / "o.json"), recursive=True, resume=True, nms=0.3)
    save_checkpoint(str(tmp_path / "o.checkpoint.json"), {"nms": 0.45}, [])
    with pytest.raises(ResultsError, match="other settings.*nms"):
        run_batch(opts, detector, stream=None)


def test_two_shards_merged_equal_one_run(season, tmp_path, detector):
    from ssd.camtrap.merging import merge_results
    from ssd.base.atomic import atomic_write_json

    base = dict(recursive=True, flag_repeats=2, threshold=0.01)
    one = run_batch(RunSettings(MODEL, [season], **base), detector, stream=None).document
    paths = []
    for i in (1, 2):
        res = run_batch(RunSettings(MODEL, [season], shard=(i, 2), out_json=str(tmp_path / f"s{i}.json"), **base),
                        detector, stream=None)
        assert 0 < res.total < 7
        paths.append(str(tmp_path / f"s{i}.json"))
    merged = merge_results(paths)
    assert _strip_times(merged)["images"] == _strip_times(one)["images"]
    assert merged["detection_categories"] == one["detection_categories"]
    with pytest.raises(ResultsError, match="overlap"):
        merge_results([paths[0], paths[0]])
    other = json.loads(open(paths[1]).read())
    other["detection_categories"] = {"1": "animal", "2": "person", "3": "vehicle"}
    atomic_write_json(str(tmp_path / "other.json"), other)
    with pytest.raises(ResultsError, match="same model"):
        merge_results([paths[0], str(tmp_path / "other.json")])
    r = run_cli("results", "merge", *paths, "-o", str(tmp_path / "all.json"))
    assert r.returncode == 0 and len(json.loads((tmp_path / "all.json").read_text())["images"]) == 7


def test_previous_results_are_not_processed_again(season, tmp_path, detector):
    first = run_batch(RunSettings(MODEL, [os.path.join(season, "siteA")], recursive=True,
                                   out_json=str(tmp_path / "old.json")), detector, stream=None).document
    old = json.loads((tmp_path / "old.json").read_text())
    old["images"] = [im for im in old["images"] if im["file"] != "cam1/b.jpg"]
    old["images"][0]["detections"] = [{"category": "1", "conf": 0.777, "bbox": [0.1, 0.1, 0.2, 0.2]}]
    (tmp_path / "old.json").write_text(json.dumps(old))
    calls = detector.forward_calls
    res = run_batch(RunSettings(MODEL, [os.path.join(season, "siteA")], recursive=True, batch_size=8,
                                 previous_results=str(tmp_path / "old.json")), detector, stream=None)
    assert detector.forward_calls - calls == 1               # only cam1/b.jpg went through the network
    by = {im["file"]: im for im in res.document["images"]}
    assert by["cam1/a.jpg"]["detections"][0]["conf"] == 0.777   # kept from the old file, not recomputed
    assert by["cam1/b.jpg"] == {im["file"]: im for im in first["images"]}["cam1/b.jpg"]


def test_summary_and_sort_counts_match_the_json(season, tmp_path):
    from ssd.camtrap.summary import summarize

    out = tmp_path / "r.json"
    run_cli("detect", "--model", MODEL, season, "--recursive", "--json", str(out), "--quiet")
    doc = json.loads(out.read_text())
    t = sorted(im["max_detection_conf"] for im in doc["images"] if im["detections"] is not None)[2]
    s = summarize(doc, t)
    with_det = sum(1 for im in doc["images"] if im["detections"] and im["max_detection_conf"] >= t)
    assert (s["images"], s["failed"], s["with_detections"]) == (7, 2, with_det)
    assert s["empty"] == 7 - 2 - with_det and s["per_class_images"]["pikachu"] == with_det
    r = run_cli("results", "summary", str(out), "--threshold", str(t), "--json")
    assert json.loads(r.stdout) == s
    r = run_cli("results", "sort", str(out), "--images", season, "--into", str(tmp_path / "sorted"),
                "--threshold", str(t))
    assert r.returncode == 0, r.stderr
    counted = {}
    for d, _, fs in os.walk(tmp_path / "sorted"):
        top = os.path.relpath(d, tmp_path / "sorted").split(os.sep)[0]
        counted[top] = counted.get(top, 0) + len(fs)
    assert counted.get("pikachu", 0) == with_det and counted.get("failed") == 2
    assert counted.get("empty", 0) == s["empty"]
    linked = tmp_path / "sorted" / "failed" / "siteA" / "notes.txt"
    assert linked.is_symlink() and os.path.exists(os.path.join(season, "siteA", "notes.txt"))  # never moved


def test_sort_refuses_paths_that_escape_the_target(tmp_path):
    from ssd.camtrap.sorting import sort_into_folders

    (tmp_path / "x.jpg").write_bytes(b"x")
    (tmp_path / "imgs").mkdir()
    doc = {"detection_categories": {"1": "animal"},
           "images": [{"file": "../x.jpg", "detections": [], "failure": None}]}
    with pytest.raises(ResultsError, match="outside the images folder"):
        sort_into_folders(doc, str(tmp_path / "imgs"), str(tmp_path / "out"), 0.2)


def test_repeated_boxes_in_one_camera_are_flagged():
    from ssd.camtrap.repeats import flag_repeats
    from ssd.camtrap.summary import summarize

    rock = [0.5, 0.5, 0.1, 0.1]
    images = [{"file": f"cam1/{i}.jpg", "failure": None,
               "detections": [{"category": "1", "conf": 0.9, "bbox": [0.5 + 0.002 * i, 0.5, 0.1, 0.1]}]}
              for i in range(4)]
    images.append({"file": "cam2/0.jpg", "failure": None,
                   "detections": [{"category": "1", "conf": 0.9, "bbox": rock}]})
    images.append({"file": "cam1/deer.jpg", "failure": None,
                   "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.3, 0.3]}]})
    assert flag_repeats(images, min_images=3, min_conf=0.2) == 4
    assert [bool(im["detections"][0].get("suspect")) for im in images] == [True] * 4 + [False, False]
    doc = {"detection_categories": {"1": "animal"}, "images": images}
    assert summarize(doc, 0.2)["with_detections"] == 2              # hidden by default
    assert summarize(doc, 0.2, hide_suspect=False)["with_detections"] == 6


def test_bad_inputs_give_clear_errors(tmp_path):
    r = run_cli("detect", "--model", MODEL, str(tmp_path), "--shard", "3/2")
    assert r.returncode == 2 and "I/N" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("results", "summary", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_browser_filters_pages_and_never_opens_files_outside_the_folder(season, detector, tmp_path):
    from ssd.camtrap.browse import filter_entries, image_path, page_count, page_of, picture

    doc = run_batch(RunSettings(MODEL, [season], recursive=True), detector, stream=None).document
    names = doc["detection_categories"]
    assert [e["file"] for e in filter_entries(doc, 0.0, state="failed")] == ["siteA/notes.txt", "siteB/cut.jpg"]
    assert len(filter_entries(doc, 0.0, state="with detections")) == 5
    assert len(filter_entries(doc, 1.01, state="empty")) == 5 and filter_entries(doc, 0.0, ["other"]) == []
    assert page_count(49) == 3 and len(page_of(list(range(49)), 3)) == 1 and page_of([1], 9) == [1]
    good = next(e for e in doc["images"] if e["file"] == "top.jpg")
    pic = picture(good, names, season, 0.0, side=100)
    assert pic is not None and max(pic.size) == 100
    assert image_path({"file": "../../etc/passwd"}, season) is None
    assert image_path({"file": "/etc/passwd"}, season) is None
    assert image_path({"file": "siteB/d.jpg"}, None) is None


def test_suspect_repeats_are_drawn_as_such_when_shown():
    from ssd.camtrap.browse import entry_detections

    entry = {"file": "cam1/a.jpg", "failure": None,
             "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], "suspect": True},
                            {"category": "1", "conf": 0.8, "bbox": [0.5, 0.5, 0.2, 0.2]}]}
    hidden = entry_detections(entry, {"1": "animal"}, 0.2, True, (100, 50))
    assert len(hidden) == 1 and hidden.classes[int(hidden.class_ids[0])] == "animal"
    shown = entry_detections(entry, {"1": "animal"}, 0.2, False, (100, 50))
    assert [shown.classes[int(c)] for c in shown.class_ids] == ["animal (suspect)", "animal"]
    assert shown.boxes[0].tolist() == pytest.approx([10, 5, 30, 15])


def test_summary_text_says_whether_suspect_repeats_are_counted():
    """``results summary --show-suspect`` counts the repeats in the class rows: the line about them
    must not say "not counted below" then (it did, beside rows that counted them)."""
    from ssd.camtrap.summary import summarize, summary_text
    from ssd.inference.filtering import ShownFilter

    doc = {"detection_categories": {"1": "animal"},
           "images": [{"file": "a.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2],
                                                        "suspect": True}]}]}
    hidden, shown = ShownFilter.of(0.2), ShownFilter.of(0.2, hide_suspect=False)
    assert "1 detection(s), not counted below" in summary_text(summarize(doc, hidden), hidden)
    text = summary_text(summarize(doc, shown), shown)
    assert "not counted" not in text and "1 detection(s), counted below" in text
    assert text.splitlines()[-1].split() == ["animal", "1", "1", "1"]


def test_summary_of_one_shard_says_its_counts_cover_only_that_shard(tmp_path, capsys):
    """A ``--shard 1/2`` run's file summarized alone counts only its files (a burst split between
    shards counts twice): the text, ``--json`` and the page must say so; a merged file (shard
    ``None``) and a file with a malformed shard say nothing."""
    from ssd.cli.main import main

    def summary(shard, *flags):
        doc = {"info": {"format_version": "1.6", "detector": "ssd-studio:test", "ssd_batch": {"shard": shard}},
               "detection_categories": {"1": "animal"},
               "images": [{"file": "a.jpg", "detections": [], "failure": None}]}
        path = tmp_path / "r.json"
        path.write_text(json.dumps(doc))
        assert main(["results", "summary", str(path), *flags]) == 0
        return capsys.readouterr().out

    text = summary([1, 2])
    assert "shard 1 of 2: counts cover only its files; merge the shards (`results merge`) for the season" in text
    assert json.loads(summary([1, 2], "--json"))["shard"] == [1, 2]
    for shard in (None, "x", [3, 2], [True, 2]):
        assert "shard" not in summary(shard) and "shard" not in json.loads(summary(shard, "--json"))
