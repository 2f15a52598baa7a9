"""The Camera traps page's server side on a season's results file: memory and time per step.

Why: the CLI's results commands read a file as it goes (``ssd.camtrap.results_stream``), but the
page opens the same files in a server a lab shares, and holds what it opened for every session.
This times, in a process of its own (its own peak RSS, as ``bench_season_results.timed``), the
library calls the page makes, in its order (``app_pages/camera_traps.py``'s ``browser``):

* open: ``_shared._results``, held per file version: ``page_results.open_compact`` (compact records
  and an index; a checkout without it: ``read_results``, the file parsed whole) + ``freeze_loaded_data``;
* the counts (``summarize`` with the ``episode_layout``), the images shown (``filter_entries``), a
  page of them (``page_of``, ``in_full`` + ``picture_caption``: the captions the grid draws, no photos) and the
  threshold explorer (``threshold_sweep``);
* then a confidence slider move (0.5), a state filter ("empty") and the next page of images.

The resident memory after each step (VmRSS) and the peak (VmHWM) are printed. The page in AppTest
(first render, slider move, regroup): ``bench_season_results.py --only page``.

    .venv/bin/python scripts/bench_camera_page.py --images 10000 --detections 84 [--baseline ROOT] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from bench_season_results import _SPAWN, _write_season, season  # noqa: E402

STEPS = r"""
import sys, time
from ssd.base.memory import freeze_loaded_data
from ssd.camtrap.browse import filter_entries, page_of, picture_caption, split_failures
from ssd.camtrap.episodes import episode_layout
from ssd.camtrap.megadetector import read_results, typical_threshold
from ssd.camtrap.summary import summarize
from ssd.camtrap.sweep import threshold_sweep
from ssd.inference.filtering import ShownFilter


def rss():
    with open("/proc/self/status") as fh:
        f = dict(line.split(":", 1) for line in fh)
    return int(f["VmRSS"].split()[0]) / 1024, int(f["VmHWM"].split()[0]) / 1024


def step(name, fn):
    t = time.perf_counter()
    out = fn()
    now, peak = rss()
    print(f"  {name:<28} {time.perf_counter() - t:6.2f} s   RSS {now:6.0f} MiB   peak {peak:6.0f} MiB", file=sys.stderr)
    return out


def view(doc, shown, state, page, layout):
    s = summarize(doc, shown, layout=layout)
    entries = filter_entries(doc, shown, None, state)
    readable = split_failures(entries)[0]
    words = [picture_caption(e, doc["detection_categories"], shown) for e in in_full(doc, index, page_of(readable, page))]
    return s, len(entries), words


try:                                    # a checkout whose page holds compact records
    from ssd.camtrap.page_results import in_full, open_compact
except ImportError:                     # one whose page holds the file parsed whole
    in_full, open_compact = (lambda doc, index, entries: list(entries)), (lambda path: (read_results(path), None))

print(f"  {'start':<28} {'':>8}   RSS {rss()[0]:6.0f} MiB", file=sys.stderr)
doc, index = step("open (read + freeze)", lambda: (open_compact(sys.argv[1]), freeze_loaded_data())[0])
layout = step("episode layout", lambda: episode_layout(doc))
shown = ShownFilter.of(min(1.0, typical_threshold(doc)), None, True)
step("first view (counts, page 1)", lambda: view(doc, shown, "all", 1, layout))
step("threshold explorer (sweep)", lambda: threshold_sweep(doc, shown))
slid = ShownFilter.of(0.5, None, True)
step("slider to 0.5", lambda: view(doc, slid, "all", 1, layout))
step("state filter: empty", lambda: view(doc, slid, "empty", 1, layout))
step("page 2", lambda: view(doc, slid, "empty", 2, layout))
"""


def run(code_root: str, path: str, folder: str) -> None:
    """``STEPS`` with ``code_root``'s package in a process of its own (started through ``_SPAWN``, so
    its peak is its own, not this script's, which has just made the season): its lines and peak."""
    env = dict(os.environ, PYTHONPATH=code_root, SSD_DATA_DIR=os.path.join(folder, "data"), SSD_FORCE_CPU="1")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _SPAWN, sys.executable, "-c", STEPS, path], cwd=code_root, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(p.stderr[-3000:])
    lines = p.stderr.splitlines()
    peak = [int(ln.split()[1]) for ln in lines if ln.startswith("PEAK_KB ")][-1] / 1024
    print("\n".join(ln for ln in lines if ln.startswith("  ")))
    print(f"  whole process: {wall:.1f} s (imports included), peak RSS {peak:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--detections", type=int, default=84, metavar="N", help="boxes per entry (mostly low-scored)")
    ap.add_argument("--baseline", metavar="ROOT", help="another checkout, run alternately with this one")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    roots = {"this": ROOT, **({"baseline": os.path.abspath(args.baseline)} if args.baseline else {})}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        _write_season(folder, season(args.images, detections=args.detections), args.detections)
        path = os.path.join(folder, "season.json")
        print(f"{args.images} entries x {args.detections} boxes ({os.path.getsize(path) / 1e6:.0f} MB)")
        for rnd in range(args.rounds):
            for label, root in roots.items():
                print(f"{label}, round {rnd + 1}:")
                run(root, path, folder)
                sys.stdout.flush()


if __name__ == "__main__":
    main()
