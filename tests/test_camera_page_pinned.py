"""What the Camera traps page shows of a results file, pinned from the code that holds the file
parsed whole: the images shown (per confidence, state, class and suspect filter, and a page of
them with their captions and box tables), the counts, the episodes and their rows, the threshold
sweep, at the file's grouping and regrouped.

Why: the page is to keep a compact record per image and read the boxes of only the images it shows
(``ssd.camtrap.results_index``), as the CLI's results commands now read as they go. That change
must not alter a number or a name the page shows; these are the library calls the page makes
(``app_pages/camera_traps.py``'s ``browser``), on the document it opens. Regenerate only for a
change meant to alter them: ``SSD_REPIN=1 .venv/bin/python -m pytest tests/test_camera_page_pinned.py``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Tuple

from ssd.camtrap.browse import STATES, detection_rows, filter_entries, page_of, picture_caption, split_failures
from ssd.camtrap.cameras import CameraRule
from ssd.camtrap.episodes import episode_classes, episode_layout, regrouped
from ssd.camtrap.megadetector import read_results
from ssd.camtrap.review import repeat_groups
from ssd.camtrap.summary import summarize
from ssd.camtrap.sweep import threshold_sweep
from ssd.inference.filtering import ShownFilter
from tests.test_results_summary_pinned import _episodes_doc

PINNED = os.path.join(os.path.dirname(__file__), "data", "camera_page_pinned.json")

FILTERS = {"0.2": ShownFilter.of(0.2), "0": ShownFilter.of(0.0), "0.5 suspect shown": ShownFilter.of(0.5, None, False),
           "per class": ShownFilter.of(0.2, None, True, per_class={"person": 0.5, "animal": 0.1})}
CLASSES = {"any": None, "animal": ["animal"], "person+vehicle": ["person", "vehicle"]}


def _season() -> Dict[str, Any]:
    """Many boxes an image, suspects among them, 3 cameras x bursts, a failure, a cut-short video."""
    images = []
    for i in range(60):
        f = f"site{i % 3}/cam{i % 2}/IMG_{i:04d}.JPG"
        if i % 17 == 5:
            images.append({"file": f, "detections": None, "failure": "cannot read"})
            continue
        dets = [{"category": str(1 + (i + k) % 3), "conf": round(((i * 37 + k * 53) % 997) / 1000, 3),
                 "bbox": [round(0.01 * ((i + k) % 50), 4), 0.1, 0.2, 0.3],
                 **({"suspect": True} if (i + k) % 11 == 0 else {})} for k in range(i % 9)]
        im = {"file": f, "width": 1920, "height": 1080, "detections": sorted(dets, key=lambda d: -d["conf"]),
              "datetime": f"2024:06:01 10:{i // 4:02d}:{(i * 13) % 60:02d}" if i % 13 else None}
        if i == 7:
            im["warning"] = "video ended at frame 3 of 10"
            im["file"] = "site1/cam1/clip.mp4"
        images.append(im)
    return {"info": {"format_version": "1.4", "detector": "bench"}, "detection_categories":
            {"1": "animal", "2": "person", "3": "vehicle"}, "images": images}


def _plain(value: Any) -> Any:
    """JSON-comparable: tuples as lists, sets sorted, dataclasses as dicts."""
    if dataclasses.is_dataclass(value):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def page_outputs(doc: Dict[str, Any], full: Callable[[List[Dict[str, Any]]], List[Dict[str, Any]]] = list
                 ) -> Dict[str, Any]:
    """The page's library calls over every filter, state and class choice (``browser``'s order);
    ``full(entries)``: the entries a page shows (pictures, captions, tables) with their boxes."""
    names = doc["detection_categories"]
    layout = episode_layout(doc)
    out: Dict[str, Any] = {"layout": _plain(layout), "files": [im["file"] for im in doc["images"]],
                           "repeat groups": _plain(repeat_groups(doc))}
    for fname, shown in FILTERS.items():
        out[f"{fname}: counts"] = _plain(summarize(doc, shown, layout=layout))
        out[f"{fname}: sweep"] = _plain(threshold_sweep(doc, shown))
        for state in STATES:
            for cname, classes in CLASSES.items():
                entries = filter_entries(doc, shown, classes, state)
                readable, failed = split_failures(entries)
                page = page_of(readable, 1, 5)
                wanted = {id(e) for e in entries}
                at = {id(e): k for k, e in enumerate(doc["images"])}      # shown by index: the file's order
                rows = [(eid, m, episode_classes(doc, m, shown)) for eid, m in layout.groups.items()
                        if any(id(doc["images"][k]) in wanted for k in m)]
                out[f"{fname}: {state}: {cname}"] = {
                    "shown": [at[id(e)] for e in entries], "failed": [at[id(e)] for e in failed],
                    "page 1": [[at[id(e)], picture_caption(f, names, shown)]
                               + ([_plain(detection_rows(f, names, shown))] if cname == "any" else [])
                               for e, f in zip(page, full(page))],
                    "page 2": [at[id(e)] for e in page_of(readable, 2, 5)],
                    "episode rows": _plain(rows)}
    return out


def fixtures(tmp_path) -> Dict[str, str]:
    """The files whose page outputs are pinned, by name."""
    paths = {}
    for name, doc in (("season", _season()), ("episodes recorded", _episodes_doc(True)),
                      ("episodes found", _episodes_doc(False))):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        paths[name] = str(path)
    return paths


Opener = Callable[[str], Tuple[Dict[str, Any], Callable[[Dict[str, Any]], Callable]]]


def _whole(path: str):
    """What the page opens today (``_shared.results_doc``): the file parsed whole; shown as held."""
    return read_results(path), lambda doc: list


def outputs(tmp_path, opener: Opener = _whole) -> Dict[str, Any]:
    """``page_outputs`` of each fixture as ``opener`` opens it (``(doc, full_for(doc))``), and regrouped."""
    got = {}
    for name, path in fixtures(tmp_path).items():
        opened, full_for = opener(path)
        got[name] = page_outputs(opened, full_for(opened))
        again = regrouped(opened, 30.0, CameraRule(1))
        got[name + ", regrouped 30 s"] = page_outputs(again, full_for(again))
    return json.loads(json.dumps(got))


def test_page_outputs_are_those_pinned(tmp_path):
    got = outputs(tmp_path)
    if os.environ.get("SSD_REPIN"):
        with open(PINNED, "w", encoding="utf-8") as fh:
            json.dump(got, fh, indent=0, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            fh.write("\n")
    assert_pinned(got)


def assert_pinned(got: Dict[str, Any]) -> None:
    with open(PINNED, encoding="utf-8") as fh:
        pinned = json.load(fh)
    assert set(got) == set(pinned)
    for name in got:
        assert set(got[name]) == set(pinned[name]), name
        for key in got[name]:
            assert got[name][key] == pinned[name][key], (name, key)
