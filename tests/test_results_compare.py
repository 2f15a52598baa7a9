"""``results compare``: two runs over one season side by side (MegaDetector's compare_batch_results):
which images are in both, each image's state in A and B at the threshold, the transition table, the
images that changed state (CSV) and the failures of each side."""
from __future__ import annotations

import csv
import json

from ssd.cli.main import main

MD = {"1": "animal", "2": "person", "3": "vehicle"}


def _entry(name, *dets):
    if dets == ("fail",):
        return {"file": name, "failure": "not an image", "detections": None}
    return {"file": name, "max_detection_conf": max((c for _, c in dets), default=0.0),
            "detections": [{"category": cat, "conf": c, "bbox": [0.1, 0.2, 0.3, 0.4]} for cat, c in dets]}


def _write(path, images, cats=MD, threshold=0.2, detector="md_v5a.0.0.pt"):
    doc = {"info": {"format_version": "1.6", "detector": detector,
                    "detector_metadata": {"typical_detection_threshold": threshold}},
           "detection_categories": cats, "images": images}
    path.write_text(json.dumps(doc))
    return str(path)


def _pair(tmp_path):
    a = _write(tmp_path / "a.json", [
        _entry("cam1/1.jpg", ("1", 0.9)),                  # animal → animal
        _entry("cam1/2.jpg", ("1", 0.1)),                  # empty → animal
        _entry("cam1/3.jpg", ("1", 0.8), ("2", 0.7)),      # animal+person → person
        _entry("cam1/4.jpg", "fail"),                      # failed → empty
        _entry("cam1/5.jpg", ("3", 0.6)),                  # vehicle → failed
        _entry("cam1/only_a.jpg", ("1", 0.9)),
    ])
    b = _write(tmp_path / "b.json", [                      # other ids, same names: matched by name
        _entry("cam1\\1.jpg", ("7", 0.95)),
        _entry("cam1/2.jpg", ("7", 0.5)),
        _entry("cam1/3.jpg", ("8", 0.9), ("7", 0.05)),
        _entry("cam1/4.jpg"),
        _entry("cam1/5.jpg", "fail"),
        _entry("cam2/only_b.jpg"),
    ], cats={"7": "animal", "8": "person", "9": "vehicle"}, detector="ssd-studio:mobilenet")
    return a, b


def _compare_json(capsys, *argv):
    assert main(["results", "compare", *argv, "--json", "-"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_states_transitions_and_membership(tmp_path, capsys):
    a, b = _pair(tmp_path)
    c = _compare_json(capsys, a, b)
    assert (c["in_both"], c["only_in_a"], c["only_in_b"]) == (5, 1, 1)
    t = c["transitions"]
    assert t["animal"]["animal"] == 1 and t["empty"]["animal"] == 1 and t["animal+person"]["person"] == 1
    assert t["failed"]["empty"] == 1 and t["vehicle"]["failed"] == 1
    assert sum(n for row in t.values() for n in row.values()) == 5
    assert c["failed"] == {"a": 1, "b": 1}
    changed = {row["file"]: (row["state_a"], row["state_b"]) for row in c["changed"]}
    assert changed == {"cam1/2.jpg": ("empty", "animal"), "cam1/3.jpg": ("animal+person", "person"),
                       "cam1/4.jpg": ("failed", "empty"), "cam1/5.jpg": ("vehicle", "failed")}


def test_text_table_in_terminal(tmp_path, capsys):
    a, b = _pair(tmp_path)
    assert main(["results", "compare", a, b]) == 0
    out = capsys.readouterr().out
    assert "only in A" in out and "changed state: 4 of 5" in out
    assert "animal+person" in out and "cam1/2.jpg" in out
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    assert table["A"][-1] == "all" and table["all"][-1] == "5"      # totals: the images in both
    assert table["empty"][table["A"].index("animal") - 2] == "1"     # A empty → B animal (cam1/2.jpg)


def test_one_threshold_for_both_changes_states(tmp_path, capsys):
    a, b = _pair(tmp_path)
    c = _compare_json(capsys, a, b, "--threshold", "0.05")
    assert c["transitions"]["animal"]["animal"] == 2          # cam1/2.jpg counts as animal in A too
    assert c["transitions"]["animal+person"]["animal+person"] == 1
    c = _compare_json(capsys, a, b, "--thresholds", "person=0.95")
    assert c["transitions"]["animal"]["empty"] == 1           # cam1/3.jpg: person 0.9 no longer counts in B


def test_csv_lists_changed_images_formula_safe(tmp_path, capsys):
    a = _write(tmp_path / "a.json", [_entry("=HYPERLINK(1).jpg", ("1", 0.9)), _entry("same.jpg")])
    b = _write(tmp_path / "b.json", [_entry("=HYPERLINK(1).jpg", ("1", 0.1)), _entry("same.jpg")])
    out = tmp_path / "changed.csv"
    assert main(["results", "compare", a, b, "--csv", str(out)]) == 0, capsys.readouterr().err
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["file", "state_a", "state_b", "max_score_a", "max_score_b"]
    assert rows[1:] == [["'=HYPERLINK(1).jpg", "animal", "empty", "0.9", "0.1"]]


def test_categories_that_cannot_be_matched_are_refused(tmp_path, capsys):
    a, _ = _pair(tmp_path)
    b = _write(tmp_path / "c.json", [_entry("cam1/1.jpg", ("1", 0.9))], cats={"1": "pikachu"})
    assert main(["results", "compare", a, b]) == 2
    err = capsys.readouterr().err
    assert "pikachu" in err and "animal" in err


def test_absolute_and_relative_names_are_refused_with_a_hint(tmp_path, capsys):
    a, _ = _pair(tmp_path)
    b = _write(tmp_path / "abs.json", [_entry("/data/season/cam1/1.jpg", ("1", 0.9))])
    assert main(["results", "compare", a, b]) == 2
    assert "results rebase" in capsys.readouterr().err


def test_hostile_input_is_refused(tmp_path, capsys):
    a, _ = _pair(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"file": "x.jpg", "detections": [{"category": "1", "conf": "high"}]}],
                               "detection_categories": MD}))
    assert main(["results", "compare", a, str(bad)]) == 2
    assert "conf" in capsys.readouterr().err


def test_csv_never_replaces_an_input(tmp_path, capsys):
    a, b = _pair(tmp_path)
    before = (tmp_path / "a.json").read_text()
    assert main(["results", "compare", a, b, "--csv", a]) == 2
    assert (tmp_path / "a.json").read_text() == before
    assert "give another --csv" in capsys.readouterr().err      # compare has no -o: it said "another -o"
    assert main(["results", "compare", a, b, "--json", b]) == 2
    assert "give another --json" in capsys.readouterr().err


def test_one_file_at_two_thresholds(tmp_path, capsys):
    a, _ = _pair(tmp_path)
    c = _compare_json(capsys, a, a, "--threshold", "0.05", "--threshold-b", "0.75")
    assert (c["a"]["threshold"], c["b"]["threshold"]) == (0.05, 0.75)
    assert {r["file"]: (r["state_a"], r["state_b"]) for r in c["changed"]} == {
        "cam1/2.jpg": ("animal", "empty"), "cam1/3.jpg": ("animal+person", "animal"), "cam1/5.jpg": ("vehicle", "empty")}


def test_runs_over_different_folders_warn(tmp_path, capsys):
    a = _write(tmp_path / "a.json", [_entry("siteA/1.jpg")])
    b = _write(tmp_path / "b.json", [_entry("1.jpg")])
    assert main(["results", "compare", a, b]) == 0
    captured = capsys.readouterr()
    assert "no image is in both" in captured.err and "only in A 1" in captured.out


def test_json_file_lists_changed_images_one_row_a_line(tmp_path, capsys):
    """A season's comparison lists hundreds of thousands of changed images: the file holds the counts
    indented and one compact row a line (indented, each row took 7 lines and the slow encoder), the
    same document the terminal's ``--json -`` prints; an empty comparison is valid JSON too."""
    a, b = _pair(tmp_path)
    printed = _compare_json(capsys, a, b)
    out = tmp_path / "c.json"
    assert main(["results", "compare", a, b, "--json", str(out)]) == 0
    capsys.readouterr()                                   # the table, printed as with --csv
    text = out.read_text()
    assert json.loads(text) == printed
    rows = [ln for ln in text.splitlines() if ln.startswith('  {"file":')]
    assert len(rows) == len(printed["changed"]) == 4
    assert json.loads(rows[0].rstrip(",")) == printed["changed"][0]
    same = _compare_json(capsys, a, a)
    assert same["changed"] == [] and same["in_both"] == 6


def test_a_json_file_is_written_beside_the_table_as_a_csv_file_is(tmp_path, capsys):
    """``--json FILE`` printed nothing at all; ``--csv FILE`` (and every results command writing a
    file) shows its usual output and says what it wrote. Only ``--json -`` prints the JSON instead."""
    a, b = _pair(tmp_path)
    assert main(["results", "compare", a, b]) == 0
    table = capsys.readouterr().out
    out = tmp_path / "c.json"
    assert main(["results", "compare", a, b, "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == table and "changed state: 4 of 5" in table
    assert str(out) in captured.err and json.loads(out.read_text())["in_both"] == 5
