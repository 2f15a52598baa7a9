"""``python -m ssd results export`` (Camtrap DP, XLSX, COCO, CSV) and ``results repeats apply`` (arguments only)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, Tuple

FORMATS = ("camtrap-dp", "xlsx", "coco", "csv")


def register_export(rs, shown_args: Callable[[argparse.ArgumentParser], None],
                    episode_args: Callable[[argparse.ArgumentParser], None]) -> None:
    from ssd.camtrap.camtrap_dp import SAMPLING_DESIGNS
    from ssd.cli.results_paths import path_prefix_arg
    from ssd.cli.shown import RESULTS_HELP, species_threshold_arg

    x = rs.add_parser("export", help="write results as a Camtrap DP package (GBIF and data platforms), an XLSX workbook, "
                      "a COCO file (boxes to correct in CVAT or Label Studio, then train on) or the CSV detect --csv "
                      "writes")
    x.add_argument("results", metavar="RESULTS.json", help=RESULTS_HELP)
    x.add_argument("--format", choices=FORMATS, required=True,
                   help="camtrap-dp: a Camtrap DP 1.0 package (GBIF, Agouti); xlsx: one workbook; coco: a COCO "
                        "JSON of every image and its boxes (put it in the images folder or annotations/ beside it); "
                        "csv: detect --csv's table, every detection down to the file's floor with its score (filter "
                        "it in a spreadsheet or script; the threshold flags do not apply)")
    x.add_argument("--out", required=True, metavar="DIR|FILE.xlsx|FILE.json|FILE.csv",
                   help="camtrap-dp: a folder; xlsx, coco, csv: a file (csv: - for stdout)")
    shown_args(x)
    x.add_argument("--images", metavar="FOLDER", help="where relative paths start (default: the folder the results file is in); "
                   "camtrap-dp, xlsx: files without a time in the results are dated by their EXIF (a video's "
                   "recorded time) read there")
    episode_args(x)
    path_prefix_arg(x)
    x.add_argument("--locations", metavar="LOCATIONS.csv",
                   help="camtrap-dp: a CSV whose header names deploymentID (or camera: the camera folder, see "
                        "--camera-depth), latitude, longitude; a row per camera")
    x.add_argument("--taxa", metavar="TAXA.csv",
                   help="camtrap-dp: the scientific name of each class of a species model, which GBIF needs: a CSV "
                        "whose header names class, scientificName (optional taxonID, taxonRank, kingdom, phylum, "
                        "taxonClass, order, family, genus, vernacularNames.eng)")
    x.add_argument("--latitude", type=float, help="camtrap-dp: one position for every deployment not in --locations")
    x.add_argument("--longitude", type=float, help="camtrap-dp: with --latitude")
    x.add_argument("--utc-offset", default="+00:00", metavar="+HH:MM",
                   help="camtrap-dp: the cameras' clock offset from UTC (EXIF times carry none; default +00:00)")
    x.add_argument("--title", default="Camera-trap detections",
                   help="camtrap-dp: the project's title (default: %(default)s)")
    x.add_argument("--contributor", default="SSD Studio export",
                   help="camtrap-dp: who made the package (default: %(default)s)")
    x.add_argument("--sampling-design", choices=SAMPLING_DESIGNS, default="opportunistic",
                   help="camtrap-dp: how the camera sites were chosen (default: %(default)s)")
    x.add_argument("--replace", action="store_true",
                   help="camtrap-dp: write into a folder that holds other files, replacing its datapackage.json and "
                        "tables of those names (without it, only a new or empty folder or one of our packages); "
                        "xlsx, coco, csv: replace an existing file (never the results file)")
    species_threshold_arg(x)
    x.set_defaults(func=cmd_export, flag_defaults={dest: x.get_default(dest) for dest in FLAG_FORMATS})


#: The flags only some formats use. Given to another, a flag would do nothing while its user believes the
#: output honours it (a position on a workbook, episodes on a CSV): refused by name. The thresholds on a CSV
#: keep their own message (``refuse_thresholds_for_csv``), which says where a threshold does apply.
FLAG_FORMATS: Dict[str, Tuple[str, ...]] = {
    "images": ("camtrap-dp", "xlsx", "coco"),
    "episode_gap": ("camtrap-dp", "xlsx", "coco"), "camera_depth": ("camtrap-dp", "xlsx", "coco"),   # coco: checked
    **{dest: ("camtrap-dp",) for dest in ("locations", "taxa", "latitude", "longitude", "utc_offset", "title",
                                          "contributor", "sampling_design")},
    "species_threshold": ("camtrap-dp", "xlsx")}


def refuse_unused_flags(args: argparse.Namespace) -> None:
    """Before any work: the flags given (other than their defaults) that ``--format`` does not use."""
    from ssd.base.errors import SSDError

    unused = [f"--{dest.replace('_', '-')}" for dest, formats in FLAG_FORMATS.items()
              if args.format not in formats and getattr(args, dest) != args.flag_defaults[dest]]
    if unused:
        raise SSDError(f"{', '.join(unused)}: not used by --format {args.format} (only by "
                       f"{' or '.join(FLAG_FORMATS[unused[0][2:].replace('-', '_')])}); leave it out")


def register_repeats(rs) -> None:
    r = rs.add_parser("repeats", help="apply the decisions of a repeat review (made on the Camera traps page)")
    rr = r.add_subparsers(dest="repeats_command", metavar="ACTION")
    rr.required = True
    a = rr.add_parser("apply", help="remove the false positives a review decided on; write a cleaned results file")
    a.add_argument("decisions", metavar="DECISIONS.json", help="the decisions a repeat review downloaded")
    a.add_argument("--results", metavar="RESULTS.json", help="default: the results file the decisions name")
    a.add_argument("-o", "--out", metavar="CLEANED.json", help="default: RESULTS.reviewed.json beside the results")
    a.set_defaults(func=cmd_repeats_apply)


def package_options(args: argparse.Namespace, root: str):
    """``PackageOptions`` from the export flags (positions checked)."""
    from ssd.base.errors import SSDError
    from ssd.camtrap.camtrap_dp import PackageOptions, check_offset, read_locations
    from ssd.camtrap.taxa import read_taxa

    if (args.latitude is None) != (args.longitude is None):
        raise SSDError("give --latitude and --longitude together")
    default = None
    if args.latitude is not None:
        if not -90 <= args.latitude <= 90 or not -180 <= args.longitude <= 180:
            raise SSDError("--latitude must be within ±90 and --longitude within ±180")
        default = (args.latitude, args.longitude)
    check_offset(args.utc_offset)
    return PackageOptions(title=args.title, contributor=args.contributor, utc_offset=args.utc_offset,
                          locations=read_locations(args.locations) if args.locations else {},
                          default_location=default, image_root=root, sampling_design=args.sampling_design,
                          taxa=read_taxa(args.taxa) if args.taxa else {}, species_threshold=args.species_threshold)


def cmd_export(args: argparse.Namespace) -> int:
    from ssd.camtrap.episodes import regroup_episodes
    from ssd.camtrap.rebase import recorded_folder_hint
    from ssd.camtrap.results_stream import read_results_above
    from ssd.cli.results_paths import with_path_prefix
    from ssd.cli.shown import shown_filter

    refuse_unused_flags(args)
    root = args.images or os.path.dirname(os.path.abspath(args.results))
    if args.format == "coco":
        refuse_file_target(args, "COCO file", "annotations.json")
        return export_coco(args, root)
    if args.format == "csv":
        return export_csv(args)
    if args.format == "xlsx":
        refuse_file_target(args, "workbook", "results.xlsx")
    # read as it goes: each entry's boxes below the threshold let go (the tables write none of them)
    doc = read_results_above(args.results, lambda head: shown_filter(head, args, check=False).lowest())
    if args.path_prefix is not None or args.format != "xlsx":    # a workbook lists the names as written
        doc = with_path_prefix(doc, args, root)
    regroup_episodes(doc, args.episode_gap, args.camera_depth)
    shown = shown_filter(doc, args)
    if args.format == "xlsx":
        from ssd.camtrap.spreadsheet import write_xlsx

        write_xlsx(doc, args.out, shown, image_root=root, species_threshold=args.species_threshold)
        print(f"{len(doc['images'])} image(s) written to {args.out}", file=sys.stderr)
        return 0
    from ssd.camtrap.camtrap_dp import write_camtrap_dp
    from ssd.camtrap.taxa import taxa_warnings

    done = write_camtrap_dp(doc, args.out, shown, package_options(args, root), replace=args.replace)
    print(f"Camtrap DP package in {args.out}: {done['deployments']} deployment(s), {done['media']} media, "
          f"{done['observations']} observation(s)", file=sys.stderr)
    if done["unmatched_locations"]:
        unmatched = ", ".join(map(repr, done["unmatched_locations"][:10]))
        print(f"warning: {len(done['unmatched_locations'])} row(s) of {args.locations} name no camera folder of these "
              f"results: {unmatched}; if one is a typo, its folder got the default position; the camera folders are "
              f"{', '.join(repr(d) for d in done['deployment_ids'][:10])}", file=sys.stderr)
    for line in taxa_warnings(done, args.taxa):
        print(f"warning: {line}", file=sys.stderr)
    if done["failed"]:
        print(f"{done['failed']} failed file(s) left out (no detections to publish)", file=sys.stderr)
    if done["left_out"]:
        print(f"{len(done['left_out'])} file(s) left out: no time stamp (no EXIF time, file not found under "
              f"{root}) or a path outside the images folder, e.g. {done['left_out'][0]}"
              f"{recorded_folder_hint(doc, root)}", file=sys.stderr)
    return 0


def refuse_file_target(args: argparse.Namespace, what: str, example: str) -> None:
    """Before any work: the file (``what``) never replaces the results, nor another file without --replace."""
    from ssd.base.errors import SSDError
    from ssd.camtrap.results_check import refuse_replacing

    refuse_replacing(args.out, [args.results], what, "--out")
    if os.path.isdir(args.out):
        raise SSDError(f"'{args.out}' is a folder; give the {what}'s name (e.g. {args.out}/{example})")
    if os.path.lexists(args.out) and not args.replace:
        raise SSDError(f"'{args.out}' exists; give --replace to write over it, or another --out")


def export_coco(args: argparse.Namespace, root: str) -> int:
    """``--format coco``: the file, read as it goes (``coco_export.read_coco_rows``), then what was
    kept and left out, on stderr."""
    from ssd.base.text import terminal_safe
    from ssd.camtrap.coco_export import read_coco_rows, write_coco_rows
    from ssd.camtrap.episodes import regroup_episodes
    from ssd.camtrap.rebase import recorded_folder_hint
    from ssd.cli.shown import shown_filter

    def check(head) -> None:                    # as the whole-file export: episodes regrouped, then the classes
        regroup_episodes(dict(head, images=[]), args.episode_gap, args.camera_depth)
        shown_filter(head, args)

    doc, rows, done = read_coco_rows(args.results, lambda head: shown_filter(head, args, check=False), root,
                                     args.path_prefix, check)
    write_coco_rows(rows, args.out)
    print(f"COCO file {terminal_safe(args.out)}: {done.images} image(s), {done.annotations} box(es)",
          file=sys.stderr)
    if done.failed:
        print(f"{len(done.failed)} failed file(s) left out", file=sys.stderr)
    if done.videos:
        print(f"{len(done.videos)} video(s) left out: COCO holds still images", file=sys.stderr)
    if done.no_size:
        print(f"{len(done.no_size)} image(s) left out: no size in the results and not readable under {root}, e.g. "
              f"{terminal_safe(done.no_size[0])}{recorded_folder_hint(doc, root)}", file=sys.stderr)
    return 0


def export_csv(args: argparse.Namespace) -> int:
    """``--format csv``: detect's CSV of the file, read as it goes (``results_csv``); ``--out -``:
    on stdout, alone. ``--images`` is not read: the CSV lists the names, as detect writes them."""
    from ssd.base.text import terminal_safe
    from ssd.camtrap.results_csv import copy_results_csv, write_results_csv_file

    refuse_thresholds_for_csv(args)
    if args.out == "-":
        done = copy_results_csv(args.results, sys.stdout, args.path_prefix)
        where = "stdout"
    else:
        refuse_file_target(args, "CSV file", "results.csv")
        done = write_results_csv_file(args.results, args.out, args.path_prefix)
        where = terminal_safe(args.out)
    failed = f", {done.failed} failed" if done.failed else ""
    print(f"CSV {where}: {done.images} image(s){failed}, {done.rows} row(s)", file=sys.stderr)
    return 0


def refuse_thresholds_for_csv(args: argparse.Namespace) -> None:
    """The CSV holds every detection with its score, as detect's does: a threshold given would be
    silently left out, or thin the rows a script re-thresholds; said instead."""
    from ssd.base.errors import SSDError

    given = [flag for flag, value in (("--threshold", args.threshold is not None), ("--thresholds", args.thresholds),
                                      ("--show-suspect", args.show_suspect)) if value]
    if given:
        verb, pronoun = ("does", "it") if len(given) == 1 else ("do", "them")
        raise SSDError(f"--format csv writes every detection with its score and suspect flag (as detect --csv "
                       f"does), to filter in a spreadsheet or script: {', '.join(given)} {verb} not apply; "
                       f"leave {pronoun} out, or use --format xlsx for a table at a threshold")


def cmd_repeats_apply(args: argparse.Namespace) -> int:
    from ssd.base.atomic import atomic_write_json
    from ssd.base.errors import SSDError
    from ssd.base.json_file import read_json_file
    from ssd.camtrap.megadetector import MAX_RESULTS_BYTES, ResultsError, read_results
    from ssd.camtrap.results_check import refuse_replacing
    from ssd.camtrap.review import apply_decisions

    try:    # read_json_file: a FIFO is refused unread, [[[[… is an error, not a RecursionError
        decisions = read_json_file(args.decisions, MAX_RESULTS_BYTES)
    except (OSError, ValueError) as err:
        raise ResultsError(f"'{args.decisions}' is not a readable decisions file ({err})") from None
    results = args.results or (decisions.get("results") if isinstance(decisions, dict) else None)
    if not isinstance(results, str) or not results:
        raise SSDError("give --results RESULTS.json (the decisions file does not name one)")
    out = args.out or os.path.splitext(results)[0] + ".reviewed.json"
    refuse_replacing(out, [results], "cleaned file")
    cleaned = apply_decisions(read_results(results), decisions)
    atomic_write_json(out, cleaned)
    last = cleaned["info"]["repeat_review"][-1]["groups"]
    removed = sum(g.get("detections_removed", 0) for g in last)
    confirmed = sum(g.get("detections_confirmed", 0) for g in last)
    print(f"{removed} detection(s) removed as false positives, {confirmed} confirmed as real: {out}", file=sys.stderr)
    return 0
