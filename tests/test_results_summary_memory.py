"""``results summary`` holds what its counts need, not the file parsed.

Why: a detector writes every box down to the results floor (0.005, as MegaDetector does), ~84 an
image; a season of 100,000 images parsed whole needed ~4.3 GB to print a dozen numbers. The
summary needs, per image, its name, time stamp and episode, whether it failed or was cut short,
and the few detections a threshold can show (the sweep: each class's best): memory in proportion
to images, not boxes.
"""
from __future__ import annotations

import json
import tracemalloc

import pytest

from ssd.cli.main import main
from tests.test_results_compare_memory import IMAGES, _season

#: What the whole command may hold at its peak: a few MB of reading buffers and one chunk of
#: entries parsed, plus per image a small entry (name, flags, the detections that count).
#: The code that parsed the whole file peaked at 77 MiB here (9 MiB after).
FIXED_BYTES = 12 * 2 ** 20
PER_IMAGE_BYTES = 1500


@pytest.mark.parametrize("extra", [[], ["--sweep"], ["--episode-gap", "30", "--thresholds", "person=0.1"]])
def test_peak_memory_is_in_proportion_to_images_not_boxes(tmp_path, capsys, extra):
    path = tmp_path / "a.json"
    _season(path, 0)
    tracemalloc.start()
    try:
        rc = main(["results", "summary", str(path), "--json", *extra])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = capsys.readouterr()
    assert rc == 0, out.err
    s = json.loads(out.out)
    counted = s["images_counted"] if extra == ["--sweep"] else s["images"]
    assert counted == IMAGES
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {IMAGES} images"
