#!/usr/bin/env python
"""Benchmark a camera-trap folder: ``python -m ssd detect FOLDER --recursive`` vs the tutorials' naive loop.

Run: ``.venv/bin/python scripts/bench_folder.py [--images 150] [--model models/tiny-pikachu]``.

Both sides are whole processes started the same way (Python start-up, MXNet import and model
load included), on the same model and the same folder, one after the other in this run:

* **naive**: the tutorials' loop, per image: Pillow full decode, resize, batch-1 forward,
  ``MultiBoxDetection`` (the recipe's decoder on the network as loaded, not hybridized).
* **folder**: ``python -m ssd detect --model M FOLDER --recursive --json OUT --quiet``
  (decode threads with JPEG draft decoding, batched forwards, MegaDetector JSON written).

The photos are 1920×1080 JPEGs made here: smooth scene gradients plus fine noise and texture,
so that they decode at the speed of real camera-trap photos (flat generated images decode ~4×
faster). Peak RSS of the folder run is measured at ``--images`` and at 10× as many files (the
same files hard-linked), to show memory stays flat as the folder grows.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

NAIVE = r'''
import sys, os, time
sys.path.insert(0, {root!r})
import ssd
import numpy as np
from PIL import Image
from mxnet import nd
from ssd.store import load_model
from ssd.models.registry import recipe_for
from ssd.data.preprocess import normalize_batch
net, meta = load_model({model!r})
decode = recipe_for(meta["arch"]).decoder(meta)
size = int(meta["input_size"])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk({folder!r}) for f in fs)
n = 0
for path in files:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    x = np.asarray(img.resize((size, size), Image.BILINEAR))[None]
    ids, scores, boxes = decode(net, nd.array(normalize_batch(x)), 0.45, 0.005)[0]
    n += len(scores)
print(len(files), n)
'''


def make_photos(folder: str, count: int, seed: int = 0) -> None:
    """``count`` textured 1920×1080 JPEGs in camera folders (quality 90, like trail cameras)."""
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float32)
    for i in range(count):
        cam = os.path.join(folder, f"site{i % 3}", f"cam{i % 2}")
        os.makedirs(cam, exist_ok=True)
        base = (np.sin(xx / rng.uniform(40, 200) + rng.uniform(0, 6)) * 50
                + np.cos(yy / rng.uniform(30, 150)) * 40 + 110)
        img = np.stack([base + rng.normal(0, 25, base.shape) * (c + 1) / 2 for c in range(3)], axis=-1)
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
        pil.save(os.path.join(cam, f"IMG_{i:05d}.JPG"), quality=90)


def timed_process(argv, env) -> tuple:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{argv[:4]} failed ({code}):\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "tiny-pikachu"))
    ap.add_argument("--rss-scale", type=int, default=10, help="the second RSS point is this many times --images")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--rounds", type=int, default=2,
                    help="naive and folder runs alternate this many times; the best wall time of each is kept "
                         "(the machine is shared: alternating keeps a load change from favouring one side)")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "season")
        make_photos(folder, args.images)
        naive_script = os.path.join(tmp, "naive.py")
        with open(naive_script, "w") as fh:
            fh.write(NAIVE.format(root=ROOT, model=args.model, folder=folder))
        out = os.path.join(tmp, "out.json")
        cmd = [sys.executable, "-m", "ssd", "detect", "--model", args.model, "--recursive", "--quiet", "--json", out]
        naive, ours = [], []
        for _ in range(max(1, args.rounds)):
            naive.append(timed_process([sys.executable, naive_script], env))
            ours.append(timed_process(cmd + [folder], env))
        naive_s, naive_rss, naive_cpu = min(naive)
        ours_s, ours_rss, ours_cpu = min(ours)
        n = args.images
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU; "
              f"wall seconds of every round: naive {[round(r[0], 1) for r in naive]}, "
              f"folder {[round(r[0], 1) for r in ours]}")
        print(f"| run ({n} × 1920×1080 JPEG, whole process, best of {len(naive)}) | seconds | images/s | speed-up "
              "| CPU seconds | peak RSS MB |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        print(f"| the tutorials' naive loop | {naive_s:.1f} | {n / naive_s:.1f} | 1.00× | {naive_cpu:.1f} "
              f"| {naive_rss:.0f} |")
        print(f"| `detect FOLDER --recursive` | {ours_s:.1f} | {n / ours_s:.1f} | {naive_s / ours_s:.2f}× | "
              f"{ours_cpu:.1f} | {ours_rss:.0f} |")
        if not args.skip_rss:
            big = os.path.join(tmp, "big")
            files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs)
            for k in range(args.rss_scale):
                sub = os.path.join(big, f"card{k:02d}")
                os.makedirs(sub)
                for j, f in enumerate(files):
                    os.link(f, os.path.join(sub, f"{j:05d}.jpg"))
            big_s, big_rss, big_cpu = timed_process(cmd + [big], env)
            m = n * args.rss_scale
            print(f"| `detect FOLDER --recursive`, {m} images | {big_s:.1f} | {m / big_s:.1f} | – | {big_cpu:.1f} "
                  f"| {big_rss:.0f} |")


if __name__ == "__main__":
    main()
