"""``results split`` holds per image its name and part, not the file parsed.

Why: a detector writes every box down to the results floor (0.005, as MegaDetector does), ~84 an
image; a season of 100,000 images parsed whole needed ~4.3 GB to be cut into per-camera files.
Splitting needs, per image, its name and the part it goes to; each entry is copied into its part
as it is read: memory in proportion to images, not boxes.
"""
from __future__ import annotations

import json
import tracemalloc

import pytest

from ssd.cli.main import main
from tests.test_results_compare_memory import IMAGES, _season

#: What the whole command may hold at its peak: a few MB of reading buffers and one chunk of
#: entries parsed, plus per image its name (as read and as written) and its part.
FIXED_BYTES = 12 * 2 ** 20
PER_IMAGE_BYTES = 1500


@pytest.mark.parametrize("extra", [[], ["--camera-depth", "1"]])
def test_peak_memory_is_in_proportion_to_images_not_boxes(tmp_path, capsys, extra):
    path = tmp_path / "a.json"
    _season(path, 0)
    tracemalloc.start()
    try:
        rc = main(["results", "split", str(path), "--out", str(tmp_path / "out"), *extra])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert rc == 0, err
    parts = sorted((tmp_path / "out").iterdir())
    assert len(parts) == (7 if extra else 35)
    assert sum(len(json.loads(p.read_text())["images"]) for p in parts) == IMAGES
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {IMAGES} images"
