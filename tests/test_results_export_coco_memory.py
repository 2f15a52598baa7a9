"""``results export --format coco`` holds the COCO file's rows, not the results file parsed.

Why: a detector writes every box down to the results floor (0.005, as MegaDetector does), ~84 an
image; a season of 100,000 images parsed whole needed ~4.3 GB to write a COCO file of the few
boxes a threshold shows. The export needs, per image, its COCO row (and name, to refuse one listed
twice) and the rows of the boxes shown: memory in proportion to images and shown boxes.
"""
from __future__ import annotations

import json
import tracemalloc

import pytest

from ssd.cli.main import main
from tests.test_results_export_memory import IMAGES, season  # noqa: F401 (season: a fixture)

#: What the whole command may hold at its peak: a few MB of reading buffers and one chunk of
#: entries parsed, plus per image its COCO row and name, and per box shown its row (~200 bytes).
#: The code that parsed the whole file peaked at 76-77 MiB here.
FIXED_BYTES = 12 * 2 ** 20
PER_IMAGE_BYTES = 1500
PER_SHOWN_BOX_BYTES = 300


@pytest.mark.parametrize("extra", [[], ["--threshold", "0.1", "--show-suspect"],
                                   ["--thresholds", "person=0.05", "--episode-gap", "30"]])
def test_peak_memory_is_in_proportion_to_images_not_boxes(tmp_path, capsys, season, extra):
    path = season
    out = tmp_path / "coco.json"
    tracemalloc.start()
    try:
        rc = main(["results", "export", str(path), "--format", "coco", "--out", str(out), *extra])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert rc == 0, err
    coco = json.loads(out.read_text())
    assert len(coco["images"]) == IMAGES and coco["annotations"]
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES + PER_SHOWN_BOX_BYTES * len(coco["annotations"])
    assert peak < bound, (f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {IMAGES} images, "
                          f"{len(coco['annotations'])} boxes shown")


def _entries_file(path, names, last="") -> None:
    rows = [f'{{"file":"{n}","width":640,"height":480,"detections":[]}}' for n in names]
    path.write_text('{"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"}, "images": [\n'
                    + ",\n".join(rows) + last + "]}")


@pytest.mark.parametrize("case", ["outside then a bad entry", "twice then a bad entry", "outside then a bad class",
                                  "prefix refuses then outside", "windows then outside"])
def test_a_refusal_found_while_reading_waits_for_those_the_whole_file_reader_gave_first(tmp_path, capsys, case):
    """Read as it goes, the COCO export meets a name outside the images folder (or one listed twice)
    before a fault of the file further on: the message is the file's, as when the file was read whole;
    and the prefix's refusals and the flags' come before the images folder's, as they did."""
    from ssd.camtrap.megadetector import read_results

    path = tmp_path / "a.json"
    names = ["../out.jpg"] + [f"cam/{i}.jpg" for i in range(300)]
    bad = ',\n{"file":"cam/z.jpg","detections":[{"category":"9","conf":0.5,"bbox":[0,0,1,1]}]}'
    extra: list = []
    if case == "twice then a bad entry":
        names = ["cam/0.jpg"] + names[1:]
    if case == "outside then a bad class":
        bad, extra = "", ["--thresholds", "pikachu=0.5"]
    if case == "prefix refuses then outside":
        bad, extra = "", ["--path-prefix", "cam2"]
        names = names[1:] + ["../out.jpg"]
    if case == "windows then outside":
        bad, names = "", names + ["D:\\\\season\\\\x.jpg"]
    _entries_file(path, names, bad if "bad entry" in case else "")
    if "bad entry" in case:
        with pytest.raises(Exception) as whole:
            read_results(str(path))
        expected = str(whole.value)
    rc = main(["results", "export", str(path), "--format", "coco", "--out", str(tmp_path / "c.json"), *extra])
    err = capsys.readouterr().err
    assert rc != 0 and not (tmp_path / "c.json").exists()
    if "bad entry" in case:
        assert expected in err
    elif case == "outside then a bad class":
        assert "pikachu" in err
    elif case == "prefix refuses then outside":
        assert "path prefix" in err
    else:
        assert "written on Windows" in err
