"""Start-up time of commands that run no network (prints figures; not a test).

``ssd results summary`` reads one JSON file; it used to take seconds because building the command
line imported MXNet (through the architecture list of ``train --help``). Each command is timed with
``farm-bench`` (whole process, start-up included, A and B run in turn and compared pair by pair)
against a baseline that imports MXNet first: what every command paid before. With
``--before DIR`` the baseline is instead another checkout's own ``python -m ssd`` (its ``.venv``).

Usage: .venv/bin/python scripts/bench_cli_startup.py [--runs 7] [--before /path/to/old/checkout]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, ".venv", "bin")
WITH_MXNET = "import mxnet, sys; from ssd.cli.main import main; sys.exit(main(sys.argv[1:]))"


def machine() -> str:
    """The CPU's model name and its widest vector instructions, from /proc/cpuinfo."""
    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name}, {isa}{' BF16' if 'avx512_bf16' in flags else ''}, {os.cpu_count()} cores"


def results_file(folder: str, images: int = 2000) -> str:
    """A season's results: ``images`` entries, a third empty, one in 50 failed."""
    entries = []
    for i in range(images):
        if i % 50 == 0:
            entries.append({"file": f"cam{i % 7}/{i:06d}.jpg", "failure": "truncated", "detections": None})
            continue
        dets = [] if i % 3 == 0 else [{"category": "1", "conf": round(0.1 + (i % 9) / 10, 3),
                                       "bbox": [0.1, 0.2, 0.3, 0.25]}]
        entries.append({"file": f"cam{i % 7}/{i:06d}.jpg", "detections": dets, "width": 1920, "height": 1080})
    doc = {"info": {"format_version": "1.6", "detector_metadata": {"typical_detection_threshold": 0.2}},
           "detection_categories": {"1": "animal", "2": "person"}, "images": entries}
    path = os.path.join(folder, "season.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    return path


def compare(args, before: str, runs: int) -> None:
    """One farm-bench call: this checkout's ``ssd ARGS`` (A) against the baseline (B)."""
    a = [os.path.join(BIN, "ssd"), *args]
    if before:
        b = "sh -c " + shlex.quote(f"cd {shlex.quote(before)} && exec .venv/bin/python -m ssd {shlex.join(args)}")
    else:
        b = shlex.join([os.path.join(BIN, "python"), "-c", WITH_MXNET, *args])
    print(f"\n== ssd {' '.join(args)}   (B: {'python -m ssd in ' + before if before else 'MXNet imported first'})",
          flush=True)
    subprocess.run(["farm-bench", "-n", str(runs), "--warmup", "1", "--timeout", "600", "--vs", b, "--", *a],
                   check=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--before", default="", help="another checkout (with its .venv) as the baseline")
    opts = p.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        season = results_file(tmp)
        for args in (["results", "summary", season], ["models", "--root", os.path.join(REPO, "models")],
                     ["detect", "--help"]):
            compare(args, opts.before, opts.runs)


if __name__ == "__main__":
    main()
