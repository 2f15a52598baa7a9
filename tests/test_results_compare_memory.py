"""``results compare`` holds what its outputs need, not both files parsed.

Why: a detector writes every box down to the results floor (0.005, as MegaDetector does), ~84 an
image; a season's two files of 100,000 images each held parsed side by side needed ~8.5 GB, more
than a researcher's laptop. The comparison needs, per image, its name, whether it failed, its best
score and, per class, its best score that counts: memory in proportion to images, not boxes.
"""
from __future__ import annotations

import json
import tracemalloc

from ssd.cli.main import main

IMAGES = 2000
BOXES = 84
#: What the whole command may hold at its peak: a few MB of reading buffers and one chunk of
#: entries parsed (~8 MiB measured, the same at 1,000 images as at 4,000), plus per image its name,
#: state and scores (both files, the changed rows). The code that held both documents parsed
#: peaked at 2,114 MiB here (tracemalloc counts the 2 GiB ``read_regular`` asks of ``read``).
FIXED_BYTES = 12 * 2 ** 20
PER_IMAGE_BYTES = 1500


def _season(path, shift: int) -> None:
    """IMAGES entries of BOXES boxes each, written as a detector does (compact, one entry a line)."""
    cats = {"1": "animal", "2": "person", "3": "vehicle"}
    rows = []
    for i in range(IMAGES):
        confs = [round(0.005 + ((i * 7 + k * 13 + shift) % 150) / 1000, 3) for k in range(BOXES)]
        confs[0] = round(((i * 37 + shift) % 1000) / 1000, 3)
        dets = ",".join(f'{{"category":"{1 + (i + k) % 3}","conf":{c},"bbox":[0.1234,0.2345,0.3456,0.4567]}}'
                        for k, c in enumerate(sorted(confs, reverse=True)))
        rows.append(f'{{"file":"site{i % 7}/cam{i % 5}/IMG_{i:06d}.JPG","width":1920,"height":1080,'
                    f'"detections":[{dets}],"max_detection_conf":{max(confs)}}}')
    head = json.dumps({"info": {"format_version": "1.6", "detector": "md_v5a.0.0.pt"},
                       "detection_categories": cats})
    path.write_text(head[:-1] + ',\n "images": [\n  ' + ",\n  ".join(rows) + "\n ]\n}\n")


def test_peak_memory_is_in_proportion_to_images_not_boxes(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _season(a, 0)
    _season(b, 11)
    tracemalloc.start()
    try:
        rc = main(["results", "compare", str(a), str(b), "--threshold", "0.2", "--threshold-b", "0.5",
                   "--csv", str(tmp_path / "c.csv"), "--json", str(tmp_path / "c.json")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rc == 0, capsys.readouterr().err
    changed = json.loads((tmp_path / "c.json").read_text())["changed"]
    assert len(changed) > IMAGES // 4                      # a real comparison: many rows to write
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {IMAGES} images"
