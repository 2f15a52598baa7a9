#!/usr/bin/env python
"""Epoch time on an ENA24-shaped set (1920×1080 JPEGs): decode-once cache vs decoding every epoch.

Run: ``.venv/bin/python scripts/bench_cache.py [--images 64] [--epochs 2]``. Both runs go through
``ssd.training.loop.train`` (the code the CLI and the app use); only ``cache`` differs. The second
epoch is the one that matters: the cache is built during the first.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    from cct_fixture import make_ena24_like

    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        make_ena24_like(tmp, n_images=args.images, seed=0)
        for cache in (False, True):
            t0 = time.perf_counter()
            res = train(TrainConfig(data=tmp, out=os.path.join(tmp, f"m-{cache}"), epochs=args.epochs,
                                    batch_size=args.batch_size, cache=cache, limit_val=0, device="cpu"),
                        install_signal_handlers=False)
            total = time.perf_counter() - t0
            rows.append((cache, res.history[-1]["train_time_s"], res.history[-1]["samples_per_s"], total))
    print(f"\nENA24-shaped set: {args.images} images of 1920×1080, TinySSD 256, batch {args.batch_size}\n")
    print("| data path | epoch (last) | img/s | whole run incl. cache build |")
    print("| --- | --- | --- | --- |")
    for cache, epoch_s, ips, total in rows:
        print(f"| {'decode-once cache' if cache else 'decode JPEGs every epoch'} | {epoch_s:.1f} s | {ips:.1f} | {total:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
