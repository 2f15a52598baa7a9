"""``python -m ssd results merge|summary|sort``: after a batch run (arguments only)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ssd.base.argtypes import probability
from ssd.base.text import terminal_safe


def register(sub) -> None:
    r = sub.add_parser("results", help="merge, summarize or sort MegaDetector-format results")
    rs = r.add_subparsers(dest="results_command", metavar="ACTION")
    rs.required = True
    m = rs.add_parser("merge", help="join shards' results into one file")
    m.add_argument("inputs", nargs="+", metavar="RESULTS.json")
    m.add_argument("-o", "--out", required=True, metavar="ALL.json")
    m.set_defaults(func=cmd_merge)
    s = rs.add_parser("summary", help="images, empty, failed, per-class counts at a threshold")
    s.add_argument("results", metavar="RESULTS.json")
    s.add_argument("--threshold", type=probability, default=None, help="default: the file's typical threshold")
    s.add_argument("--show-suspect", action="store_true", help="count detections flagged as repeats")
    s.add_argument("--json", action="store_true", help="print the counts as JSON")
    s.set_defaults(func=cmd_summary)
    o = rs.add_parser("sort", help="link or copy images into animal/person/vehicle/empty folders")
    o.add_argument("results", metavar="RESULTS.json")
    o.add_argument("--into", required=True, metavar="DIR")
    o.add_argument("--images", metavar="FOLDER", help="where relative paths start (default: the results' folder)")
    o.add_argument("--threshold", type=probability, default=None, help="default: the file's typical threshold")
    o.add_argument("--mode", choices=("symlink", "hardlink", "copy"), default="symlink")
    o.add_argument("--show-suspect", action="store_true", help="let repeats count as detections")
    o.set_defaults(func=cmd_sort)


def _threshold(doc, given):
    if given is not None:
        return float(given)
    from ssd.camtrap.megadetector import typical_threshold
    return typical_threshold(doc)


def cmd_merge(args: argparse.Namespace) -> int:
    from ssd.base.atomic import atomic_write_text
    from ssd.camtrap.merging import merge_results

    doc = merge_results(args.inputs)
    atomic_write_text(args.out, json.dumps(doc, indent=2, allow_nan=False) + "\n")   # JSON: never NaN
    print(f"{len(doc['images'])} image(s) from {len(args.inputs)} file(s) written to {terminal_safe(args.out)}",
          file=sys.stderr)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from ssd.camtrap.megadetector import read_results
    from ssd.camtrap.summary import summarize, summary_text

    doc = read_results(args.results)
    t = _threshold(doc, args.threshold)
    s = summarize(doc, t, hide_suspect=not args.show_suspect)
    print(json.dumps(s, indent=1) if args.json else summary_text(s, t))
    return 0


def cmd_sort(args: argparse.Namespace) -> int:
    from ssd.camtrap.megadetector import read_results
    from ssd.camtrap.sorting import sort_into_folders

    doc = read_results(args.results)
    root = args.images or os.path.dirname(os.path.abspath(args.results))
    counts = sort_into_folders(doc, root, args.into, _threshold(doc, args.threshold), args.mode,
                               hide_suspect=not args.show_suspect)
    for folder, n in sorted(counts.items()):
        print(f"{folder:<20} {n}")
    return 0
