"""``results summary``'s outputs pinned byte for byte: the terminal text, ``--json``, ``--sweep``,
the exit status and every refusal's message, over files covering each case the summary handles
(episodes from the file or regrouped, untimed frames, cut-short videos, suspect repeats, per-class
thresholds, ``--path-prefix``, refusals of the file and of the flags).

Why: summary was rewritten to read the file as it goes and keep only what its counts need (a
100,000 × 84-box file had needed ~4.3 GB parsed). The rewrite must not change a byte of what a
researcher sees, so the outputs of the code that shipped the command are kept in
``tests/data/results_summary_pinned.json`` and compared here. Regenerate them only for a change
meant to alter the outputs: ``SSD_REPIN=1 .venv/bin/python -m pytest tests/test_results_summary_pinned.py``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import pytest

from ssd.cli.main import main
from tests.pinned import held_to_pin, reading_in_pieces
from tests.test_results_compare_pinned import MD, _det, _doc, _fail, _files, _ok

PINNED = os.path.join(os.path.dirname(__file__), "data", "results_summary_pinned.json")


def _episodes_doc(recorded: bool) -> Dict[str, Any]:
    """Three cameras (one with date folders), bursts, untimed frames, a failed frame inside a burst,
    a burst of failures only, a cut-short video, suspect repeats above and below the threshold."""
    images = [
        _ok("siteA/cam1/2024-06-01/a.jpg", _det("1", 0.9), _det("1", 0.5), _det("2", 0.01), datetime="2024:06:01 10:00:00"),
        _ok("siteA/cam1/2024-06-01/b.jpg", _det("1", 0.1), datetime="2024:06:01 10:00:30"),
        _fail("siteA/cam1/2024-06-01/c.jpg"),
        _ok("siteA/cam1/2024-06-02/d.jpg", _det("2", 0.6, suspect=True), _det("2", 0.1, suspect=True),
            datetime="2024:06:02 10:00:00"),
        _ok("siteA/cam1/2024-06-02/e.jpg", _det("3", 0.3), datetime="2024:06:02 10:01:00"),
        _ok("siteA/cam1/2024-06-02/f.jpg", datetime="2024:06:02 10:03:30"),
        _ok("siteA/cam2/g.jpg", _det("1", 0.25), _det("2", 0.45), _det("3", 0.05), datetime="2024-06-01T11:00:00"),
        _ok("siteA/cam2/h.jpg", datetime="not a time"),
        _ok("siteA/cam2/i.jpg", _det("2", 0.99)),
        {"file": "siteB/cam3/j.mp4", "detections": [_det("1", 0.7)], "warning": "video ended at frame 3 of 10",
         "datetime": "2024:06:03 09:00:00"},
        {"file": "siteB/cam3/k.mp4", "detections": None, "failure": "no frames", "warning": "x",
         "datetime": "2024:06:03 09:00:10"},
        {"file": "siteB/cam3/l.jpg", "detections": None, "datetime": "2024:06:03 09:00:20"},
        _ok("siteB/cam3/m.jpg", _det("1", 0.2), _det("1", 0.2), _det("1", 0.19), datetime="2024:06:03 12:00:00"),
        _ok("top.jpg", _det("1", 1), datetime="2024:06:03 12:00:00"),
    ]
    doc = _doc(images, cats={**MD, "4": "animal"})
    if recorded:
        doc["info"]["ssd_batch"] = {"episode_gap": 60, "camera_depth": "auto", "images_root": "/data/season"}
        for k, im in enumerate(images):
            im["episode"] = f"recorded#{k // 3}"
    return doc


def _summary_files(folder: str) -> None:
    _files(folder)

    def put(name: str, doc: Any) -> None:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            json.dump(doc, fh)

    put("ep.json", _episodes_doc(False))
    put("ep_recorded.json", _episodes_doc(True))
    put("abs_twice.json", _doc([_ok("/data/a/1.jpg"), _ok("/data/a\\1.jpg", _det("1", 0.5))]))
    put("ep_none.json", _doc([], cats={"1": "animal\x1b[31m"}))
    win = _episodes_doc(False)
    for im in win["images"]:
        im["file"] = "D:\\season\\" + im["file"].replace("/", "\\")
    put("win.json", win)
    put("abs_ep.json", dict(_episodes_doc(False), images=[dict(im, file="/data/season/" + im["file"])
                                                          for im in _episodes_doc(False)["images"]]))


#: name → the command line after ``results summary`` (files relative to the folder of inputs).
#: The file refusals every command that reads these files pins (the file's own faults, one each).
FILE_REFUSALS: Dict[str, List[str]] = {
    "refused_deep": ["deep.json"],
    "refused_hostile": ["hostile.json"],
    "refused_hostile_late": ["hostile_late.json"],
    "refused_info_first": ["bad_info_and_entry.json"],
    "refused_unknown_category": ["unknown_cat.json"],
    "refused_not_json": ["not_json.json"],
    "refused_trailing": ["trailing.json"],
    "refused_list": ["list.json"],
    "refused_no_images": ["no_images.json"],
    "refused_nan": ["nan.json"],
    "refused_latin1": ["latin1.json"],
    "refused_missing": ["nowhere.json"],
    "refused_folder": ["folder.json"],
}

RUNS: Dict[str, List[str]] = {
    "a": ["a.json"],
    "a_json": ["a.json", "--json"],
    "a_sweep": ["a.json", "--sweep"],
    "a_sweep_json": ["a.json", "--sweep", "--json"],
    "b": ["b.json"],
    "b_images_first": ["b_images_first.json", "--json"],
    "a_threshold": ["a.json", "--threshold", "0.05"],
    "a_per_class": ["a.json", "--thresholds", "person=0.95,vehicle=0.25"],
    "a_per_class_json": ["a.json", "--thresholds", "person=0.95,vehicle=0.25", "--json"],
    "a_per_class_sweep": ["a.json", "--thresholds", "animal=0.5", "--sweep", "--json"],
    "a_show_suspect": ["a.json", "--show-suspect"],
    "a_show_suspect_sweep": ["a.json", "--show-suspect", "--sweep"],
    "ep": ["ep.json"],
    "ep_json": ["ep.json", "--json"],
    "ep_sweep": ["ep.json", "--sweep"],
    "ep_sweep_json": ["ep.json", "--sweep", "--json", "--threshold", "0.15"],
    "ep_suspect": ["ep.json", "--show-suspect", "--threshold", "0.05"],
    "ep_suspect_sweep": ["ep.json", "--show-suspect", "--sweep", "--json"],
    "ep_gap": ["ep.json", "--episode-gap", "3600"],
    "ep_gap_json": ["ep.json", "--episode-gap", "1", "--json"],
    "ep_depth": ["ep.json", "--camera-depth", "1"],
    "ep_depth_sweep": ["ep.json", "--camera-depth", "1", "--sweep", "--json"],
    "ep_per_class": ["ep.json", "--thresholds", "person=0.5,animal=0.2", "--threshold", "0.4"],
    "ep_recorded": ["ep_recorded.json"],
    "ep_recorded_json": ["ep_recorded.json", "--json"],
    "ep_recorded_sweep": ["ep_recorded.json", "--sweep", "--json"],
    "ep_recorded_gap": ["ep_recorded.json", "--episode-gap", "120", "--json"],
    "ep_recorded_depth": ["ep_recorded.json", "--camera-depth", "2"],
    "ep_none": ["ep_none.json"],
    "ep_none_sweep": ["ep_none.json", "--sweep"],
    "empty": ["empty.json", "--json"],
    "empty_sweep": ["empty.json", "--sweep", "--json"],
    "win": ["win.json"],
    "win_prefix": ["win.json", "--path-prefix", "D:\\season", "--json"],
    "win_prefix_text": ["win.json", "--path-prefix", "D:\\", "--camera-depth", "1"],
    "refused_win_prefix_narrow": ["win.json", "--path-prefix", "D:\\season\\siteA", "--camera-depth", "1"],
    "abs_prefix": ["abs_ep.json", "--path-prefix", "/data/season", "--sweep"],
    "abs_prefix_json": ["abs_ep.json", "--path-prefix", "/data", "--json"],
    "bom": ["bom.json"],
    "dup_key": ["dup_key.json", "--json"],
    "dotdot": ["dotdot.json", "--sweep"],
    "refused_prefix_outside": ["abs_ep.json", "--path-prefix", "/elsewhere"],
    "refused_prefix_relative": ["a.json", "--path-prefix", "/data/season"],
    "refused_prefix_twice": ["abs_twice.json", "--path-prefix", "/data"],
    **FILE_REFUSALS,
    "refused_class": ["a.json", "--thresholds", "pikachu=0.5"],
    "refused_class_sweep": ["ep.json", "--thresholds", "pikachu=0.5", "--sweep"],
    "refused_class_and_file": ["hostile.json", "--thresholds", "pikachu=0.5"],
    "refused_class_and_prefix": ["abs_ep.json", "--thresholds", "pikachu=0.5", "--path-prefix", "/elsewhere"],
}


def outputs(folder: str, capsys: Any) -> Dict[str, Dict[str, Any]]:
    """Each run's exit status, stdout and stderr."""
    _summary_files(folder)
    got: Dict[str, Dict[str, Any]] = {}
    for name, argv in RUNS.items():
        rc = main(["results", "summary", *argv])
        captured = capsys.readouterr()
        got[name] = {"rc": rc, "stdout": captured.out, "stderr": captured.err}
    return got


@pytest.mark.parametrize("read_chars", [None, 7])
def test_outputs_are_those_pinned(tmp_path, capsys, monkeypatch, read_chars):
    """``read_chars=7``: files read 7 characters at a time, so values are cut at every place a
    buffer can end (the reader's own concern, held here for this command too)."""
    monkeypatch.chdir(tmp_path)
    reading_in_pieces(monkeypatch, read_chars)
    got = outputs(str(tmp_path), capsys)
    held_to_pin(got, PINNED, may_repin=read_chars is None)


def test_pinned_runs_cover_what_they_claim():
    """The pinned outputs are not vacuous: episodes, untimed frames, cut-short videos and suspect
    repeats counted; refusals that are refusals."""
    with open(PINNED, encoding="utf-8") as fh:
        pinned = json.load(fh)
    ep = json.loads(pinned["ep_json"]["stdout"])
    assert ep["cut_short"] and ep["suspect_detections"] and ep["failed"] and ep["episodes"]["untimed"]
    assert ep["episodes"]["failed"] and ep["episodes"]["episodes"] < ep["images"]
    assert json.loads(pinned["ep_gap_json"]["stdout"])["episodes"]["episodes"] != ep["episodes"]["episodes"]
    assert "suspect repeats" in pinned["ep_suspect"]["stdout"]
    assert json.loads(pinned["win_prefix"]["stdout"])["images"] == ep["images"]
    for name in RUNS:
        assert (pinned[name]["rc"] != 0) == name.startswith("refused"), name
        if name.startswith("refused"):
            assert pinned[name]["stderr"].startswith("error:") and not pinned[name]["stdout"], name
