"""``results export --format camtrap-dp`` and ``--format xlsx`` hold per image what their tables
need, not the results file parsed.

Why: a detector writes every box down to the results floor (0.005, as MegaDetector does), ~84 an
image; a season of 100,000 images parsed whole needed ~4.3 GB to write a package or a workbook of
the few boxes a threshold shows. Per image the export needs its media row (name, time, camera,
episode) and the detections above the threshold: memory in proportion to images and shown boxes.
"""
from __future__ import annotations

import csv
import json
import tracemalloc

import pytest

from ssd.cli.main import main

IMAGES = 2000
BOXES = 84
#: What the whole command may hold at its peak: a few MB of reading buffers and one chunk of
#: entries parsed, plus per image its kept entry and table rows, and per box shown its row.
FIXED_BYTES = 12 * 2 ** 20
PER_IMAGE_BYTES = 4000
PER_SHOWN_BOX_BYTES = 1500


def _season(path) -> None:
    """IMAGES timed entries of BOXES boxes each, written as a detector does (compact, one entry a line)."""
    cats = {"1": "animal", "2": "person", "3": "vehicle"}
    rows = []
    for i in range(IMAGES):
        # most boxes at the floor, under every threshold the flags name (as a detector's are):
        # held, they took ~70 MiB (bound ~23); one box an image in 0.05..0.149 for the flags to show or not
        confs = [round(0.005 + ((i * 7 + k * 13) % 45) / 1000, 3) for k in range(BOXES)]
        confs[0] = round(((i * 37) % 1000) / 1000, 3)
        confs[1] = round(0.05 + ((i * 11) % 100) / 1000, 3)
        dets = ",".join(f'{{"category":"{1 + (i + k) % 3}","conf":{c},"bbox":[0.1234,0.2345,0.3456,0.4567]}}'
                        for k, c in enumerate(sorted(confs, reverse=True)))
        when = f"2024:05:{1 + i // 1000:02d} {i // 60 % 24:02d}:{i % 60:02d}:{i % 7:02d}"
        rows.append(f'{{"file":"site{i % 7}/cam{i % 5}/IMG_{i:06d}.JPG","width":1920,"height":1080,'
                    f'"datetime":"{when}","detections":[{dets}],"max_detection_conf":{max(confs)}}}')
    head = json.dumps({"info": {"format_version": "1.6", "detector": "md_v5a.0.0.pt"},
                       "detection_categories": cats})
    path.write_text(head[:-1] + ',\n "images": [\n  ' + ",\n  ".join(rows) + "\n ]\n}\n")


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    """One season for the module's six exports (each reads it, none writes it)."""
    path = tmp_path_factory.mktemp("season") / "a.json"
    _season(path)
    return path


def _peak(argv) -> int:
    tracemalloc.start()
    try:
        rc = main(argv)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rc == 0
    return peak


@pytest.mark.parametrize("extra", [[], ["--threshold", "0.1", "--show-suspect"],
                                   ["--thresholds", "person=0.05", "--episode-gap", "30"]])
def test_camtrap_dp_peak_memory_is_in_proportion_to_images_not_boxes(tmp_path, capsys, season, extra):
    path = season
    out = tmp_path / "pkg"
    peak = _peak(["results", "export", str(path), "--format", "camtrap-dp", "--out", str(out),
                  "--latitude", "52.1", "--longitude", "4.3", *extra])
    capsys.readouterr()
    with open(out / "media.csv", encoding="utf-8") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == IMAGES
    with open(out / "observations.csv", encoding="utf-8") as fh:
        shown = sum(1 for row in csv.DictReader(fh) if row["observationType"] != "blank")
    assert shown
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES + PER_SHOWN_BOX_BYTES * shown
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB, {shown} boxes shown"


@pytest.mark.parametrize("extra", [[], ["--threshold", "0.1", "--show-suspect"],
                                   ["--thresholds", "person=0.05", "--episode-gap", "30"]])
def test_xlsx_peak_memory_is_in_proportion_to_images_not_boxes(tmp_path, capsys, season, extra):
    from openpyxl import load_workbook

    path = season
    out = tmp_path / "season.xlsx"
    peak = _peak(["results", "export", str(path), "--format", "xlsx", "--out", str(out), *extra])
    capsys.readouterr()
    book = load_workbook(out, read_only=True)
    assert sum(1 for _ in book["images"].iter_rows()) == IMAGES + 1
    shown = sum(1 for _ in book["detections"].iter_rows()) - 1
    assert shown
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES + PER_SHOWN_BOX_BYTES * shown
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB, {shown} boxes shown"


@pytest.mark.parametrize("fmt", ["xlsx", "camtrap-dp"])
@pytest.mark.parametrize("case", ["a bad entry late, a bad class flag", "a bad class flag, no position"])
def test_refusals_come_in_the_whole_file_readers_order(tmp_path, capsys, fmt, case):
    """Read as it goes, a fault of the file far down still comes before the flags' (its message is
    ``read_results``'s), and the flags' before the package's own (no position for a camera)."""
    from ssd.camtrap.megadetector import read_results

    path = tmp_path / "a.json"
    rows = [f'{{"file":"cam/{i}.jpg","datetime":"2024:05:01 10:00:{i % 60:02d}","detections":[]}}'
            for i in range(300)]
    if case.startswith("a bad entry"):
        rows.append('{"file":"cam/z.jpg","detections":[{"category":"9","conf":0.5,"bbox":[0,0,1,1]}]}')
    path.write_text('{"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"}, "images": [\n'
                    + ",\n".join(rows) + "]}")
    out = tmp_path / ("o.xlsx" if fmt == "xlsx" else "pkg")
    rc = main(["results", "export", str(path), "--format", fmt, "--out", str(out), "--thresholds", "pikachu=0.5"])
    err = capsys.readouterr().err
    assert rc != 0 and not out.exists()
    if case.startswith("a bad entry"):
        with pytest.raises(Exception) as whole:
            read_results(str(path))
        assert str(whole.value) in err and "pikachu" not in err
    else:
        assert "pikachu" in err
