"""A season's bookkeeping at scale: the fast paths give exactly the answers of the general code.

Why: ``results summary``, sorting and the episode counts look at every entry of a results file
(10^5–10^6 of them) several times. Time stamps are read without ``strptime`` when they have the
usual shape, and one entry's detections are filtered without building arrays; both must agree
with the rule they shortcut, on odd input too.
"""
from __future__ import annotations

import calendar
import random
import time

import numpy as np
import pytest

from ssd.camtrap import episodes
from ssd.inference.filtering import ShownFilter


def _strptime_time(text):
    """``parse_time`` as it was: each format tried with ``time.strptime``."""
    text = text.strip()[:19]
    for fmt in episodes._FORMATS:
        try:
            return float(calendar.timegm(time.strptime(text, fmt)))
        except ValueError:
            continue
    return None


@pytest.mark.parametrize("text", [
    "2024:06:01 05:03:00", "2024-06-01 05:03:00", "2024-06-01T05:03:00", " 2024:06:01 05:03:00.123 ",
    "2024:02:29 00:00:00", "2023:02:29 00:00:00", "2024:02:30 12:00:00", "2024:04:31 12:00:00",
    "2024:06:01 23:59:60", "2024:06:01 23:59:61", "2024:06:01 23:59:62", "2024:06:01 24:00:00",
    "2024:13:01 00:00:00", "2024:00:01 00:00:00", "2024:06:00 00:00:00", "0000:01:01 00:00:00",
    "2024:6:1 5:3:0", "2024:06-01 05:03:00", "2024-06-01T05:03", "\u0662\u0660\u0662\u0664:06:01 00:00:00",
    "0000:00:00 00:00:00", "", "    ",
])
def test_plain_time_stamps_read_as_strptime_reads_them(text):
    assert episodes.parse_time(text) == _strptime_time(text)


def test_random_time_stamps_read_as_strptime_reads_them():
    rnd = random.Random(7)
    for _ in range(3000):
        sep = rnd.choice(":-")
        text = (f"{rnd.choice(['0000', '0001', '1999', '2024', '9999'])}{sep}{rnd.randint(0, 13):02d}{sep}"
                f"{rnd.randint(0, 32):02d}{rnd.choice(' T')}{rnd.randint(0, 25):02d}:{rnd.randint(0, 61):02d}:"
                f"{rnd.randint(0, 63):02d}")
        assert episodes.parse_time(text) == _strptime_time(text), text


def test_one_entry_is_filtered_as_the_arrays_are():
    """``entry_detections`` (a plain loop) keeps exactly the detections ``indices`` keeps."""
    rnd = random.Random(3)
    names = {"1": "animal", "2": "person", "3": "vehicle"}
    for _ in range(2000):
        dets = [{"category": rnd.choice(["1", "2", "3", "9"]), "conf": rnd.choice([0.2, 0.5, rnd.random()]),
                 "bbox": [0, 0, 0.1, 0.1], **({"suspect": True} if rnd.random() < 0.2 else {})}
                for _ in range(rnd.randint(0, 6))]
        shown = ShownFilter.of(rnd.choice([0.0, 0.2, 0.5]), rnd.choice([None, ["animal"], ["person", "9"]]),
                               rnd.random() < 0.5, rnd.choice([None, 0, 1, 2]),
                               rnd.choice([None, {"person": 0.5}, {"animal": 0.1, "vehicle": 0.9}]))
        idx = shown.indices([d["conf"] for d in dets], [names.get(d["category"], d["category"]) for d in dets],
                            [bool(d.get("suspect")) for d in dets])
        assert shown.entry_detections({"detections": dets}, names) == [dets[i] for i in np.asarray(idx)]


def test_sort_opens_each_destination_folder_once(tmp_path, monkeypatch):
    """Consecutive images of a class share a folder: it is opened once, not once per image."""
    from ssd.camtrap import sorting
    from ssd.camtrap.megadetector import results_document

    images = []
    for cam in ("cam1", "cam2"):
        for i in range(30):
            (tmp_path / "photos" / cam).mkdir(parents=True, exist_ok=True)
            (tmp_path / "photos" / cam / f"{i:03d}.jpg").write_bytes(b"x")
            dets = [{"category": "1", "conf": 0.9, "bbox": [0, 0, 0.1, 0.1]}] if i % 2 else []
            images.append({"file": f"{cam}/{i:03d}.jpg", "width": 8, "height": 8, "detections": dets,
                           "max_detection_conf": 0.9 if dets else 0.0, "failure": None})
    doc = results_document(images, ["animal", "person", "vehicle"], "m", 0.2)
    calls = []
    real = sorting.open_folder
    monkeypatch.setattr(sorting, "open_folder", lambda base, parts: calls.append(tuple(parts)) or real(base, parts))
    counts = sorting.sort_into_folders(doc, str(tmp_path / "photos"), str(tmp_path / "sorted"), 0.2)
    assert counts == {"animal": 30, "empty": 30}
    assert sorted(calls) == [("animal", "cam1"), ("animal", "cam2"), ("empty", "cam1"), ("empty", "cam2")]
    assert len(list((tmp_path / "sorted" / "animal" / "cam2").iterdir())) == 15
    assert (tmp_path / "sorted" / "empty" / "cam1" / "000.jpg").resolve() == tmp_path / "photos" / "cam1" / "000.jpg"


def test_merge_streams_one_entry_a_line(tmp_path, capsys):
    """``results merge`` writes as a batch run does (one compact entry per line, never the whole
    document as one indented string), and what it writes reads back as the merged results."""
    import json

    from ssd.camtrap.megadetector import read_results, results_document
    from ssd.cli.main import main

    paths = []
    for k in range(2):
        images = [{"file": f"cam{k}/{i:03d}.jpg", "width": 8, "height": 8,
                   "detections": [{"category": "1", "conf": 0.5, "bbox": [0.1, 0.2, 0.3, 0.4]}],
                   "max_detection_conf": 0.5, "failure": None} for i in range(5)]
        paths.append(tmp_path / f"s{k}.json")
        paths[-1].write_text(json.dumps(results_document(images, ["animal", "person", "vehicle"], "m", 0.2)))
    out = tmp_path / "all.json"
    assert main(["results", "merge", *map(str, paths), "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    entries = [ln for ln in lines if ln.lstrip().startswith('{"file"')]
    assert len(entries) == 10 and all(json.loads(ln.rstrip(",")) for ln in entries)
    merged = read_results(str(out))
    assert [im["file"] for im in merged["images"]] == [f"cam{k}/{i:03d}.jpg" for k in range(2) for i in range(5)]
    assert "10 image(s) from 2 file(s)" in capsys.readouterr().err
