"""The results check asks about a chunk's detections all at once (``_plain_detections``) and walks
box by box only where that finds something unusual: every file must be accepted or refused, with
the same message, exactly as by the walk box by box alone."""
from __future__ import annotations

import copy
import json
import math
import random
from typing import Any, Dict, Optional

import pytest

from ssd.camtrap import results_check
from ssd.camtrap.results_check import ResultsError, check_results


def _doc(n: int = 200, seed: int = 0) -> Dict[str, Any]:
    """A file as this code writes it: float confidences and boxes, a few suspects, a failure."""
    rnd = random.Random(seed)
    images = []
    for i in range(n):
        if i % 37 == 5:
            images.append({"file": f"c/{i}.jpg", "failure": "cannot read", "detections": None})
            continue
        dets = [{"category": str(rnd.randint(1, 3)), "conf": rnd.random(),
                 "bbox": [rnd.random() * 0.5, rnd.random() * 0.5, 0.2, 0.3],
                 **({"suspect": True} if rnd.random() < 0.05 else {})} for _ in range(rnd.randint(0, 6))]
        images.append({"file": f"c/{i}.jpg", "width": 640, "height": 480, "detections": dets, "failure": None})
    return {"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
            "images": images}


def _outcome(doc: Any) -> Optional[str]:
    try:
        check_results(doc, "'r.json'")
    except ResultsError as err:
        return str(err)
    return None


def _both(doc: Any, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """(the check as it is, the check walking every box) of one document."""
    fast = _outcome(doc)
    with monkeypatch.context() as m:
        m.setattr(results_check, "_plain_detections", lambda images, cats: False)
        slow = _outcome(doc)
    return fast, slow


def _set(doc: Dict[str, Any], i: int, j: int, key: str, value: Any) -> None:
    doc["images"][i]["detections"][j][key] = value


CHANGES = [  # (what is changed in a detection, as (key, value); None: the detection itself replaced)
    ("conf", float("nan")), ("conf", float("inf")), ("conf", -0.1), ("conf", 1.5), ("conf", 1), ("conf", 0),
    ("conf", True), ("conf", "0.5"), ("conf", None), ("conf", -0.0),
    ("bbox", [0.1, 0.2, 0.3]), ("bbox", [0.1, 0.2, 0.3, 0.4, 0.5]), ("bbox", [0.1, "x", 0.3, 0.4]),
    ("bbox", [0.1, True, 0.3, 0.4]), ("bbox", [0.1, float("nan"), 0.3, 0.4]), ("bbox", [float("-inf"), 0, 0, 0]),
    ("bbox", [1e308, 1e308, 1e308, 1e308]), ("bbox", [1, 0, 1, 1]), ("bbox", (0.1, 0.2, 0.3, 0.4)),
    ("bbox", "0 0 1 1"), ("bbox", None),
    ("category", "7"), ("category", 1), ("category", None), ("category", ["1"]),
    ("suspect", None), ("suspect", "yes"), ("suspect", 1), ("suspect", False),
    ("classifications", [["4", 0.9]]), ("classifications", [[float("nan")]]), ("note", json.loads("[" * 20 + "]" * 20)),
]


#: Unusual but accepted (the rest is refused): whole numbers, -0.0, huge finite boxes, a null or
#: false suspect, another tool's field.
ACCEPTED = [("conf", 1), ("conf", 0), ("conf", -0.0), ("bbox", [1e308] * 4), ("bbox", [1, 0, 1, 1]),
            ("suspect", None), ("suspect", False), ("classifications", [["4", 0.9]])]


@pytest.mark.parametrize("key, value", CHANGES, ids=[f"{k}={v!r}"[:40] for k, v in CHANGES])
def test_a_changed_detection_is_judged_as_box_by_box(monkeypatch, key, value):
    doc = _doc()
    i = next(k for k, im in enumerate(doc["images"]) if k > 130 and im["detections"])   # in a later chunk
    _set(doc, i, len(doc["images"][i]["detections"]) - 1, key, value)
    fast, slow = _both(doc, monkeypatch)
    assert fast == slow
    refused = not any(k == key and type(v) is type(value) and v == value for k, v in ACCEPTED)
    assert (fast is not None) == refused, fast
    if refused:
        assert f"images[{i}] ('c/{i}.jpg').detections[" in fast


@pytest.mark.parametrize("detections", [["x"], [None], [[0.1]], "x", {"conf": 0.5}, 0, [{"conf": 0.5}]])
def test_detections_that_are_no_list_of_objects_are_refused_as_box_by_box(monkeypatch, detections):
    doc = _doc()
    doc["images"][70]["detections"] = detections
    fast, slow = _both(doc, monkeypatch)
    assert fast == slow and fast is not None and "images[70]" in fast


@pytest.mark.parametrize("entry", [None, "c/1.jpg", ["c/1.jpg"], {"detections": []}])
def test_an_entry_that_is_no_object_is_refused_as_before(monkeypatch, entry):
    doc = _doc()
    doc["images"][3] = entry
    fast, slow = _both(doc, monkeypatch)
    assert fast == slow == "'r.json': images[3] has no 'file' (a non-empty name)"


def test_the_first_fault_is_named_when_a_file_has_several(monkeypatch):
    doc = _doc()
    later = next(k for k, im in enumerate(doc["images"]) if k > 100 and im["detections"])
    _set(doc, later, 0, "conf", 2.0)
    doc["images"][90]["width"] = "wide"
    doc["images"][90]["detections"] = [{"category": "1", "conf": "high", "bbox": [0.0, 0.0, 1.0, 1.0]}]
    fast, slow = _both(doc, monkeypatch)
    assert fast == slow and "images[90] ('c/90.jpg').detections[0].conf" in fast


def test_random_changes_are_judged_as_box_by_box(monkeypatch):
    rnd = random.Random(7)
    base = _doc(300, seed=3)
    places = [(i, j) for i, im in enumerate(base["images"]) for j in range(len(im["detections"] or []))]
    values = [v for _, v in CHANGES] + [0.5, 0.25, [0.0, 0.0, 1.0, 1.0]]
    refused = 0
    for _ in range(150):
        doc = copy.deepcopy(base)
        for _ in range(rnd.randint(1, 3)):
            i, j = rnd.choice(places)
            if rnd.random() < 0.7:
                _set(doc, i, j, rnd.choice(["conf", "bbox", "category", "suspect", "extra"]), rnd.choice(values))
            else:
                key, value, _ = rnd.choice(ENTRY_CHANGES)
                doc["images"][i][key] = value
        fast, slow = _both(doc, monkeypatch)
        assert fast == slow
        refused += fast is not None
    assert 50 < refused < 150                   # both kinds were tried


def test_a_file_as_this_code_writes_it_is_judged_all_at_once():
    doc = _doc(500)
    cats = doc["detection_categories"]
    assert all(results_check._plain_detections(doc["images"][s:s + 64], cats) for s in range(0, 500, 64))
    assert check_results(doc, "x") is doc
    assert results_check._plain_entries(doc["images"][6:42])          # no failure among them
    assert not results_check._plain_detections([{"file": "a", "detections": [{"category": "1", "conf": math.nan,
                                                                              "bbox": [0.0] * 4}]}], cats)


ENTRY_CHANGES = [  # (key, value, accepted)
    ("file", "", False), ("file", "a\0b.jpg", False), ("file", 7, False), ("file", None, False),
    ("failure", 5, False), ("failure", "boom", False), ("failure", None, True),
    ("detections", None, True), ("width", "wide", False), ("width", -1, False), ("width", 1920.0, True),
    ("width", 1.5, False), ("width", True, False), ("width", 10 ** 400, False), ("width", 2 ** 60, True),
    ("width", None, True), ("width", 0, True), ("height", float("nan"), False),
    ("max_detection_conf", False, False), ("max_detection_conf", 0, True), ("max_detection_conf", 0.0, True),
    ("max_detection_conf", float("nan"), False), ("max_detection_conf", 1.5, False),
    ("max_detection_conf", 1, True), ("max_detection_conf", "0.5", False), ("max_detection_conf", -0.0, True),
    ("datetime", 5, False), ("datetime", "2024:06:01 10:00:00", True), ("warning", ["x"], False),
    ("warning", "cut short", True), ("classifications", [["4", 0.9]], True),
    ("classifications", [float("inf")], False), ("note", json.loads("[" * 20 + "]" * 20), False),
]


@pytest.mark.parametrize("key, value, accepted", ENTRY_CHANGES, ids=[f"{k}={v!r}"[:40] for k, v, _ in ENTRY_CHANGES])
def test_a_changed_entry_is_judged_as_one_by_one(monkeypatch, key, value, accepted):
    doc = _doc()
    doc["images"][140][key] = value
    fast, slow = _both(doc, monkeypatch)
    assert fast == slow
    assert (fast is None) == accepted, fast
    if not accepted:
        assert "images[140]" in fast


def test_failed_entries_and_entries_without_detections_are_judged_as_one_by_one(monkeypatch):
    doc = _doc()
    doc["images"][10] = {"file": "c/10.jpg", "failure": "boom", "detections": None}
    doc["images"][11] = {"file": "c/11.jpg", "detections": None}
    assert _both(doc, monkeypatch) == (None, None)
    del doc["images"][11]["detections"]
    fast, slow = _both(doc, monkeypatch)
    assert fast == slow == "'r.json': images[11] ('c/11.jpg') has neither 'detections' nor a 'failure'"


def test_a_number_beyond_any_float_is_refused_not_a_traceback(monkeypatch):
    doc = _doc()
    i = next(k for k, im in enumerate(doc["images"]) if im["detections"])
    _set(doc, i, 0, "conf", 10 ** 400)
    fast, slow = _both(doc, monkeypatch)
    assert fast == slow and fast.endswith("conf is " + repr(10 ** 400)[:80] + "…, expected a number within 0–1")


def test_a_name_with_a_nul_character_is_named_as_such(tmp_path):
    """Not "has no 'file'": the entry has one, which no file system can hold."""
    from ssd.camtrap.megadetector import ResultsError, read_results

    path = tmp_path / "r.json"
    path.write_text(json.dumps({"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal"},
                                "images": [{"file": "a\u0000b.jpg", "detections": []}]}))
    with pytest.raises(ResultsError, match="NUL character"):
        read_results(str(path))
