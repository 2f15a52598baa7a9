#!/usr/bin/env python
"""Training images/s: one process vs the parameter server with 1 and with 2 workers (+1 server).

Run: ``.venv/bin/python scripts/bench_distributed.py [--images 64] [--epochs 3] [--batch-size 16]``.
All three runs are real CLI runs, side by side in this one invocation, on the same synthetic set:

* ``python -m ssd train`` (no kvstore; the baseline);
* ``python -m ssd launch --workers 1 --servers 1 -- train …`` (the dist_sync path, one worker);
* ``python -m ssd launch --workers 2 --servers 1 -- train …`` (two workers, each its half).

Images/s is the images all workers trained on in an epoch over that epoch's wall time, averaged
over the epochs after the first (hybridization and warm-up happen in the first). The batch is
per worker, so two workers step with a global batch twice as large. On one 2-core machine the
workers share the cores (the launcher gives each ``cores / workers`` OpenMP threads): no speed-up
is to be expected here; the figure shows what the parameter-server path costs. On a machine
other jobs share, wall-clock figures follow the load (more processes get a larger share of a
contended CPU), so the CPU time of all the run's processes is reported too.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _epochs(out: str):
    with open(os.path.join(out, "events.jsonl"), encoding="utf-8") as fh:
        return [e for e in map(json.loads, fh) if e["type"] == "epoch"]


def _cpu_children() -> float:
    """CPU seconds (user + system) of every finished child process and their descendants."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(label: str, argv, out: str, images_per_epoch: int):
    t0, c0 = time.perf_counter(), _cpu_children()
    proc = subprocess.run([sys.executable, "-m", "ssd", *argv], cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - c0
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    later = _epochs(out)[1:] or _epochs(out)
    epoch_s = sum(e["train_time_s"] for e in later) / len(later)
    return label, images_per_epoch / epoch_s, epoch_s, wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--input-size", type=int, default=256)
    args = ap.parse_args()

    from ssd.data.synthetic import generate

    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "synth")
        generate(data, num_train=args.images, num_val=0, seed=0, size=args.input_size)
        common = ["--data", data, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                  "--input-size", str(args.input_size), "--device", "cpu", "--limit-val", "0"]
        usable2 = args.images - args.images % 2
        for label, prefix, n_img in (
                ("1 process (no kvstore)", [], args.images),
                ("1 worker + 1 server (dist_sync)", ["launch", "--workers", "1", "--servers", "1", "--"], args.images),
                ("2 workers + 1 server (dist_sync)", ["launch", "--workers", "2", "--servers", "1", "--"], usable2)):
            out = os.path.join(tmp, f"m{len(rows)}")
            rows.append(_run(label, prefix + ["train", "--out", out] + common, out, n_img))
    base = rows[0][1]
    print(f"\nTinySSD {args.input_size}, {args.images} synthetic images, batch {args.batch_size} per worker, "
          f"{args.epochs} epochs; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| run | images/s (all workers) | epoch | vs 1 process | whole run incl. start-up | CPU time, all processes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, ips, epoch_s, wall, cpu in rows:
        print(f"| {label} | {ips:.1f} | {epoch_s:.2f} s | {ips / base:.2f}× | {wall:.1f} s | {cpu:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
