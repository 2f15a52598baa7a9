"""``python -m ssd results draw|crops``: photos with their boxes drawn, and one JPEG per box (arguments only)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Dict, List

from ssd.base.argtypes import fraction, nonnegative_int, positive_int, split_names


def class_list(text: str) -> List[str]:
    """``--classes animal,person``: the names, blanks dropped (checked against the file later); a name
    holding a comma is quoted (``"deer, red",animal``, ``split_names``)."""
    names = split_names(text)
    if not names:
        raise argparse.ArgumentTypeError("give one or more class names, e.g. animal,person")
    return names


def _common(p: argparse.ArgumentParser, shown_args: Callable[[argparse.ArgumentParser], None]) -> None:
    from ssd.cli.results_paths import path_prefix_arg
    from ssd.cli.shown import RESULTS_HELP

    p.add_argument("results", metavar="RESULTS.json", help=RESULTS_HELP)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="new folder for the outputs, keeping the photos' folders (never the images folder "
                        "nor inside it); "
                        "run again to finish a stopped run: what is there is skipped")
    p.add_argument("--images", metavar="FOLDER", help="where relative paths start (default: the folder the results file is in)")
    shown_args(p)
    p.add_argument("--classes", type=class_list, default=None, metavar="CLASS,...",
                   help="only detections of these classes, e.g. animal,person (default: all)")
    path_prefix_arg(p)


def register_draw_crops(rs, shown_args: Callable[[argparse.ArgumentParser], None]) -> None:
    from ssd.camtrap.crops import DEFAULT_MARGIN, DEFAULT_MIN_SIZE
    from ssd.camtrap.drawing_copies import DEFAULT_WIDTH
    from ssd.camtrap.photo_outputs import DEFAULT_SEED
    from ssd.cli.shown import species_threshold_arg

    d = rs.add_parser("draw", help="copies of the photos with their boxes drawn, and an index.html gallery")
    _common(d, shown_args)
    d.add_argument("--sample", type=positive_int, default=None, metavar="N", help="only N photos, chosen at random")
    d.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help="which random sample (default: %(default)s, the same photos each time)")
    d.add_argument("--width", type=nonnegative_int, default=DEFAULT_WIDTH, metavar="PX",
                   help="copies at most this wide (default: %(default)s; 0: full size)")
    species_threshold_arg(d)
    d.set_defaults(func=cmd_draw)
    c = rs.add_parser("crops", help="one JPEG per detection and crops.csv (to train a species classifier)")
    _common(c, shown_args)
    c.add_argument("--margin", type=fraction, default=DEFAULT_MARGIN, metavar="FRACTION",
                   help="add this fraction of the box's width and height on each side (default: %(default)s)")
    c.add_argument("--square", action="store_true", help="square crops (the box's longer side), as many "
                   "classifiers take")
    c.add_argument("--min-size", type=nonnegative_int, default=DEFAULT_MIN_SIZE, metavar="PX",
                   help="leave out boxes narrower or lower than this (default: %(default)s)")
    c.set_defaults(func=cmd_crops)


def _read(args: argparse.Namespace, keep_above: Callable[[Dict[str, Any], float], Dict[str, Any]]
          ) -> Dict[str, Any]:
    """The results with their names below ``--path-prefix`` made relative; of each entry,
    ``keep_above(entry, floor)``: the detections the thresholds can show. Read as it goes, as
    ``results export`` reads (a season's ~84 boxes an image never held)."""
    from ssd.camtrap.results_stream import read_results_kept
    from ssd.cli.results_paths import with_path_prefix
    from ssd.cli.shown import shown_filter

    def keep_for(head: Dict[str, Any]) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
        floor = shown_filter(head, args, check=False).lowest()
        return lambda entry: keep_above(entry, floor)

    doc = read_results_kept(args.results, keep_for)
    return with_path_prefix(doc, args, _root(args))


def _root(args: argparse.Namespace) -> str:
    return args.images or os.path.dirname(os.path.abspath(args.results))


def _shown(doc: Dict[str, Any], args: argparse.Namespace):
    from ssd.camtrap.photo_outputs import with_classes
    from ssd.cli.shown import shown_filter

    return with_classes(shown_filter(doc, args), args.classes, doc.get("detection_categories") or {})


def _report(tally, what: str, doc: Dict[str, Any], root: str) -> None:
    from ssd.camtrap.rebase import recorded_folder_hint

    hint = recorded_folder_hint(doc, root) if tally.missing else ""
    for line in tally.lines(what):
        if hint and " missing: " in line:
            line += hint
        print(line, file=sys.stderr)


def _progress():
    """The batch run's progress line on stderr (done/total, photos/s, ETA, unreadable), at its pace."""
    from ssd.camtrap.progress import Progress

    line: List[Any] = []

    def told(done: int, total: int, unreadable: int) -> None:
        if not line:
            line.append(Progress(total, 0, sys.stderr, None))
        line[0].done, line[0].failures = done, unreadable
        line[0].report()                # at its pace; the summary follows the last photo
    return told


def cmd_draw(args: argparse.Namespace) -> int:
    from ssd.base.text import terminal_safe
    from ssd.camtrap.drawing_copies import draw_copies
    from ssd.camtrap.results_stream import above_floor

    doc = _read(args, above_floor)
    tally = draw_copies(doc, _root(args), args.out, _shown(doc, args), args.sample, args.seed, args.width,
                        progress=_progress(), species_threshold=args.species_threshold)
    _report(tally, f"drawn copies in {terminal_safe(args.out)} (index.html)", doc, _root(args))
    return 0


def cmd_crops(args: argparse.Namespace) -> int:
    from ssd.base.text import terminal_safe
    from ssd.camtrap.crops import placed_above, write_crops

    doc = _read(args, placed_above)
    tally = write_crops(doc, _root(args), args.out, _shown(doc, args), args.margin, args.square, args.min_size,
                        progress=_progress())
    _report(tally, f"crops in {terminal_safe(args.out)} (crops.csv)", doc, _root(args))
    return 0
