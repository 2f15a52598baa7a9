"""``python -m ssd detect``: detect objects in images and folders; table, MegaDetector JSON, CSV.

Arguments only: the run itself is ``ssd.camtrap.batch_run.run_batch``, shared with the app's
camera-trap jobs.
"""
from __future__ import annotations

import argparse
import sys

from ssd.base.signals import stop_requests
from ssd.cli.args import nms_threshold, nonnegative_int, positive_int, probability
from ssd.inference.thresholds import DEFAULT_NMS, MAX_DETECTIONS, RESULTS_FLOOR, TYPICAL_THRESHOLD


def register(sub) -> None:
    d = sub.add_parser("detect", help="detect objects in images or folders (camera-trap batches)")
    d.add_argument("--model", required=True, help="model folder, e.g. models/tiny-pikachu")
    d.add_argument("images", nargs="+", metavar="PATH", help="image files and/or folders")
    d.add_argument("--threshold", type=probability, default=TYPICAL_THRESHOLD,
                   help="score shown in the table; written as the typical threshold in the JSON")
    d.add_argument("--floor", type=probability, default=RESULTS_FLOOR,
                   help="lowest score written to the JSON/CSV, so tools can re-threshold (default 0.005)")
    d.add_argument("--max-detections", type=positive_int, default=MAX_DETECTIONS, metavar="N",
                   help="most detections written per image, highest scores first (default 100)")
    d.add_argument("--nms", type=nms_threshold, default=DEFAULT_NMS, help="NMS IoU threshold")
    d.add_argument("--json", metavar="OUT", help="write MegaDetector-format JSON here")
    d.add_argument("--csv", metavar="OUT", help="write CSV here (a row per detection, per empty image, per failure)")
    d.add_argument("--batch-size", type=positive_int, default=8)
    d.add_argument("--workers", type=positive_int, default=2, help="decode threads")
    d.add_argument("--recursive", action="store_true", help="walk subfolders of the folders given")
    d.add_argument("--absolute-paths", action="store_true",
                   help="write absolute paths (default with one folder: paths relative to it)")
    d.add_argument("--checkpoint", metavar="FILE",
                   help="the run's append-only journal (default: OUT.checkpoint.jsonl beside the --json output)")
    d.add_argument("--checkpoint-every", type=positive_int, default=500, metavar="N", help="images between checkpoints")
    d.add_argument("--resume", action="store_true", help="skip the images the checkpoint has done")
    d.add_argument("--previous-results", metavar="OLD.json", help="process only images not in this results file")
    d.add_argument("--shard", metavar="I/N", help="process the I-th of N deterministic shares of the list")
    d.add_argument("--flag-repeats", type=nonnegative_int, default=0, metavar="K",
                   help="flag a box seen at the same place in ≥ K images of one folder as suspect")
    d.add_argument("--progress-file", metavar="FILE", help=argparse.SUPPRESS)
    d.add_argument("--categories", choices=("none", "megadetector"), default="none",
                   help="megadetector: map a COCO/VOC model's classes to animal/person/vehicle (ids 1/2/3), "
                        "merging overlapping boxes across the classes of one category; others are dropped")
    d.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto",
                   help="int8 needs `python -m ssd quantize` first; auto: the model's evaluated default")
    d.add_argument("--quiet", action="store_true", help="no table on stdout")
    d.set_defaults(func=cmd_detect)


def _categories(args: argparse.Namespace):
    """``(transform, classes)`` for ``--categories``: None, None unless MegaDetector's are asked for.

    The model's classes are checked before any image is read (a model with no animal, person or
    vehicle class is refused).
    """
    if args.categories != "megadetector":
        return None, None
    from ssd.camtrap.categories import MEGADETECTOR_CLASSES, apply_categories, category_map
    from ssd.store import read_meta

    category_map(read_meta(args.model)["classes"])
    return (lambda raw: apply_categories(raw, "megadetector")), list(MEGADETECTOR_CLASSES)


def cmd_detect(args: argparse.Namespace) -> int:
    from ssd.base.atomic import check_output_targets
    from ssd.camtrap.batch_run import BatchOptions, run_batch
    from ssd.camtrap.folders import parse_shard
    from ssd.camtrap.results import text_table

    check_output_targets(args.json, args.csv)
    transform, classes = _categories(args)
    opts = BatchOptions(model=args.model, inputs=list(args.images), out_json=args.json, out_csv=args.csv,
                        recursive=args.recursive, absolute_paths=args.absolute_paths, threshold=args.threshold,
                        floor=args.floor, max_detections=args.max_detections, nms=args.nms,
                        batch_size=args.batch_size, workers=args.workers,
                        checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume,
                        previous_results=args.previous_results,
                        shard=parse_shard(args.shard) if args.shard else None,
                        flag_repeats=args.flag_repeats, progress_file=args.progress_file,
                        transform=transform, classes=classes,
                        precision=None if args.precision == "auto" else args.precision)
    with stop_requests(second_interrupts=True) as stop:
        res = run_batch(opts, stop=stop)
    if res.stopped:
        print(f"stopped after {res.processed}/{res.total} images; the checkpoint is {res.checkpoint}: "
              "run the same command with --resume to continue", file=sys.stderr)
        return 130
    for message in res.failure_messages:
        print(f"error: {message}", file=sys.stderr)
    if not args.quiet:
        print(text_table(res.document, args.threshold))
    hidden = f", {res.hidden_skipped} hidden file(s) skipped" if res.hidden_skipped else ""
    suspects = f", {res.suspects} repeated detection(s) flagged suspect" if res.suspects else ""
    print(f"{res.total - res.failures} image(s) processed, {res.failures} failed{hidden}{suspects}", file=sys.stderr)
    return 0 if res.failures == 0 else 1
