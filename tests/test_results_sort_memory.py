"""``results sort`` holds what placing each photo needs, not the file parsed.

Why: a detector writes every box down to the results floor (0.005, as MegaDetector does), ~84 an
image; a season of 100,000 images parsed whole needed ~4.3 GB to sort links into a few folders.
Sorting needs, per image, its name, time stamp and episode, whether it failed and the classes a
threshold shows: memory in proportion to images, not boxes.
"""
from __future__ import annotations

import json
import tracemalloc

import pytest

from ssd.cli.main import main
from tests.test_results_compare_memory import IMAGES, _season

#: What the whole command may hold at its peak: a few MB of reading buffers and one chunk of
#: entries parsed, plus per image its small entry and its place in the sort's plan. The code that
#: parsed the whole file peaked at 77 MiB here (9 MiB after).
FIXED_BYTES = 12 * 2 ** 20
PER_IMAGE_BYTES = 2500


@pytest.mark.parametrize("extra", [[], ["--by-episode", "--thresholds", "person=0.1"]])
def test_peak_memory_is_in_proportion_to_images_not_boxes(tmp_path, capsys, extra):
    path = tmp_path / "a.json"
    _season(path, 0)
    photos = tmp_path / "photos"
    for im in json.loads(path.read_text())["images"]:
        (photos / im["file"]).parent.mkdir(parents=True, exist_ok=True)
        (photos / im["file"]).write_bytes(b"")
    tracemalloc.start()
    try:
        rc = main(["results", "sort", str(path), "--images", str(photos), "--into", str(tmp_path / "out"), *extra])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert sum(int(line.split()[-1]) for line in out.out.splitlines()) == IMAGES
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {IMAGES} images"
