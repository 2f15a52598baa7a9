#!/usr/bin/env python
"""What colour-profile conversion costs a folder run: the decode worker on 1920×1080 JPEGs.

Run: ``.venv/bin/python scripts/bench_icc.py [--images 40] [--size 256] [--baseline /path/to/other/checkout]``.

Times ``ssd.camtrap.pipeline.decode_for_network`` (what each decode thread of ``detect FOLDER`` does:
draft decode, EXIF rotation, conversion to sRGB, resize to the network square) on three copies of
the same textured photos: without a profile, with an sRGB profile (what many phones embed) and with
an Adobe RGB profile (the test suite's, written byte by byte). ``--baseline`` times the same files
with another checkout's code (say, one without profile conversion) in alternating processes, so both
sides see the same machine load.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from ssd.camtrap.pipeline import decode_for_network
folder, size = sys.argv[2], int(sys.argv[3])
names = sorted(os.listdir(folder))
decode_for_network(0, os.path.join(folder, names[0]), names[0], size)   # imports, first transform
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    for i, n in enumerate(names):
        d = decode_for_network(i, os.path.join(folder, n), n, size)
        assert d.failure is None, d.failure
    best = min(best, time.perf_counter() - t)
print(best / len(names) * 1000)
"""


def _photos(root: str, count: int) -> dict:
    """Three folders of the same ``count`` textured 1920×1080 JPEGs: no profile, sRGB, Adobe RGB."""
    import numpy as np
    from PIL import Image, ImageCms

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from icc_fixture import adobe_rgb

    profiles = {"no profile": None, "sRGB profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
                "Adobe RGB profile": adobe_rgb()}
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1080, 0:1920]
    folders = {}
    for label, profile in profiles.items():
        folders[label] = os.path.join(root, label.replace(" ", "-"))
        os.makedirs(folders[label])
    for i in range(count):
        scene = np.stack([(x * (i + 1) / 15) % 256, (y / 4.3) % 256, ((x + y) / 7.0) % 256], axis=2)
        pixels = np.clip(scene + rng.normal(0, 18, scene.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=90)
        img = Image.open(io.BytesIO(buf.getvalue()))
        for label, profile in profiles.items():
            extra = {"icc_profile": profile} if profile else {}
            img.save(os.path.join(folders[label], f"IMG_{i:04d}.JPG"), "JPEG", quality=90, **extra)
    return folders


def _time(code: str, folder: str, size: int) -> float:
    out = subprocess.run([sys.executable, "-c", WORKER, code, folder, str(size)], check=True,
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--size", type=int, default=256, help="network input side (draft decoding target)")
    ap.add_argument("--baseline", help="another checkout to time side by side (its code, same files)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.images} photos 1920×1080, network side {args.size}, best of 3 passes per process")
    with tempfile.TemporaryDirectory() as tmp:
        folders = _photos(tmp, args.images)
        for label, folder in folders.items():
            mine, base = [], []
            for _ in range(args.rounds):
                if args.baseline:
                    base.append(_time(args.baseline, folder, args.size))
                mine.append(_time(ROOT, folder, args.size))
            line = f"{label:18s} this checkout {min(mine):6.2f} ms/photo"
            if base:
                line += f"   baseline {min(base):6.2f} ms/photo   ratio {min(mine) / min(base):.2f}"
            print(line)


if __name__ == "__main__":
    main()
