"""Episode counts (``episodes.episode_counts``, and ``summarize``'s ``episodes``), computed from one
filtering pass per entry and a grouping kept per file, equal a straightforward count: each episode's
state and classes asked of its frames one by one, on randomised seasons."""
import random

import pytest

from ssd.camtrap.episodes import (episode_classes, episode_counts, episode_groups, episode_layout,
                                  episode_state, file_gap, parse_time)
from ssd.camtrap.cameras import file_camera_rule
from ssd.camtrap.megadetector import results_document
from ssd.camtrap.summary import summarize
from ssd.inference.filtering import ShownFilter


def reference_counts(doc, threshold, gap=None):
    """The counts as they were made before: per episode, ``episode_state`` and ``episode_classes``."""
    shown = ShownFilter.at(threshold)
    names = doc.get("detection_categories") or {}
    images = doc.get("images", [])
    rule = file_camera_rule(doc)
    out = {"episodes": 0, "with_detections": 0, "empty": 0, "failed": 0, "untimed": 0,
           "per_class": {n: 0 for n in names.values()}, "gap": file_gap(doc) if gap is None else gap,
           "camera_rule": rule.describe(), "cameras": len({rule.camera_of(im["file"]) for im in images})}
    for members in episode_groups(doc, gap).values():
        out["episodes"] += 1
        out[{"failed": "failed", "empty": "empty", "detections": "with_detections"}[
            episode_state(doc, members, shown)]] += 1
        if len(members) == 1 and parse_time(images[members[0]].get("datetime")) is None:
            out["untimed"] += 1
        for name in episode_classes(doc, members, shown):
            out["per_class"][name] = out["per_class"].get(name, 0) + 1
    return out


def _detection(rnd):
    d = {"category": rnd.choice("123"), "conf": round(rnd.choice([rnd.random(), 0.005 + 0.1 * rnd.random()]), 3),
         "bbox": [0.1, 0.2, 0.3, 0.4]}
    if rnd.random() < 0.1:
        d["suspect"] = True
    return d


def _entry(rnd, k):
    cam = f"site{rnd.randint(0, 2)}/cam{rnd.randint(0, 2)}/2024-06-0{rnd.randint(1, 3)}"
    video = rnd.random() < 0.1
    f = f"{cam}/{'VID' if video else 'IMG'}_{k:04d}.{'MP4' if video else 'JPG'}"
    if rnd.random() < 0.05:
        return {"file": f, "failure": "cannot read", "detections": None}
    e = {"file": f, "detections": sorted((_detection(rnd) for _ in range(rnd.choice([0, 0, 1, 3, 20]))),
                                         key=lambda d: -d["conf"]), "failure": None}
    e["max_detection_conf"] = max((d["conf"] for d in e["detections"]), default=0.0)
    r = rnd.random()
    if r < 0.8:
        e["datetime"] = f"2024:06:0{rnd.randint(1, 3)} 10:{rnd.randint(0, 20):02d}:{rnd.randint(0, 59):02d}"
    elif r < 0.9:
        e["datetime"] = "not a time"
    if video:
        e.update(frame_rate=30.0, frames_processed=[0, 30])
        if rnd.random() < 0.3:
            e["warning"] = "cut short: 2 of 9 s read"
    return e


@pytest.mark.parametrize("seed", range(6))
def test_episode_counts_equal_the_frame_by_frame_count(seed):
    rnd = random.Random(seed)
    doc = results_document([_entry(rnd, k) for k in range(rnd.randint(0, 300))], ["animal", "person", "vehicle"],
                           "m", 0.2)
    layout = episode_layout(doc)
    filters = [0.0, 0.05, 0.2, 0.5, 0.95, ShownFilter.of(0.3, per_class={"person": 0.8, "vehicle": 0.02}),
               ShownFilter.of(0.2, hide_suspect=False), ShownFilter.of(0.1, per_class={"animal": 0.6},
                                                                        hide_suspect=False)]
    for t in filters:
        want = reference_counts(doc, t)
        assert episode_counts(doc, t) == want
        assert episode_counts(doc, t, layout=layout) == want
        assert summarize(doc, t, layout=layout)["episodes"] == want
        assert summarize(doc, t)["episodes"] == want
    for gap in (5.0, 600.0):
        assert episode_counts(doc, 0.2, gap=gap) == reference_counts(doc, 0.2, gap=gap)


def test_the_counts_can_tell_states_and_classes_apart():
    """Not a tautology: the seasons above hold episodes of each kind, and an episode of failed and
    empty frames is empty, one with a failed frame and a detection is with detections."""
    cam = "s/c/"
    images = [{"file": cam + "a.jpg", "datetime": "2024:06:01 10:00:00", "failure": "x", "detections": None},
              {"file": cam + "b.jpg", "datetime": "2024:06:01 10:00:10", "failure": None, "detections": []},
              {"file": cam + "c.jpg", "datetime": "2024:06:01 12:00:00", "failure": "x", "detections": None},
              {"file": cam + "d.jpg", "datetime": "2024:06:01 14:00:00", "failure": "x", "detections": None},
              {"file": cam + "e.jpg", "datetime": "2024:06:01 14:00:30", "failure": None,
               "detections": [{"category": "2", "conf": 0.7, "bbox": [0.1, 0.1, 0.2, 0.2]}]},
              {"file": cam + "f.jpg", "failure": None,
               "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], "suspect": True}]}]
    doc = results_document(images, ["animal", "person", "vehicle"], "m", 0.2)
    e = episode_counts(doc, 0.5)
    assert (e["episodes"], e["with_detections"], e["empty"], e["failed"], e["untimed"]) == (4, 1, 2, 1, 1)
    assert e["per_class"] == {"animal": 0, "person": 1, "vehicle": 0}
    shown = episode_counts(doc, ShownFilter.of(0.5, hide_suspect=False))
    assert shown["with_detections"] == 2 and shown["per_class"]["animal"] == 1
    assert e == reference_counts(doc, 0.5)
