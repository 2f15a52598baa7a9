"""The results tools at season scale: ``results compare``, ``results sort`` (symbolic links to
empty photos), ``results split`` and ``results export`` (``--format coco``, ``xlsx``, ``camtrap-dp``)
on a MegaDetector file of N entries, against ``results summary`` on the same file.

Each command runs in a process of its own (wall seconds and that process's peak RSS,
``bench_season_results.timed``), the summary first as the baseline of the same run: a shared
machine's load moves every figure, the ratio to the summary less so. The file is made by
``bench_season_results.season`` (site/camera/date folders, 0-3 boxes, or ``--detections N`` boxes
an entry down to the results floor) or given with ``--results``; ``compare`` compares the file with
itself at two thresholds (0.2 and 0.5: every entry in both, thousands of changed images): the code
that held both documents parsed peaked at about twice the summary's memory; it now reads each file
a chunk of entries at a time. ``--baseline ROOT...`` times other checkouts' code alternately with
this one; ``--md-order`` writes the file as MegaDetector does (``images`` first, indented), which
compare reads twice (once for the categories that follow the images).

    .venv/bin/python scripts/bench_season_tools.py --images 50000 --detections 84 [--only compare split]
        [--results season.json] [--baseline /tmp/main-copy /tmp/old] [--rounds 2] [--md-order]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_season_results import ROOT, _link_or_copy, season, timed  # noqa: E402

NAMES = ("summary", "compare", "sort", "split", "coco", "xlsx", "camtrap-dp")


def commands(folder: str) -> Dict[str, List[str]]:
    """The command lines, all on ``folder/season.json``; their outputs go to ``folder/out*``."""
    r = os.path.join(folder, "season.json")
    out = os.path.join(folder, "out")
    return {"summary": ["-m", "ssd", "results", "summary", r],
            "compare": ["-m", "ssd", "results", "compare", r, r, "--threshold", "0.2", "--threshold-b", "0.5",
                        "--csv", out + ".csv", "--json", out + ".json"],
            "sort": ["-m", "ssd", "results", "sort", r, "--images", os.path.join(folder, "photos"), "--into", out],
            "split": ["-m", "ssd", "results", "split", r, "--out", out],
            "coco": ["-m", "ssd", "results", "export", r, "--format", "coco", "--out", out + ".json",
                     "--images", folder],
            "xlsx": ["-m", "ssd", "results", "export", r, "--format", "xlsx", "--out", out + ".xlsx"],
            "camtrap-dp": ["-m", "ssd", "results", "export", r, "--format", "camtrap-dp", "--out", out,
                           "--latitude", "52.1", "--longitude", "4.3"]}


def _clean(folder: str) -> None:
    for path in ("out", "out.csv", "out.json", "out.xlsx"):
        subprocess.run(["rm", "-rf", os.path.join(folder, path)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--detections", type=int, metavar="N", help="boxes per entry (default: 0-3)")
    ap.add_argument("--results", metavar="PATH", help="time this results file instead of making one")
    ap.add_argument("--baseline", metavar="ROOT", nargs="+",
                    help="other checkouts, timed alternately with this one (labelled by folder name)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--md-order", action="store_true", help="write the file as MegaDetector does: images first, indented")
    ap.add_argument("--only", nargs="*", choices=NAMES, help="some of the commands (the summary always runs)")
    args = ap.parse_args()
    roots = {"this": ROOT, **{os.path.basename(os.path.abspath(b)): os.path.abspath(b) for b in args.baseline or ()}}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        path = os.path.join(folder, "season.json")
        if args.results:
            _link_or_copy(args.results, path)
        else:
            doc = season(args.images, detections=args.detections)
            with open(path, "w") as fh:
                if args.md_order:           # MegaDetector's own order and indentation
                    json.dump({"images": doc["images"], "detection_categories": doc["detection_categories"],
                               "info": doc["info"]}, fh, indent=1)
                else:
                    json.dump(doc, fh, separators=(",", ":"))
            if not args.only or "sort" in args.only:           # empty photos to link to
                for im in doc["images"]:
                    photo = os.path.join(folder, "photos", im["file"])
                    os.makedirs(os.path.dirname(photo), exist_ok=True)
                    open(photo, "wb").close()
            del doc
        print(f"{args.results or f'{args.images} entries'} ({os.path.getsize(path) / 1e6:.0f} MB)")
        for name, cmd in commands(folder).items():
            if args.only and name != "summary" and name not in args.only:
                continue
            for rnd in range(args.rounds):
                for label, root in roots.items():
                    _clean(folder)
                    r = timed(root, cmd, folder)
                    print(f"{name:<8} {label:<12} round {rnd + 1}: {r['wall_s']:6.1f} s {r['peak_mib']:6.0f} MiB",
                          flush=True)


if __name__ == "__main__":
    main()
