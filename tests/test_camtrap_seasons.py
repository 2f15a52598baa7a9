"""Camera-trap seasons, second step: episodes, per-class thresholds, the threshold sweep, repeat
review, Camtrap DP and XLSX export — each checked against counts made by hand."""
import json
import os

import pytest
from PIL import Image

from ssd.camtrap.batch_run import run_batch
from ssd.camtrap.megadetector import ResultsError
from ssd.camtrap.settings import RunSettings
from ssd.cli.main import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")

# name → EXIF time (None: no EXIF). Names are not in time order, so the grouping must sort by time.
BURSTS = {
    "cam1/a.jpg": "2024:06:01 10:10:00", "cam1/b.jpg": "2024:06:01 10:00:02", "cam1/c.jpg": "2024:06:01 10:00:00",
    "cam1/d.jpg": "2024:06:01 10:00:04", "cam1/e.jpg": "2024:06:01 10:10:30",
    "cam2/c1.jpg": "2024:06:01 10:00:00", "cam2/c2.jpg": "2024:06:01 10:01:50", "cam2/c3.jpg": "2024:06:01 10:04:00",
    "cam2/u.jpg": None,
}
# by hand, gap 120 s: cam1 {c, b, d} and {a, e}; cam2 {c1, c2} (110 s apart), {c3} (130 s later), {u} (no time)
EPISODES = {"cam1/c.jpg": "cam1#1", "cam1/b.jpg": "cam1#1", "cam1/d.jpg": "cam1#1", "cam1/a.jpg": "cam1#2",
            "cam1/e.jpg": "cam1#2", "cam2/c1.jpg": "cam2#1", "cam2/c2.jpg": "cam2#1", "cam2/c3.jpg": "cam2#2",
            "cam2/u.jpg": "cam2#3"}
# hand-made detections: animal "1", person "2"
DETECTIONS = {"cam1/b.jpg": [("1", 0.9)], "cam1/a.jpg": [("2", 0.4)], "cam2/c2.jpg": [("1", 0.3)],
              "cam2/u.jpg": [("2", 0.6), ("1", 0.25)]}


@pytest.fixture(scope="module")
def detector():
    from ssd.inference.detector import Detector

    return Detector.load(MODEL)


@pytest.fixture(scope="module")
def bursts(tmp_path_factory, detector):
    """Two camera folders of EXIF-timed bursts, run through the detector; then hand-made detections."""
    root = tmp_path_factory.mktemp("bursts")
    out = tmp_path_factory.mktemp("bursts-results")
    for i, (name, when) in enumerate(BURSTS.items()):
        (root / name).parent.mkdir(exist_ok=True)
        exif = Image.Exif()
        if when:
            exif[306] = when
        Image.new("RGB", (64, 48), (20 * i, 90, 140)).save(root / name, exif=exif)
    res = run_batch(RunSettings(MODEL, (str(root),), recursive=True, out_json=str(out / "run.json")), detector,
                    stream=None)
    doc = res.document
    doc["detection_categories"] = {"1": "animal", "2": "person"}
    for im in doc["images"]:
        im["detections"] = [{"category": c, "conf": s, "bbox": [0.1, 0.2, 0.3, 0.4]}
                            for c, s in DETECTIONS.get(im["file"], [])]
        im["max_detection_conf"] = max((d["conf"] for d in im["detections"]), default=0.0)
    path = out / "hand.json"
    path.write_text(json.dumps(doc))
    return {"root": str(root), "results": str(path), "run": res.document}


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _tree(folder):
    out = {}
    for d, _, files in os.walk(folder):
        for f in files:
            out[os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/")] = True
    return sorted(out)


def test_episode_ids_follow_camera_folders_and_time_gaps(bursts):
    ids = {im["file"]: im["episode"] for im in bursts["run"]["images"]}
    assert ids == EPISODES
    assert bursts["run"]["info"]["ssd_batch"]["episode_gap"] == 120.0
    from ssd.camtrap.episodes import episode_ids

    doc = json.load(open(bursts["results"]))
    # a gap below 110 s splits c1/c2; one above 600 s joins cam1's two bursts
    assert episode_ids(doc, gap=100)[[im["file"] for im in doc["images"]].index("cam2/c2.jpg")] == "cam2#2"
    wide = dict(zip([im["file"] for im in doc["images"]], episode_ids(doc, gap=700)))
    assert wide["cam1/a.jpg"] == wide["cam1/c.jpg"] == "cam1#1"


def test_summary_counts_images_and_episodes_with_per_class_thresholds(bursts, capsys):
    code, out, _ = _cli(capsys, "results", "summary", bursts["results"], "--threshold", "0.35",
                        "--thresholds", "animal=0.2,person=0.5", "--json")
    s = json.loads(out)
    assert code == 0
    # by hand: b (animal .9), c2 (animal .3 ≥ .2), u (animal .25, person .6 ≥ .5); a's person .4 < .5
    assert (s["images"], s["with_detections"], s["empty"], s["failed"]) == (9, 3, 6, 0)
    assert s["per_class_images"] == {"animal": 3, "person": 1}
    e = s["episodes"]
    assert (e["episodes"], e["with_detections"], e["empty"], e["untimed"]) == (5, 3, 2, 1)
    assert e["per_class"] == {"animal": 3, "person": 1}
    # one threshold for all: a (person .4) counts, c2 (.3) and u's animal (.25) do not
    code, out, _ = _cli(capsys, "results", "summary", bursts["results"], "--threshold", "0.35", "--json")
    s = json.loads(out)
    assert (s["with_detections"], s["per_class_images"]) == (3, {"animal": 1, "person": 2})
    assert s["episodes"]["with_detections"] == 3 and s["episodes"]["per_class"] == {"animal": 1, "person": 2}
    code, out, _ = _cli(capsys, "results", "summary", bursts["results"], "--threshold", "0.35")
    assert "episodes" in out and "1 image(s) without a time stamp" in out
    code, _, err = _cli(capsys, "results", "summary", bursts["results"], "--thresholds", "fox=0.3")
    assert code == 2 and "no class 'fox'" in err


def test_sort_by_episode_keeps_bursts_together_and_per_class_thresholds_apply(bursts, capsys, tmp_path):
    flags = ["--threshold", "0.35", "--thresholds", "animal=0.2,person=0.5", "--images", bursts["root"]]
    code, _, err = _cli(capsys, "results", "sort", bursts["results"], "--into", tmp_path / "frames", *flags)
    assert code == 0, err
    assert _tree(tmp_path / "frames") == sorted(
        ["animal/cam1/b.jpg", "animal/cam2/c2.jpg", "animal_person/cam2/u.jpg"]
        + [f"empty/{f}" for f in ("cam1/a.jpg", "cam1/c.jpg", "cam1/d.jpg", "cam1/e.jpg", "cam2/c1.jpg",
                                  "cam2/c3.jpg")])
    code, _, err = _cli(capsys, "results", "sort", bursts["results"], "--into", tmp_path / "bursts", "--by-episode",
                        *flags)
    assert code == 0, err
    assert _tree(tmp_path / "bursts") == sorted(
        [f"animal/{f}" for f in ("cam1/b.jpg", "cam1/c.jpg", "cam1/d.jpg", "cam2/c1.jpg", "cam2/c2.jpg")]
        + ["animal_person/cam2/u.jpg"] + [f"empty/{f}" for f in ("cam1/a.jpg", "cam1/e.jpg", "cam2/c3.jpg")])


def test_threshold_sweep_counts_match_a_direct_count(bursts, capsys):
    from ssd.camtrap.sweep import SWEEP_THRESHOLDS

    doc = json.load(open(bursts["results"]))
    code, out, _ = _cli(capsys, "results", "summary", bursts["results"], "--threshold", "0.35", "--sweep", "--json")
    s = json.loads(out)
    assert s["thresholds"] == list(SWEEP_THRESHOLDS) and len(s["thresholds"]) == 19
    best = {im["file"]: max((d["conf"] for d in im["detections"]), default=-1) for im in doc["images"]}
    for k, t in enumerate(s["thresholds"]):
        assert s["images_with_detections"][k] == sum(v >= t for v in best.values())
        assert s["images_changed"][k] == sum((v >= t) != (v >= 0.35) for v in best.values())
        ep_best = {}
        for f, v in best.items():
            ep_best[EPISODES[f]] = max(ep_best.get(EPISODES[f], -1), v)
        assert s["episodes_with_detections"][k] == sum(v >= t for v in ep_best.values())
    assert s["images_changed"][s["thresholds"].index(0.35)] == 0
    assert s["per_class_images"]["person"][s["thresholds"].index(0.5)] == 1
    code, out, _ = _cli(capsys, "results", "summary", bursts["results"], "--sweep")
    assert code == 0 and "0.95" in out


def _repeats_doc():
    from ssd.camtrap.repeats import flag_repeats

    rock = [0.5, 0.5, 0.1, 0.1]
    images = [{"file": f"cam1/{i}.jpg", "failure": None, "detections": [
        {"category": "1", "conf": 0.8, "bbox": [0.5 + 0.002 * i, 0.5, 0.1, 0.1]},
        {"category": "1", "conf": 0.01, "bbox": rock}] + ([{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.3]}]
                                                          if i == 0 else [])} for i in range(4)]
    images += [{"file": f"cam2/{i}.jpg", "failure": None,
                "detections": [{"category": "1", "conf": 0.7, "bbox": [0.2, 0.6, 0.1, 0.1]}]} for i in range(3)]
    for im in images:
        im["max_detection_conf"] = max(d["conf"] for d in im["detections"])
    doc = {"info": {"format_version": "1.6", "detector": "ssd-studio:test",
                    "detector_metadata": {"typical_detection_threshold": 0.2}},
           "detection_categories": {"1": "animal"}, "images": images}
    assert flag_repeats(images, 3, 0.2) == 7
    return doc


def test_repeat_review_removes_false_positives_and_confirms_real_ones(tmp_path, capsys):
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    from ssd.camtrap.review import FALSE_POSITIVE, REAL, decisions_document, repeat_groups

    doc = _repeats_doc()
    groups = repeat_groups(doc)
    assert [(g.folder, len(g.members)) for g in groups] == [("cam1", 4), ("cam2", 3)]
    (tmp_path / "r.json").write_text(json.dumps(doc))
    decisions = decisions_document(doc, groups, {groups[0].id: FALSE_POSITIVE, groups[1].id: REAL},
                                   results=str(tmp_path / "r.json"))
    (tmp_path / "d.json").write_text(json.dumps(decisions))
    code, _, err = _cli(capsys, "results", "repeats", "apply", tmp_path / "d.json")
    assert code == 0, err
    clean = json.loads((tmp_path / "r.reviewed.json").read_text())
    cam1 = [im for im in clean["images"] if im["file"].startswith("cam1/")]
    # the rock goes at every score (0.8 flagged and the 0.01 copy); the deer in cam1/0.jpg stays
    assert [len(im["detections"]) for im in cam1] == [1, 0, 0, 0] and cam1[0]["max_detection_conf"] == 0.9
    cam2 = [im for im in clean["images"] if im["file"].startswith("cam2/")]
    assert all(len(im["detections"]) == 1 and "suspect" not in im["detections"][0] for im in cam2)
    review = clean["info"]["repeat_review"][-1]["groups"]
    assert [g.get("detections_removed", g.get("detections_confirmed")) for g in review] == [8, 3]
    assert validate_batch_results(str(tmp_path / "r.reviewed.json"))["validation_results"]["errors"] == []
    assert json.loads((tmp_path / "r.json").read_text()) == doc            # the original is untouched
    code, _, err = _cli(capsys, "results", "repeats", "apply", tmp_path / "d.json", "-o", tmp_path / "r.json")
    assert code == 2 and "must not replace" in err
    (tmp_path / "bad.json").write_text(json.dumps({"ssd_repeat_decisions": 1, "groups": [{"folder": 3}]}))
    code, _, err = _cli(capsys, "results", "repeats", "apply", tmp_path / "bad.json", "--results", tmp_path / "r.json")
    assert code == 2 and "groups[0]" in err


def test_camtrap_dp_package_validates_against_the_vendored_profile(bursts, tmp_path, capsys):
    from camtrap_dp_offline import validate_offline

    (tmp_path / "locations.csv").write_text("deploymentID,latitude,longitude\ncam1,52.1,5.2\n")
    out = tmp_path / "package"
    base = ["results", "export", bursts["results"], "--format", "camtrap-dp", "--out", out, "--threshold", "0.35",
            "--thresholds", "animal=0.2,person=0.5", "--images", bursts["root"], "--utc-offset", "+02:00"]
    code, _, err = _cli(capsys, *base)
    assert code == 2 and "latitude and longitude" in err and "cam1" in err and not out.exists()
    code, _, err = _cli(capsys, *base, "--locations", tmp_path / "locations.csv", "--latitude", "-33.9",
                        "--longitude", "18.4")
    assert code == 0, err
    report, served = validate_offline(str(out / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])
    assert any(u.endswith("camtrap-dp-profile.json") for u in served)      # the profile really was checked
    import csv

    rows = {t: list(csv.DictReader(open(out / f"{t}.csv"))) for t in ("deployments", "media", "observations")}
    assert {d["deploymentID"]: (d["latitude"], d["longitude"]) for d in rows["deployments"]} == {
        "cam1": ("52.1", "5.2"), "cam2": ("-33.9", "18.4")}
    assert len(rows["media"]) == 9
    untimed = next(m for m in rows["media"] if m["mediaID"] == "cam2/u.jpg")
    assert "modification time" in untimed["mediaComments"]
    kinds = sorted(o["observationType"] for o in rows["observations"])
    assert kinds == sorted(["animal", "animal", "animal", "human"] + ["blank"] * 6)
    b = next(o for o in rows["observations"] if o["mediaID"] == "cam1/b.jpg")
    assert (b["eventID"], b["eventStart"], b["eventEnd"]) == ("cam1#1", "2024-06-01T10:00:00+02:00",
                                                             "2024-06-01T10:00:04+02:00")
    assert b["classificationProbability"] == "0.9" and b["classifiedBy"] == "ssd-studio:tiny-pikachu"
    meta = json.load(open(out / "datapackage.json"))["ssdStudio"]
    assert meta["threshold"] == 0.35 and meta["class_thresholds"] == {"animal": 0.2, "person": 0.5}


def test_xlsx_opens_with_openpyxl_and_neutralizes_formulas(bursts, tmp_path, capsys):
    from openpyxl import load_workbook

    doc = json.load(open(bursts["results"]))
    doc["images"].append({"file": "=HYPERLINK(\"http://x\")", "failure": "not an image", "detections": None})
    (tmp_path / "r.json").write_text(json.dumps(doc))
    code, _, err = _cli(capsys, "results", "export", tmp_path / "r.json", "--format", "xlsx",
                        "--out", tmp_path / "r.xlsx", "--threshold", "0.35")
    assert code == 0, err
    wb = load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == ["images", "detections", "summary", "info"]
    images = list(wb["images"].iter_rows(values_only=True))
    assert images[0][:4] == ("file", "episode", "datetime", "state") and len(images) == 11
    assert images[-1][0] == "'=HYPERLINK(\"http://x\")" and images[-1][3] == "failed"
    assert len(list(wb["detections"].iter_rows())) == 1 + 3
    summary = {r[0]: r[1:] for r in wb["summary"].iter_rows(values_only=True)}
    assert summary["with detections"] == (3, 3) and summary["all"] == (10, 6)


def test_safe_cell_neutralizes_every_formula_start():
    from ssd.base.cells import safe_cell

    for bad in ("=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad) == "'" + bad
    assert safe_cell("cam1/a.jpg") == "cam1/a.jpg" and safe_cell(-3.5) == -3.5 and safe_cell(None) is None


def test_merge_regroups_episodes_split_between_shards(bursts, detector, tmp_path):
    from ssd.camtrap.merging import merge_results

    paths = []
    for i in (1, 2):
        paths.append(str(tmp_path / f"s{i}.json"))
        run_batch(RunSettings(MODEL, (bursts["root"],), recursive=True, shard=(i, 2), out_json=paths[-1]), detector,
                  stream=None)
    merged = {im["file"]: im["episode"] for im in merge_results(paths)["images"]}
    assert merged == EPISODES


def test_unknown_episode_gap_and_thresholds_are_refused_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["results", "summary", "x.json", "--thresholds", "animal"])
    assert "CLASS=THRESHOLD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["results", "summary", "x.json", "--episode-gap", "0"])
    with pytest.raises(ResultsError):
        from ssd.camtrap.camtrap_dp import check_offset
        check_offset("2 hours")


def test_a_decisions_file_nested_300000_deep_or_a_fifo_is_one_clear_error(tmp_path, capsys):
    """``[[[[…`` crashed ``repeats apply`` with a RecursionError traceback; a FIFO named as the
    decisions file hung it (SIGTERM did not end the blocked open)."""
    (tmp_path / "r.json").write_text(json.dumps(_repeats_doc()))
    (tmp_path / "deep.json").write_text("[" * 300_000 + "]" * 300_000)
    code, _, err = _cli(capsys, "results", "repeats", "apply", tmp_path / "deep.json", "--results", tmp_path / "r.json")
    assert code == 2 and "not a readable decisions file" in err and "nested" in err
    os.mkfifo(tmp_path / "fifo.json")
    code, _, err = _cli(capsys, "results", "repeats", "apply", tmp_path / "fifo.json", "--results", tmp_path / "r.json")
    assert code == 2 and "FIFO" in err
