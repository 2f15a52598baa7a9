"""``results compare``'s outputs pinned byte for byte: the terminal text, ``--json``, ``--csv``, the
exit status and every refusal's message, over files covering each case the comparison handles.

Why: compare was rewritten to read each file as it goes and keep only what its outputs need (a
pair of 100,000 × 84-box files had needed ~8.5 GB). The rewrite must not change a byte of what a
researcher sees, so the outputs of the code that shipped the command are kept in
``tests/data/results_compare_pinned.json`` and compared here. Regenerate them only for a change
meant to alter the outputs: ``SSD_REPIN=1 .venv/bin/python -m pytest tests/test_results_compare_pinned.py``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import pytest

from ssd.cli.main import main
from tests.pinned import held_to_pin, reading_in_pieces

PINNED = os.path.join(os.path.dirname(__file__), "data", "results_compare_pinned.json")
MD = {"1": "animal", "2": "person", "3": "vehicle"}


def _det(cat: str, conf: Any, suspect: Any = None) -> Dict[str, Any]:
    d = {"category": cat, "conf": conf, "bbox": [0.1, 0.2, 0.3, 0.4]}
    if suspect is not None:
        d["suspect"] = suspect
    return d


def _doc(images: List[Dict[str, Any]], cats: Dict[str, str] = MD, threshold: Any = 0.2,
         detector: Any = "md_v5a.0.0.pt") -> Dict[str, Any]:
    info: Dict[str, Any] = {"format_version": "1.6", "detector_metadata": {"typical_detection_threshold": threshold}}
    if detector is not None:
        info["detector"] = detector
    return {"info": info, "detection_categories": cats, "images": images}


def _ok(name: str, *dets: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
    return {"file": name, "detections": list(dets), "max_detection_conf": 0.0, **extra}


def _fail(name: str) -> Dict[str, Any]:
    return {"file": name, "failure": "not an image", "detections": None}


def _side_a() -> Dict[str, Any]:
    images = [
        _ok("cam1/1.jpg", _det("1", 0.9)),                                  # animal → animal
        _ok("cam1/2.jpg", _det("1", 0.1)),                                  # empty → animal
        _ok("cam1/3.jpg", _det("1", 0.8), _det("2", 0.7)),                  # animal+person → person
        _fail("cam1/4.jpg"),                                                # failed → empty
        _ok("cam1/5.jpg", _det("3", 0.6)),                                  # vehicle → failed
        _ok("cam1/only_a.jpg", _det("1", 0.9)),
        _ok("cam1/6.jpg"),                                                  # empty (no boxes) both
        {"file": "cam1/7.jpg", "detections": None},                         # null detections: failed
        _ok("cam1/8.jpg", _det("2", 0.9, suspect=True), _det("1", 0.3)),    # suspect person hidden
        _ok("cam1/9.jpg", _det("1", 1), _det("3", 0)),                      # whole-number confidences
        _ok("cam1/10.jpg", _det("3", 0.25), _det("2", 0.5), _det("1", 0.2)),  # all three, threshold exactly
        _ok("cam1/11.jpg", _det("4", 0.7)),                                 # second id of "animal"
        _ok("=cam1/12.jpg", _det("1", 0.95), width=10, height=20, datetime="2024:06:01 10:00:00"),
        _ok("cam1/only_a2.jpg"), _ok("cam1/only_a3.jpg"), _ok("cam1/only_a4.jpg"),
    ]
    images += [_ok(f"cam2/{i:02d}.jpg", _det("1", 0.05 * (i % 20))) for i in range(30)]   # > 20 changed
    return _doc(images, cats={**MD, "4": "animal"})


def _side_b() -> Dict[str, Any]:
    images = [                                                              # other ids, same names
        _ok("cam1\\1.jpg", _det("7", 0.95)),
        _ok("cam1/2.jpg", _det("7", 0.5)),
        _ok("cam1/3.jpg", _det("8", 0.9), _det("7", 0.05)),
        _ok("cam1/4.jpg"),
        _fail("cam1/5.jpg"),
        _ok("cam2/only_b.jpg"),
        _ok("cam1/6.jpg", _det("7", 0.004)),
        _ok("cam1/7.jpg", _det("9", 0.4)),
        _ok("cam1/8.jpg", _det("8", 0.9), _det("7", 0.3, suspect=False)),
        _ok("cam1/9.jpg", _det("7", 0.999)),
        _ok("cam1/10.jpg", _det("9", 0.3), _det("8", 0.1)),
        _ok("cam1/11.jpg", _det("7", 0.7)),
        _ok("=cam1/12.jpg", _det("8", 0.95, suspect=True)),
    ]
    images += [_ok(f"cam2/{i:02d}.jpg", _det("7", 0.05 * ((i + 7) % 20))) for i in range(29, -1, -1)]
    return _doc(images, cats={"7": "animal", "8": "person", "9": "vehicle"}, threshold=0.3,
                detector="ssd-studio:mobilenet\x1b[31m")


def _files(folder: str) -> None:
    """Every input file, written into ``folder`` (the commands name them relative to it)."""
    def put(name: str, doc: Any, **dump: Any) -> None:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(doc if isinstance(doc, str) else json.dumps(doc, **dump))

    a, b = _side_a(), _side_b()
    put("a.json", a)
    put("b.json", b, indent=1)                                  # MegaDetector writes indented files
    put("b_images_first.json", {"images": b["images"], "detection_categories": b["detection_categories"],
                                "info": b["info"], "extra": {"k": [1, 2.5, None]}})
    put("empty.json", _doc([]))
    put("empty_other.json", _doc([], cats={"5": "person", "6": "vehicle", "2": "animal"}, detector=None))
    put("pikachu.json", _doc([_ok("cam1/1.jpg", _det("1", 0.9))], cats={"1": "pikachu"}))
    put("abs.json", _doc([_ok("/data/season/cam1/1.jpg", _det("1", 0.9))]))
    put("abs2.json", _doc([_ok("/data/season/cam1/1.jpg", _det("1", 0.9)), _ok("/data/season/x.jpg")]))
    put("mixed.json", _doc([_ok("/data/season/cam1/1.jpg"), _ok("cam1/2.jpg")]))
    put("dotdot.json", _doc([_ok("cam1/1.jpg"), _ok("../x.jpg"), _ok("cam1/1.jpg")]))
    put("twice.json", _doc([_ok("cam1/1.jpg"), _ok("cam1\\1.jpg"), _ok("../x.jpg")]))
    put("hostile.json", {"images": [{"file": "x.jpg", "detections": [{"category": "1", "conf": "high"}]}],
                         "detection_categories": MD})
    put("hostile_late.json", _doc([_ok("cam1/1.jpg")] * 70 + [_ok("y.jpg", _det("1", 0.5, suspect="yes"))]))
    put("bad_info_and_entry.json", {"images": [{"file": "x.jpg", "detections": [_det("1", 2.0)]}],
                                    "detection_categories": MD, "info": "nope"})
    put("unknown_cat.json", _doc([_ok("x.jpg", _det("5", 0.5))]))
    put("not_json.json", '{"images": [{"file": "x.jpg", "detections": []},')
    put("trailing.json", json.dumps(_doc([_ok("x.jpg")])) + " []")
    put("list.json", [1, 2])
    put("no_images.json", {"detection_categories": MD})
    put("dup_key.json", '{"images": 5, "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"}, '
                        '"images": [{"file": "cam1/2.jpg", '
                        '"detections": [{"category": "1", "conf": 0.5, "bbox": [0, 0, 1, 1]}]}]}')
    put("bom.json", "\ufeff" + json.dumps(_doc([_ok("cam1/2.jpg", _det("1", 0.5))])))
    put("nan.json", '{"images": [{"file": "x.jpg", "detections": [{"category": "1", "conf": NaN, '
                    '"bbox": [0, 0, 1, 1]}]}], "detection_categories": {"1": "animal"}}')
    put("deep.json", '{"images": [], "detection_categories": {"1": "animal"}, "x": ' + "[" * 100 + "]" * 100 + "}")
    with open(os.path.join(folder, "latin1.json"), "wb") as fh:
        fh.write(b'{"images": [{"file": "\xe9.jpg", "detections": []}], "detection_categories": {"1": "animal"}}')
    os.mkdir(os.path.join(folder, "folder.json"))


#: name → the command line after ``results compare`` (files relative to the folder of inputs).
RUNS: Dict[str, List[str]] = {
    "text": ["a.json", "b.json"],
    "json": ["a.json", "b.json", "--json", "-"],
    "files": ["a.json", "b.json", "--csv", "out.csv", "--json", "out.json"],
    "csv_and_text": ["a.json", "b.json", "--csv", "out.csv"],
    "threshold": ["a.json", "b.json", "--threshold", "0.05", "--json", "-"],
    "threshold_text": ["a.json", "b.json", "--threshold", "0.05"],
    "per_class": ["a.json", "b.json", "--thresholds", "person=0.95,vehicle=0.25", "--json", "-"],
    "per_class_b": ["a.json", "b.json", "--thresholds", "animal=0.5", "--threshold-b", "0.1", "--json", "-"],
    "threshold_b": ["a.json", "a.json", "--threshold", "0.05", "--threshold-b", "0.75", "--json", "-"],
    "threshold_b_text": ["a.json", "a.json", "--threshold-b", "0.75"],
    "show_suspect": ["a.json", "b.json", "--show-suspect", "--json", "-"],
    "show_suspect_text": ["a.json", "b.json", "--show-suspect", "--threshold", "0.3"],
    "reversed": ["b.json", "a.json", "--json", "-"],
    "reversed_text": ["b.json", "a.json", "--csv", "out.csv"],
    "images_first": ["a.json", "b_images_first.json", "--json", "-"],
    "images_first_text": ["b_images_first.json", "a.json"],
    "same": ["a.json", "a.json"],
    "same_json": ["a.json", "a.json", "--json", "-", "--csv", "out.csv"],
    "empty_both": ["empty.json", "empty_other.json", "--json", "-"],
    "empty_both_text": ["empty.json", "empty_other.json", "--csv", "out.csv"],
    "empty_one": ["a.json", "empty.json"],
    "empty_one_json": ["empty.json", "a.json", "--json", "-"],
    "different_folders": ["abs.json", "abs2.json"],
    "different_folders_json": ["abs2.json", "abs.json", "--json", "out.json"],
    "bom": ["bom.json", "a.json", "--json", "-"],
    "dup_key": ["dup_key.json", "a.json", "--json", "-"],
    "refused_deep": ["deep.json", "empty.json"],
    "refused_categories": ["a.json", "pikachu.json"],
    "refused_abs_rel": ["a.json", "abs.json"],
    "refused_rel_abs": ["abs.json", "a.json"],
    "refused_mixed": ["mixed.json", "a.json"],
    "refused_dotdot": ["a.json", "dotdot.json"],
    "refused_twice": ["twice.json", "a.json"],
    "refused_hostile": ["a.json", "hostile.json"],
    "refused_hostile_late": ["hostile_late.json", "hostile.json"],
    "refused_info_first": ["bad_info_and_entry.json", "a.json"],
    "refused_unknown_category": ["unknown_cat.json", "a.json"],
    "refused_not_json": ["a.json", "not_json.json"],
    "refused_trailing": ["trailing.json", "a.json"],
    "refused_list": ["list.json", "a.json"],
    "refused_no_images": ["a.json", "no_images.json"],
    "refused_nan": ["nan.json", "a.json"],
    "refused_latin1": ["latin1.json", "a.json"],
    "refused_missing": ["a.json", "nowhere.json"],
    "refused_folder": ["folder.json", "a.json"],
    "refused_both_bad": ["hostile.json", "not_json.json"],
    "refused_class": ["a.json", "b.json", "--thresholds", "pikachu=0.5"],
    "refused_class_and_categories": ["a.json", "pikachu.json", "--thresholds", "pikachu=0.5"],
    "refused_replacing": ["a.json", "b.json", "--csv", "b.json"],
}


def outputs(folder: str, capsys: Any) -> Dict[str, Dict[str, Any]]:
    """Each run's exit status, stdout, stderr and the files it wrote, as text."""
    _files(folder)
    got: Dict[str, Dict[str, Any]] = {}
    for name, argv in RUNS.items():
        for out in ("out.csv", "out.json"):
            if os.path.exists(os.path.join(folder, out)):
                os.remove(os.path.join(folder, out))
        rc = main(["results", "compare", *argv])
        captured = capsys.readouterr()
        written = {}
        for out in ("out.csv", "out.json"):
            if os.path.exists(os.path.join(folder, out)):
                with open(os.path.join(folder, out), encoding="utf-8", newline="") as fh:
                    written[out] = fh.read()
        got[name] = {"rc": rc, "stdout": captured.out, "stderr": captured.err, "files": written}
    return got


@pytest.mark.parametrize("read_chars", [None, 5])
def test_outputs_are_those_pinned(tmp_path, capsys, monkeypatch, read_chars):
    """``read_chars=5``: files read 5 characters at a time, so values (numbers too) are cut at every
    place a buffer can end, and entries are read again with more."""
    monkeypatch.chdir(tmp_path)
    reading_in_pieces(monkeypatch, read_chars)
    got = outputs(str(tmp_path), capsys)
    held_to_pin(got, PINNED, may_repin=read_chars is None)


def test_pinned_runs_cover_what_they_claim():
    """The pinned outputs are not vacuous: changed images beyond the terminal's 20, every state kind,
    refusals that are refusals, and both files written."""
    with open(PINNED, encoding="utf-8") as fh:
        pinned = json.load(fh)
    assert "more: --csv FILE lists them all" in pinned["text"]["stdout"]
    states = json.loads(pinned["json"]["stdout"])["states"]
    assert {"empty", "failed", "animal", "person", "vehicle", "animal+person"} <= set(states)
    assert set(pinned["files"]["files"]) == {"out.csv", "out.json"}
    for name in RUNS:
        assert (pinned[name]["rc"] == 2) == name.startswith("refused"), name
        if name.startswith("refused"):
            assert pinned[name]["stderr"].startswith("error:") and not pinned[name]["stdout"], name


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
