"""``python -m ssd results merge|summary|sort|export|rebase|repeats|split|compare|draw|crops``: after a batch run (arguments only)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ssd.base.argtypes import seconds
from ssd.base.text import terminal_safe
from ssd.cli.results_paths import path_prefix_arg, register_rebase, with_path_prefix
from ssd.cli.shown import RESULTS_HELP, shown_args as _shown_args, shown_filter, species_threshold_arg


def register(sub) -> None:
    r = sub.add_parser("results", help="merge, summarize, sort, export (Camtrap DP, XLSX), rebase, split or "
                       "compare MegaDetector-format results; draw their boxes on copies, crop them; apply a "
                       "repeat review")
    rs = r.add_subparsers(dest="results_command", metavar="ACTION")
    rs.required = True
    m = rs.add_parser("merge", help="join shards' results, or the parts of a results split, into one file")
    m.add_argument("inputs", nargs="+", metavar="RESULTS.json",
                   help="the shards' results files (--shard I/N runs), or the files results split wrote")
    m.add_argument("-o", "--out", required=True, metavar="ALL.json", help="the merged file (never one of the inputs)")
    m.add_argument("--allow-missing", action="store_true",
                   help="merge even when shards of the --shard I/N split, or parts of a results split, are missing "
                        "(the file records which shards, and how many parts)")
    m.set_defaults(func=cmd_merge)
    s = rs.add_parser("summary", help="images and episodes: empty, failed, per class, at a threshold")
    s.add_argument("results", metavar="RESULTS.json", help=RESULTS_HELP)
    _shown_args(s)
    episode_args(s)
    path_prefix_arg(s)
    s.add_argument("--sweep", action="store_true",
                   help="images and episodes with detections at thresholds 0.05-0.95, and how many change state")
    s.add_argument("--json", action="store_true", help="print the counts as JSON")
    species_threshold_arg(s)
    s.set_defaults(func=cmd_summary)
    o = rs.add_parser("sort", help="link or copy images into animal/person/vehicle/empty folders")
    o.add_argument("results", metavar="RESULTS.json", help=RESULTS_HELP)
    o.add_argument("--into", required=True, metavar="DIR",
                   help="new folder of class folders (animal/, person/, empty/, failed/, …); the photos stay "
                        "where they are")
    o.add_argument("--images", metavar="FOLDER", help="where relative paths start (default: the folder the results file is in)")
    _shown_args(o, "let repeats count as detections")
    o.add_argument("--mode", choices=("symlink", "hardlink", "copy"), default="symlink",
                   help="how each photo gets into its folder (default: symlink); never a move")
    o.add_argument("--by-episode", action="store_true",
                   help="keep bursts together: every frame of an episode goes where its detections go")
    o.add_argument("--by", choices=SORT_BY, default=SORT_BY[0],
                   help="class folders (default), or species: a classified file's animal/ divided into species "
                        "folders (animal/red-deer, animal/multiple, animal/unclassified)")
    species_threshold_arg(o)
    episode_args(o)
    path_prefix_arg(o)
    o.set_defaults(func=cmd_sort)
    from ssd.cli.results_export import register_export, register_repeats

    register_export(rs, _shown_args, episode_args)
    register_rebase(rs)
    register_repeats(rs)
    from ssd.cli.results_split import register_split

    register_split(rs, camera_depth_arg)
    from ssd.cli.results_compare import register_compare

    register_compare(rs)
    from ssd.cli.results_images import register_draw_crops

    register_draw_crops(rs, _shown_args)


def camera_depth_arg(parser: argparse.ArgumentParser) -> None:
    """``--camera-depth`` of the commands that group by camera: regroup by another rule than the file's."""
    from ssd.camtrap.cameras import CAMERA_DEPTH_HELP, camera_rule_arg

    parser.add_argument("--camera-depth", type=camera_rule_arg, default=None, metavar="auto|N",
                        help=CAMERA_DEPTH_HELP.replace("auto (default)", "auto") +
                        " (default: the rule the results record, else auto)")


#: What ``results sort --by`` divides by: the detector's classes, or also the classifier's species.
SORT_BY = ("class", "species")


def episode_args(parser: argparse.ArgumentParser) -> None:
    """``--episode-gap`` and ``--camera-depth``: the commands that count, sort or export by episode
    regroup them as asked (``regroup_episodes``; the page's "Episode gap" and "Camera folder")."""
    parser.add_argument("--episode-gap", type=seconds, default=None, metavar="SECONDS",
                        help="regroup episodes with this gap (default: the file's episodes, else 120 s)")
    camera_depth_arg(parser)


def cmd_merge(args: argparse.Namespace) -> int:
    from ssd.camtrap.merging import merge_results
    from ssd.camtrap.results_check import refuse_replacing
    from ssd.camtrap.run_checkpoint import write_json_with_images

    refuse_replacing(args.out, args.inputs, "merged file")
    doc = merge_results(args.inputs, allow_missing=args.allow_missing)
    lacking = (doc["info"].get("ssd_batch") or {}).get("shards_missing")
    if lacking:
        print("warning: shard(s) " + ", ".join(f"{i}/{n}" for i, n in lacking) + " missing: their images are not "
              "in the merged file", file=sys.stderr)
    parts_missing = (doc["info"].get("ssd_batch") or {}).get("parts_missing")
    if parts_missing:
        print(f"warning: {parts_missing} part(s) of a split missing: their cameras' images are not in the merged "
              "file", file=sys.stderr)
    images = doc.pop("images")
    # streamed, one compact entry a line as a batch run writes them: the whole text of a season's
    # results as one string (indented) was twice the memory of the merged entries themselves
    write_json_with_images(args.out, doc, (json.dumps(im, separators=(",", ":"), allow_nan=False)  # never NaN
                                           for im in images))
    print(f"{len(images)} image(s) from {len(args.inputs)} file(s) written to {terminal_safe(args.out)}",
          file=sys.stderr)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from ssd.camtrap.episodes import regroup_episodes
    from ssd.camtrap.summary import read_for_summary, summarize, summary_text
    from ssd.camtrap.sweep import sweep_text, threshold_sweep

    # per image only what the counts read (not its ~84 boxes); the flags' class names are checked
    # below, after the file's own refusals and the prefix's, as they always were
    doc = read_for_summary(args.results, lambda head: shown_filter(head, args, check=False), sweep=args.sweep)
    if args.path_prefix is not None:        # names only: summary reads no image, so Windows names may stay
        doc = with_path_prefix(doc, args, "")
    shown = shown_filter(doc, args)
    regroup_episodes(doc, args.episode_gap, args.camera_depth)
    if args.sweep:
        s = threshold_sweep(doc, shown)
        print(json.dumps(s, indent=1) if args.json else sweep_text(s))
        return 0
    s = summarize(doc, shown, species_threshold=args.species_threshold)
    print(json.dumps(s, indent=1) if args.json else summary_text(s, shown))
    return 0


def cmd_sort(args: argparse.Namespace) -> int:
    from ssd.camtrap.episodes import regroup_episodes
    from ssd.camtrap.sorting import BySpecies, sort_into_folders
    from ssd.camtrap.summary import read_for_summary

    root = args.images or os.path.dirname(os.path.abspath(args.results))
    # per image only what placing it reads (the summary's entry: name, time, episode, failure, the
    # detections a threshold can show), not its ~84 boxes; the class names checked after, as before
    doc = read_for_summary(args.results, lambda head: shown_filter(head, args, check=False))
    doc = with_path_prefix(doc, args, root)
    regroup_episodes(doc, args.episode_gap, args.camera_depth)
    missing: list = []
    by_species = BySpecies.of(doc, args.species_threshold) if args.by == "species" else None
    counts = sort_into_folders(doc, root, args.into, shown_filter(doc, args), args.mode,
                               hide_suspect=not args.show_suspect, by_episode=args.by_episode, missing=missing,
                               by_species=by_species)
    for folder, n in sorted(counts.items()):
        print(f"{folder:<20} {n}")
    if missing:
        from ssd.camtrap.rebase import recorded_folder_hint

        print(f"warning: {len(missing)} of {len(doc['images'])} image(s) not found under {terminal_safe(root)} "
              f"(not sorted), e.g. {terminal_safe(missing[0])!r}{recorded_folder_hint(doc, root)}", file=sys.stderr)
    return 0
