"""``python -m ssd results split``: one results file per camera or folder, names relative to it,
for Timelapse opened at that folder (arguments only; ``ssd.camtrap.splitting`` does the work)."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ssd.cli.results_paths import path_prefix_arg, with_path_prefix
from ssd.cli.shown import RESULTS_HELP


def register_split(rs, camera_depth_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    p = rs.add_parser("split", help="one results file per camera folder (or per folder N levels down), names "
                      "relative to it: for Timelapse opened at that folder")
    p.add_argument("results", metavar="RESULTS.json", help=RESULTS_HELP)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for the files (siteA_cam1.json, …; top-folder.json for photos directly in the "
                        "top folder); a file already there is never replaced")
    camera_depth_arg(p)
    path_prefix_arg(p)
    p.set_defaults(func=cmd_split)


def cmd_split(args: argparse.Namespace) -> int:
    from ssd.base.text import terminal_safe
    from ssd.camtrap.cameras import file_camera_rule
    from ssd.camtrap.splitting import split_results_file

    # read as it goes: per image its name and part, each entry copied into its part, not the
    # document parsed (~84 boxes an image); the same refusals, in the same order
    written, rule = split_results_file(
        args.results, args.out, lambda doc: with_path_prefix(doc, args, None),
        lambda doc: args.camera_depth if args.camera_depth is not None else file_camera_rule(doc))
    for path, n in written:
        print(f"{n:>8} image(s)  {terminal_safe(path)}", file=sys.stderr)
    print(f"{len(written)} file(s) in {terminal_safe(args.out)} ({rule.describe()})", file=sys.stderr)
    return 0
