"""Time ``results draw`` and ``results crops`` on a folder of synthetic camera-trap photos.

Why: the decode dominates both (a JPEG per photo), so they run a few photos at a time in threads
(``photo_outputs.DEFAULT_WORKERS``); this measures what the threads give on this machine, and what
a resumed run (everything already there) costs.

    .venv/bin/python scripts/bench_draw_crops.py [--photos 200] [--side 2048]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ssd.camtrap.crops import write_crops  # noqa: E402
from ssd.camtrap.drawing_copies import draw_copies  # noqa: E402
from ssd.inference.filtering import ShownFilter  # noqa: E402


def make_season(root: str, photos: int, side: int) -> dict:
    """``photos`` noisy JPEGs (noise compresses as badly as foliage) in 4 camera folders, 2 boxes each."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (side * 3 // 4, side, 3), dtype=np.uint8)
    images = []
    for k in range(photos):
        rel = f"cam{k % 4}/IMG_{k:05d}.JPG"
        os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
        Image.fromarray(np.roll(base, k, axis=1)).save(os.path.join(root, rel), quality=85)
        images.append({"file": rel, "detections": [
            {"category": "1", "conf": 0.9, "bbox": [0.1, 0.2, 0.3, 0.4]},
            {"category": "2", "conf": 0.6, "bbox": [0.6, 0.5, 0.2, 0.3]}]})
    return {"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal", "2": "person"},
            "images": images}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=200)
    p.add_argument("--side", type=int, default=2048)
    a = p.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"{a.photos} photos {a.side}x{a.side * 3 // 4}; {cpu}, {os.cpu_count()} CPU(s)")
    shown = ShownFilter.of(0.2)
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "photos")
        doc = make_season(root, a.photos, a.side)
        json.dumps(doc)
        for workers in sorted({1, 2, 4}):
            for name, run in (("draw", lambda out: draw_copies(doc, root, out, shown, workers=workers)),
                              ("crops", lambda out: write_crops(doc, root, out, shown, workers=workers))):
                out = os.path.join(tmp, f"{name}{workers}")
                t = time.perf_counter()
                tally = run(out)
                first = time.perf_counter() - t
                t = time.perf_counter()
                again = run(out)
                resumed = time.perf_counter() - t
                print(f"{name:5} workers={workers}: {first:6.2f} s ({a.photos / first:5.1f} photos/s, "
                      f"{tally.written} written); resumed {resumed:5.2f} s ({again.skipped} skipped)")


if __name__ == "__main__":
    main()
