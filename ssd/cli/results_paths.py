"""``--path-prefix`` of ``results sort|export|summary`` and ``python -m ssd results rebase`` (arguments
only): names written on another machine, read below this one's images folder (``ssd.camtrap.rebase``)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict

from ssd.cli.shown import RESULTS_HELP


def path_prefix_arg(parser: argparse.ArgumentParser) -> None:
    from ssd.camtrap.rebase import PATH_PREFIX_HELP

    parser.add_argument("--path-prefix", metavar="PREFIX", default=None, help=PATH_PREFIX_HELP)


def with_path_prefix(doc: Dict[str, Any], args: argparse.Namespace, images: str) -> Dict[str, Any]:
    """``doc`` with its names below ``--path-prefix`` made relative (as given, without one); Windows
    absolute names without a prefix are refused, naming the folder they share."""
    from ssd.camtrap.rebase import rebase_results, refuse_windows_names

    if args.path_prefix is None:
        refuse_windows_names(doc, images)
        return doc
    return rebase_results(doc, args.path_prefix)


def register_rebase(rs) -> None:
    b = rs.add_parser("rebase", help="write a new results file whose names begin with another folder "
                      "(or are relative to one): for photos moved to another machine or disk")
    b.add_argument("results", metavar="RESULTS.json", help=RESULTS_HELP)
    where = b.add_mutually_exclusive_group(required=True)
    where.add_argument("--from", dest="from_prefix", metavar="PREFIX",
                       help="the folder the names begin with now (give --to as well)")
    where.add_argument("--relative-to", metavar="PREFIX",
                       help="write the names relative to this folder (as a run over one folder writes them)")
    b.add_argument("--to", metavar="PREFIX", help="the folder they begin with in the new file")
    b.add_argument("-o", "--out", required=True, metavar="NEW.json", help="the new file (never the input)")
    b.set_defaults(func=cmd_rebase)


def cmd_rebase(args: argparse.Namespace) -> int:
    from ssd.base.errors import SSDError
    from ssd.base.text import terminal_safe
    from ssd.camtrap.megadetector import read_results
    from ssd.camtrap.rebase import output_path_checked, rebase_results
    from ssd.camtrap.run_checkpoint import write_json_with_images

    if args.from_prefix is not None and args.to is None:
        raise SSDError("give --to PREFIX with --from (or --relative-to PREFIX for relative names)")
    if args.relative_to is not None and args.to is not None:
        raise SSDError("--to goes with --from; --relative-to writes relative names")
    output_path_checked(args.results, args.out)
    doc = rebase_results(read_results(args.results), args.from_prefix or args.relative_to, args.to)
    images = doc.pop("images")
    write_json_with_images(args.out, doc, (json.dumps(im, separators=(",", ":"), allow_nan=False) for im in images))
    print(f"{len(images)} name(s) rewritten: {terminal_safe(args.out)}", file=sys.stderr)
    return 0
