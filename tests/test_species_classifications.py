"""Species classifications (MegaDetector + a classifier: SpeciesNet, AddaxAI, MegaDetector's own
classification pipeline): every command that rewrites a results file keeps them, and the tables,
the summary and Camtrap DP show them.

The format: top-level ``classification_categories`` (id -> name), optionally
``classification_category_descriptions`` (id -> a taxonomy string; SpeciesNet writes
``uuid;class;order;family;genus;species;common name``), and per detection ``classifications``,
``[[id, score], ...]``.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, List

import pytest

from ssd.cli.main import main
from test_camtrap_page import season  # noqa: F401  (the fixture)

CLASSES = {"3": "red deer", "7": "wild boar", "9": "=HYPERLINK(\"x\")"}
DESCRIPTIONS = {"3": "a1b2;mammalia;artiodactyla;cervidae;cervus;elaphus;red deer",
                "7": "c3d4;mammalia;artiodactyla;suidae;sus;scrofa;wild boar",
                "9": "e5f6;;;;;;blank"}
DEER = [["3", 0.92], ["7", 0.05]]
BOAR = [["3", 0.2], ["7", 0.61]]          # not highest first: the top is found, not assumed


def _det(conf: float, classifications: List[Any], box=(0.1, 0.2, 0.3, 0.4)) -> Dict[str, Any]:
    return {"category": "1", "conf": conf, "bbox": list(box), "classifications": classifications}


def classified_doc() -> Dict[str, Any]:
    """A small file as MegaDetector + SpeciesNet writes it: two cameras, a deer, a boar, an empty photo."""
    images = [{"file": "camA/img0.jpg", "max_detection_conf": 0.9, "detections": [_det(0.9, DEER)]},
              {"file": "camB/img1.jpg", "max_detection_conf": 0.8,
               "detections": [_det(0.8, BOAR), _det(0.3, [["9", 0.7]], (0.5, 0.5, 0.1, 0.1))]},
              {"file": "camB/img2.jpg", "max_detection_conf": 0.0, "detections": []}]
    return {"info": {"format_version": "1.6", "detector": "md_v5a.0.0.pt",
                     "classifier": "speciesnet", "detection_completion_time": "2024-06-01 10:00:00"},
            "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
            "classification_categories": dict(CLASSES),
            "classification_category_descriptions": dict(DESCRIPTIONS),
            "images": images}


def _write(path, doc: Dict[str, Any]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def _load(path) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _kept(doc: Dict[str, Any], original: Dict[str, Any]) -> None:
    """``doc`` holds ``original``'s classification keys and each detection's classifications, exactly."""
    assert doc["classification_categories"] == original["classification_categories"]
    assert doc["classification_category_descriptions"] == original["classification_category_descriptions"]
    theirs = {im["file"].replace("\\", "/").rsplit("/", 2)[-2:][-1]: im for im in doc["images"]}
    for im in original["images"]:
        got = theirs[im["file"].rsplit("/", 1)[-1]]
        assert [d.get("classifications") for d in got["detections"]] == \
            [d.get("classifications") for d in im["detections"]]


# ---- 1. never lose them ---------------------------------------------------------------------------

def _halves(tmp_path, doc: Dict[str, Any]):
    a, b = copy.deepcopy(doc), copy.deepcopy(doc)
    a["images"], b["images"] = doc["images"][:1], doc["images"][1:]
    return _write(tmp_path / "a.json", a), _write(tmp_path / "b.json", b)


def test_merge_keeps_the_classifications(tmp_path, capsys):
    doc = classified_doc()
    a, b = _halves(tmp_path, doc)
    out = tmp_path / "all.json"
    assert main(["results", "merge", "-o", str(out), a, b]) == 0, capsys.readouterr().err
    _kept(_load(out), doc)
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    assert validate_batch_results(str(out))["validation_results"]["errors"] == []


def test_merge_refuses_files_whose_classification_categories_differ(tmp_path, capsys):
    doc = classified_doc()
    a, b = _halves(tmp_path, doc)
    other = _load(b)
    other["classification_categories"]["3"] = "roe deer"
    _write(tmp_path / "b.json", other)
    out = tmp_path / "all.json"
    assert main(["results", "merge", "-o", str(out), a, b]) == 2
    err = capsys.readouterr().err
    assert "classification categories" in err and "roe deer" in err
    assert not out.exists()
    del other["classification_categories"], other["classification_category_descriptions"]
    _write(tmp_path / "b.json", other)                  # one classified, one not: refused as well
    assert main(["results", "merge", "-o", str(out), a, b]) == 2
    assert "classification categories" in capsys.readouterr().err


def test_split_keeps_the_classifications_and_its_parts_merge_back(tmp_path, capsys):
    doc = classified_doc()
    path = _write(tmp_path / "season.json", doc)
    parts = tmp_path / "parts"
    assert main(["results", "split", path, "--out", str(parts)]) == 0, capsys.readouterr().err
    files = sorted(str(p) for p in parts.iterdir())
    for f in files:
        part = _load(f)
        assert part["classification_categories"] == CLASSES
        assert part["classification_category_descriptions"] == DESCRIPTIONS
    out = tmp_path / "all.json"
    assert main(["results", "merge", "-o", str(out), *files]) == 0, capsys.readouterr().err
    _kept(_load(out), doc)


def test_rebase_keeps_the_classifications(tmp_path, capsys):
    doc = classified_doc()
    out = tmp_path / "new.json"
    rel = copy.deepcopy(doc)
    for im in rel["images"]:
        im["file"] = "D:\\season\\" + im["file"].replace("/", "\\")
    path = _write(tmp_path / "win.json", rel)
    assert main(["results", "rebase", path, "--relative-to", "D:\\season", "-o", str(out)]) == 0, \
        capsys.readouterr().err
    _kept(_load(out), doc)


def test_repeats_apply_keeps_the_classifications(tmp_path, capsys):
    from ssd.camtrap.review import REAL

    doc = classified_doc()
    doc["images"][1]["detections"][1]["suspect"] = True
    path = _write(tmp_path / "r.json", doc)
    decisions = {"ssd_repeat_decisions": 1, "iou": 0.9, "results": path,
                 "groups": [{"id": "camB@1", "folder": "camB", "bbox": [0.5, 0.5, 0.1, 0.1], "decision": REAL,
                             "files": ["camB/img1.jpg"]}]}
    _write(tmp_path / "d.json", decisions)
    assert main(["results", "repeats", "apply", str(tmp_path / "d.json")]) == 0, capsys.readouterr().err
    _kept(_load(tmp_path / "r.reviewed.json"), doc)


@pytest.mark.parametrize("as_opened", [True, False])
def test_the_pages_json_download_keeps_the_classifications(tmp_path, as_opened):
    from ssd.camtrap.page_results import open_compact, results_json_bytes, whole_doc

    doc = classified_doc()
    opened, index = open_compact(_write(tmp_path / "r.json", doc))
    _kept(json.loads(results_json_bytes(opened, index, as_opened)), doc)
    _kept(whole_doc(opened, index), doc)


def test_detect_with_previous_results_keeps_the_classifications_of_the_entries_it_carries(tmp_path):
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.settings import RunSettings
    from test_megadetector_files import _Detector, _photo

    images = tmp_path / "season"
    for name in ("img0.jpg", "img9.jpg"):
        _photo(images / name, "2024:05:01 10:00:00")
    previous = classified_doc()
    previous["info"]["detector"] = "ssd-studio:x"        # an earlier card of this run's model, then classified
    previous["images"] = [dict(previous["images"][0], file="img0.jpg")]
    path = _write(tmp_path / "previous.json", previous)
    out = tmp_path / "r.json"
    run_batch(RunSettings("models/x", [str(images)], out_json=str(out), previous_results=path), _Detector(),
              stream=None)
    doc = _load(out)
    assert doc["classification_categories"] == CLASSES
    assert doc["classification_category_descriptions"] == DESCRIPTIONS
    carried = {im["file"]: im for im in doc["images"]}["img0.jpg"]
    assert [d["classifications"] for d in carried["detections"]] == [DEER]


# ---- 2. the tables show them ----------------------------------------------------------------------

def _csv_rows(path) -> List[List[str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_the_csv_export_gains_the_top_species_and_its_score_as_trailing_columns(tmp_path, capsys):
    from ssd.camtrap.results import CSV_COLUMNS

    path = _write(tmp_path / "r.json", classified_doc())
    out = tmp_path / "r.csv"
    assert main(["results", "export", path, "--format", "csv", "--out", str(out)]) == 0, capsys.readouterr().err
    rows = _csv_rows(out)
    assert rows[0] == CSV_COLUMNS + ["species", "species_score"]
    assert [r[-2:] for r in rows[1:]] == [["red deer", "0.920"], ["wild boar", "0.610"],
                                         ["'=HYPERLINK(\"x\")", "0.700"], ["", ""]]
    assert [r[:len(CSV_COLUMNS)] for r in rows[1:]] == [r for r in _plain_csv(tmp_path)[1:]]


def _plain_csv(tmp_path) -> List[List[str]]:
    """The CSV of the same file without its classifications: the columns it has always had."""
    doc = classified_doc()
    for key in ("classification_categories", "classification_category_descriptions"):
        del doc[key]
    for im in doc["images"]:
        for d in im["detections"]:
            del d["classifications"]
    path = _write(tmp_path / "plain.json", doc)
    assert main(["results", "export", path, "--format", "csv", "--out", str(tmp_path / "plain.csv")]) == 0
    return _csv_rows(tmp_path / "plain.csv")


def test_a_file_without_classifications_keeps_its_csv_columns(tmp_path):
    from ssd.camtrap.results import CSV_COLUMNS

    assert _plain_csv(tmp_path)[0] == CSV_COLUMNS


def test_a_malformed_classification_is_passed_over_not_a_traceback(tmp_path, capsys):
    doc = classified_doc()
    doc["images"][0]["detections"][0]["classifications"] = [["3"], "x", ["99", 0.9], ["7", True], ["7", 0.4]]
    doc["images"][1]["detections"][0]["classifications"] = {"3": 0.9}
    path = _write(tmp_path / "r.json", doc)
    out = tmp_path / "r.csv"
    assert main(["results", "export", path, "--format", "csv", "--out", str(out)]) == 0, capsys.readouterr().err
    assert [r[-2:] for r in _csv_rows(out)[1:3]] == [["wild boar", "0.400"], ["", ""]]


def test_the_workbook_lists_the_top_species_of_each_detection(tmp_path, capsys):
    from openpyxl import load_workbook

    from ssd.camtrap.spreadsheet import DETECTION_COLUMNS

    path = _write(tmp_path / "r.json", classified_doc())
    out = tmp_path / "r.xlsx"
    assert main(["results", "export", path, "--format", "xlsx", "--out", str(out), "--threshold", "0.2"]) == 0, \
        capsys.readouterr().err
    rows = [list(r) for r in load_workbook(out, read_only=True)["detections"].iter_rows(values_only=True)]
    assert rows[0] == DETECTION_COLUMNS + ["species", "species_score"]
    assert [r[-2:] for r in rows[1:]] == [["red deer", 0.92], ["wild boar", 0.61], ["'=HYPERLINK(\"x\")", 0.7]]


# ---- 3. the summary counts per species ------------------------------------------------------------

def _summary(tmp_path, capsys, *flags: str, doc=None) -> Dict[str, Any]:
    path = _write(tmp_path / "r.json", doc or classified_doc())
    assert main(["results", "summary", path, "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_summary_counts_images_and_detections_per_top_species_at_the_species_threshold(tmp_path, capsys):
    s = _summary(tmp_path, capsys, "--threshold", "0.2")
    assert s["species_threshold"] == 0.5
    # the blank's 0.7 on a 0.3 box counts at --threshold 0.2; the boar's 0.61 passes 0.5
    assert s["per_species_images"] == {"red deer": 1, "wild boar": 1, "=HYPERLINK(\"x\")": 1}
    assert s["per_species_detections"] == {"red deer": 1, "wild boar": 1, "=HYPERLINK(\"x\")": 1}
    s = _summary(tmp_path, capsys, "--threshold", "0.5", "--species-threshold", "0.65")
    assert s["per_species_images"] == {"red deer": 1, "wild boar": 0, "=HYPERLINK(\"x\")": 0}
    assert s["per_class_images"]["animal"] == 2          # the per-class counts are as they were


def test_the_summary_of_a_file_without_classifications_has_no_species_counts(tmp_path, capsys):
    doc = classified_doc()
    del doc["classification_categories"], doc["classification_category_descriptions"]
    s = _summary(tmp_path, capsys, doc=doc)
    assert not [k for k in s if "species" in k]


def test_the_summary_text_lists_the_species(tmp_path, capsys):
    path = _write(tmp_path / "r.json", classified_doc())
    assert main(["results", "summary", path, "--threshold", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "species (classification score ≥ 0.5)" in out
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("red deer")] == [["red", "deer", "1"]]


def test_a_species_threshold_outside_0_to_1_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["results", "summary", "x.json", "--species-threshold", "1.5"])
    err = capsys.readouterr().err
    assert "--species-threshold" in err and "1.5" in err and "unrecognized" not in err


# ---- 4. Camtrap DP observations name the species ---------------------------------------------------

def _package(tmp_path, capsys, *flags: str, doc=None):
    import csv

    from test_megadetector_files import _photo

    for im in (doc or classified_doc())["images"]:
        _photo(tmp_path / "season" / im["file"], "2024:05:01 10:00:00")
    path = _write(tmp_path / "r.json", doc or classified_doc())
    out = tmp_path / "dp"
    assert main(["results", "export", path, "--format", "camtrap-dp", "--out", str(out), "--images",
                 str(tmp_path / "season"), "--latitude", "52", "--longitude", "5", "--threshold", "0.2",
                 *flags]) == 0, capsys.readouterr().err
    with open(out / "observations.csv", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["observationType"] != "blank"]
    return out, rows


def test_camtrap_dp_observations_carry_the_species_from_the_taxonomy_descriptions(tmp_path, capsys):
    from camtrap_dp_offline import validate_offline

    out, rows = _package(tmp_path, capsys)
    report, _ = validate_offline(str(out / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])
    got = [(r["scientificName"], r["classificationProbability"], r["classifiedBy"], r["classificationMethod"],
            r["observationType"]) for r in rows]
    assert got == [("Cervus elaphus", "0.92", "speciesnet", "machine", "animal"),
                   ("Sus scrofa", "0.61", "speciesnet", "machine", "animal"),
                   ("", "0.7", "speciesnet", "machine", "animal")]          # a "blank" taxonomy names no taxon
    assert "species:red deer" in rows[0]["observationTags"] and "class:animal" in rows[0]["observationTags"]
    taxonomic = json.loads((out / "datapackage.json").read_text())["taxonomic"]
    assert [t["scientificName"] for t in taxonomic] == ["Cervus elaphus", "Sus scrofa"]


def test_camtrap_dp_takes_the_taxa_file_by_species_name_before_the_descriptions(tmp_path, capsys):
    (tmp_path / "taxa.csv").write_text("class,scientificName,vernacularNames.eng\n"
                                       "Red Deer,Cervus elaphus hippelaphus,red deer\n")
    doc = classified_doc()
    del doc["classification_category_descriptions"]
    _, rows = _package(tmp_path, capsys, "--taxa", str(tmp_path / "taxa.csv"), doc=doc)
    assert [r["scientificName"] for r in rows] == ["Cervus elaphus hippelaphus", "", ""]


def test_camtrap_dp_leaves_a_classification_below_the_species_threshold_to_the_detector(tmp_path, capsys):
    _, rows = _package(tmp_path, capsys, "--species-threshold", "0.65")
    assert [(r["scientificName"], r["classificationProbability"], r["classifiedBy"]) for r in rows] == \
        [("Cervus elaphus", "0.92", "speciesnet"), ("", "0.8", "md_v5a.0.0.pt"), ("", "0.7", "speciesnet")]


# ---- 5. sort by species -----------------------------------------------------------------------------

def _sorted_tree(root) -> List[str]:
    import os

    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def _sort_season(tmp_path, doc) -> str:
    from test_megadetector_files import _photo

    for im in doc["images"]:
        _photo(tmp_path / "season" / im["file"], "2024:05:01 10:00:00")
    return _write(tmp_path / "r.json", doc)


def test_sort_by_species_puts_animals_into_species_folders_under_animal(tmp_path, capsys):
    doc = classified_doc()
    doc["images"].append({"file": "camC/img3.jpg", "detections": [_det(0.9, [["3", 0.3]])]})
    doc["images"].append({"file": "camC/img4.jpg", "detections": [_det(0.9, DEER), _det(0.8, BOAR)]})
    path = _sort_season(tmp_path, doc)
    into = tmp_path / "sorted"
    assert main(["results", "sort", path, "--images", str(tmp_path / "season"), "--into", str(into),
                 "--threshold", "0.5", "--by", "species"]) == 0, capsys.readouterr().err
    assert _sorted_tree(into) == ["animal/multiple/camC/img4.jpg", "animal/red-deer/camA/img0.jpg",
                                  "animal/unclassified/camC/img3.jpg", "animal/wild-boar/camB/img1.jpg",
                                  "empty/camB/img2.jpg"]
    out = capsys.readouterr().out
    assert "animal/red-deer" in out


def test_sort_by_species_refuses_a_file_without_species_and_an_earlier_class_sort(tmp_path, capsys):
    doc = classified_doc()
    path = _sort_season(tmp_path, doc)
    into = tmp_path / "sorted"
    args = ["results", "sort", path, "--images", str(tmp_path / "season"), "--into", str(into), "--threshold", "0.5"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args + ["--by", "species"]) == 2          # each photo would be in two folders
    assert "earlier sort" in capsys.readouterr().err
    plain = copy.deepcopy(doc)
    del plain["classification_categories"]
    path = _write(tmp_path / "r.json", plain)
    assert main(["results", "sort", path, "--images", str(tmp_path / "season"), "--into", str(tmp_path / "s2"),
                 "--by", "species"]) == 2
    assert "no species classifications" in capsys.readouterr().err


def test_crops_csv_gains_the_species_of_each_crop(tmp_path, capsys):
    from ssd.camtrap.crops import CSV_HEADER

    path = _sort_season(tmp_path, classified_doc())
    out = tmp_path / "crops"
    assert main(["results", "crops", path, "--images", str(tmp_path / "season"), "--out", str(out),
                 "--threshold", "0.2"]) == 0, capsys.readouterr().err
    rows = _csv_rows(out / "crops.csv")
    assert rows[0] == list(CSV_HEADER) + ["species", "species_score"]
    assert sorted(r[-2:] for r in rows[1:]) == [["'=HYPERLINK(\"x\")", "0.700"], ["red deer", "0.920"],
                                                 ["wild boar", "0.610"]]


def test_drawn_labels_name_the_species(tmp_path):
    from ssd.camtrap.browse import entry_detections
    from ssd.camtrap.species import species_names
    from ssd.inference.filtering import ShownFilter

    doc = classified_doc()
    det = entry_detections(doc["images"][1], doc["detection_categories"], ShownFilter.at(0.5), True, (100, 100),
                           species=species_names(doc))
    assert [det.classes[int(i)] for i in det.class_ids] == ["wild boar"]
    plain = entry_detections(doc["images"][1], doc["detection_categories"], ShownFilter.at(0.5), True, (100, 100))
    assert [plain.classes[int(i)] for i in plain.class_ids] == ["animal"]


def test_results_draw_labels_the_boxes_with_their_species(tmp_path, capsys, monkeypatch):
    import ssd.viz.drawing as drawing

    labels: List[str] = []
    real = drawing.draw_detections

    def noting(img, det, *a, **k):
        labels.extend(det.classes[int(i)] for i in det.class_ids)
        return real(img, det, *a, **k)

    monkeypatch.setattr(drawing, "draw_detections", noting)
    path = _sort_season(tmp_path, classified_doc())
    assert main(["results", "draw", path, "--images", str(tmp_path / "season"), "--out", str(tmp_path / "drawn"),
                 "--threshold", "0.5"]) == 0, capsys.readouterr().err
    assert sorted(labels) == ["red deer", "wild boar"]
    labels.clear()
    assert main(["results", "draw", path, "--images", str(tmp_path / "season"), "--out", str(tmp_path / "drawn2"),
                 "--threshold", "0.5", "--species-threshold", "0.65"]) == 0, capsys.readouterr().err
    assert sorted(labels) == ["animal", "red deer"]          # the boar's 0.61 is left to the detector


def test_the_pages_compact_records_count_the_same_species_as_the_file(tmp_path):
    from ssd.camtrap.page_results import open_compact
    from ssd.camtrap.summary import summarize

    doc = classified_doc()
    opened, index = open_compact(_write(tmp_path / "r.json", doc))
    assert index is not None                              # read as it goes: the records hold no boxes
    assert summarize(opened, 0.2)["per_species_images"] == summarize(doc, 0.2)["per_species_images"] == \
        {"red deer": 1, "wild boar": 1, "=HYPERLINK(\"x\")": 1}


def _classified_season(season) -> None:
    """The page's season with a fox classified on cam1/0.jpg (its one box that is no suspect)."""
    doc = json.loads((season / "season.json").read_text())
    doc["classification_categories"] = {"5": "red fox", "6": "badger"}
    doc["images"][0]["detections"][-1]["classifications"] = [["6", 0.1], ["5", 0.8]]
    (season / "season.json").write_text(json.dumps(doc))


def test_the_camera_traps_page_lists_the_species_beside_the_classes_and_sorts_by_them(season):
    from test_camtrap_page import _open

    _classified_season(season)
    at = _open(season)
    tables = [t.value for t in at.dataframe]
    species = next(t for t in tables if "species" in t.columns)
    assert species.to_dict("list") == {"species": ["red fox", "badger"], "images": [1, 0], "detections": [1, 0]}
    at.text_input(key="ct_sort_into").set_value(str(season / "sorted")).run()
    at.checkbox(key="ct_sort_species").check().run()
    next(b for b in at.button if b.key == "ct_sort_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert (season / "sorted" / "animal" / "red-fox" / "cam1" / "0.jpg").is_symlink()


def test_the_workbooks_summary_counts_the_species(tmp_path, capsys):
    from openpyxl import load_workbook

    path = _write(tmp_path / "r.json", classified_doc())
    out = tmp_path / "r.xlsx"
    assert main(["results", "export", path, "--format", "xlsx", "--out", str(out), "--threshold", "0.2"]) == 0, \
        capsys.readouterr().err
    rows = [list(r) for r in load_workbook(out, read_only=True)["summary"].iter_rows(values_only=True)]
    at = rows.index(["species (classification score ≥ 0.5)", "images", "detections"])
    assert rows[at + 1:] == [["species red deer", 1, 1], ["species wild boar", 1, 1],
                             ["species =HYPERLINK(\"x\")", 1, 1]]          # text: the name never starts the cell


def test_split_keeps_the_classifications_written_after_the_images(tmp_path, capsys):
    doc = classified_doc()
    tail_first = {"images": doc.pop("images"), **doc}          # the classes after the entries
    path = _write(tmp_path / "season.json", tail_first)
    parts = tmp_path / "parts"
    assert main(["results", "split", path, "--out", str(parts)]) == 0, capsys.readouterr().err
    for f in sorted(parts.iterdir()):
        part = _load(f)
        assert part["classification_categories"] == CLASSES
        assert part["classification_category_descriptions"] == DESCRIPTIONS
        assert all("classifications" in d for im in part["images"] for d in im["detections"])


def test_the_species_threshold_is_the_workbooks_and_refused_on_a_csv(tmp_path, capsys):
    from openpyxl import load_workbook

    path = _write(tmp_path / "r.json", classified_doc())
    out = tmp_path / "r.xlsx"
    assert main(["results", "export", path, "--format", "xlsx", "--out", str(out), "--threshold", "0.2",
                 "--species-threshold", "0.65"]) == 0, capsys.readouterr().err
    rows = [list(r) for r in load_workbook(out, read_only=True)["summary"].iter_rows(values_only=True)]
    assert ["species wild boar", 0, 0] in rows and ["species red deer", 1, 1] in rows
    assert main(["results", "export", path, "--format", "csv", "--out", str(tmp_path / "r.csv"),
                 "--species-threshold", "0.65"]) == 2
    assert "--species-threshold" in capsys.readouterr().err and not (tmp_path / "r.csv").exists()


# ---- reading a classified season -------------------------------------------------------------------

def test_a_classified_chunk_is_checked_at_once_not_box_by_box():
    """Each detection's ``classifications`` sent every chunk of a classified file to the walk box by
    box: 3x as long (1.3-1.5 s against 0.45 s at 168,000 boxes of three classifications)."""
    from ssd.camtrap.results_check import _plain_detections

    doc = classified_doc()
    assert _plain_detections(doc["images"], doc["detection_categories"])


@pytest.mark.parametrize("pairs, said", [([["3", float("nan")]], "finite"), ([["3", 0.5]] + [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]], "nested")])
def test_a_faulty_classification_is_still_refused_by_name(tmp_path, pairs, said):
    from ssd.camtrap.results_check import ResultsError, check_results

    doc = classified_doc()
    doc["images"][0]["detections"][0]["classifications"] = pairs
    with pytest.raises(ResultsError, match=said) as refused:
        check_results(doc, "'r.json'")
    assert "images[0]" in str(refused.value) and "classifications" in str(refused.value)


def test_a_taxa_row_naming_a_species_is_no_typo_and_an_unnamed_species_is_warned(tmp_path, capsys):
    (tmp_path / "taxa.csv").write_text("class,scientificName\nRed Deer,Cervus elaphus\n")
    doc = classified_doc()
    del doc["classification_category_descriptions"]
    _package(tmp_path, capsys, "--taxa", str(tmp_path / "taxa.csv"), doc=doc)
    err = capsys.readouterr().err
    assert "no class of these results" not in err, err
    assert "'wild boar' (1 observation(s))" in err and "'red deer'" not in err, err


@pytest.mark.parametrize("where", ["species", "class"])
def test_a_name_utf8_cannot_hold_is_escaped_in_a_camtrap_dp_package_not_a_traceback(tmp_path, capsys, where):
    """A lone surrogate (``"\\ud800"`` in the JSON) in a species or class name stopped the Camtrap DP
    export with a UnicodeEncodeError traceback; it is written escaped, as the CSV writes it."""
    doc = classified_doc()
    if where == "species":
        doc["classification_categories"]["7"] = "wild\ud800boar"
    else:
        doc["detection_categories"]["1"] = "ani\ud800mal"
    out, rows = _package(tmp_path, capsys, doc=doc)
    assert any("\\ud800" in r["observationTags"] for r in rows)
    assert "\\ud800" in (out / "datapackage.json").read_text(encoding="utf-8") or where == "species"
