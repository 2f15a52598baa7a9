"""``python -m ssd results compare A.json B.json``: two runs over one season side by side (arguments
only; ``ssd.camtrap.comparing`` does the work)."""
from __future__ import annotations

import argparse
import sys

from ssd.base.argtypes import probability
from ssd.cli.shown import RESULTS_HELP, shown_args, shown_filter


def register_compare(rs) -> None:
    p = rs.add_parser("compare", help="two runs over one season: images in both, each image's state in A and B, "
                      "the transitions (empty -> animal, …) and the images that changed")
    p.add_argument("a", metavar="A.json", help=RESULTS_HELP)
    p.add_argument("b", metavar="B.json", help="the results to compare with (another detector, engine or run)")
    shown_args(p)
    p.add_argument("--threshold-b", type=probability, default=None, metavar="T",
                   help="B's own threshold (default: --threshold, else B's typical threshold); give one file "
                        "twice to compare two thresholds")
    p.add_argument("--csv", metavar="OUT.csv", help="write the images that changed state: file, state in A and B, "
                   "max score in A and B")
    p.add_argument("--json", metavar="OUT.json", help="write the comparison as JSON, the table still printed ('-': print the JSON instead of the table)")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from ssd.base.atomic import atomic_path, check_output_targets
    from ssd.base.text import terminal_safe
    from ssd.camtrap.comparing import (comparison_json_chunks, compare_results, compare_text, read_side, side_line,
                                       write_changed_csv)
    from ssd.camtrap.results_check import refuse_replacing

    outs = [o for o in (args.csv, args.json) if o not in (None, "-")]
    for flag, out in (("--csv", args.csv), ("--json", args.json)):
        if out not in (None, "-"):
            refuse_replacing(out, [args.a, args.b], "comparison", flag)
    check_output_targets(*outs)
    args_b = (argparse.Namespace(**dict(vars(args), threshold=args.threshold_b))
              if args.threshold_b is not None else args)
    # each file read as it goes, keeping a few numbers per image (two seasons parsed were ~8.5 GB)
    a = read_side(args.a, lambda head: shown_filter(head, args, check=False))
    b = read_side(args.b, lambda head: shown_filter(head, args_b, check=False))
    shown_a, shown_b = shown_filter(a.head, args), shown_filter(b.head, args_b)
    c = compare_results(a, b, shown_a, shown_b)
    if args.csv:
        with atomic_path(args.csv) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            write_changed_csv(fh, c["changed"])
        print(f"{len(c['changed'])} changed image(s) written to {terminal_safe(args.csv)}", file=sys.stderr)
    if c["in_both"] == 0 and c["images_a"] and c["images_b"]:
        print("warning: no image is in both files: were they run over different folders? python -m ssd results "
              "rebase makes one file's names match the other's", file=sys.stderr)
    if args.json is not None:
        doc = dict(c, a={"file": args.a, "threshold": shown_a.threshold, "per_class": dict(shown_a.per_class)},
                   b={"file": args.b, "threshold": shown_b.threshold, "per_class": dict(shown_b.per_class)})
        if args.json == "-":                # the JSON instead of the table, as summary --json prints it
            sys.stdout.writelines(comparison_json_chunks(doc))
            return 0
        with atomic_path(args.json) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(comparison_json_chunks(doc))
        print(f"comparison written to {terminal_safe(args.json)}", file=sys.stderr)
    # a file written (--csv, --json FILE) is said and the table still shown, as the other commands do
    print(compare_text(c, [side_line("A", args.a, a, shown_a), side_line("B", args.b, b, shown_b)]))
    return 0
