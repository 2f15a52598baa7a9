"""``python -m ssd eval``: VOC07 mAP and per-class AP of a model on a dataset split."""
from __future__ import annotations

import argparse
import sys

from ssd.base.errors import SSDError
from ssd.base.text import terminal_safe
from ssd.base.argtypes import nms_threshold, positive_int
from ssd.inference.engines import ENGINES
from ssd.inference.thresholds import DEFAULT_NMS


def register(sub) -> None:
    e = sub.add_parser("eval", help="VOC07 mAP and per-class AP on a dataset split, with the ENA24 tutorial's "
                       "micro-F1 and accuracy over anchors")
    e.add_argument("--model", required=True, help="model folder, e.g. models/tiny-pikachu")
    e.add_argument("--data", required=True, help="dataset folder, as for train --data")
    e.add_argument("--split", choices=["val", "train", "test"], default="val",
                   help="val (default), train, or test: the set's own held-out test split (Roboflow's test/, "
                        "VOC2007's test.txt)")
    e.add_argument("--nms", type=nms_threshold, default=DEFAULT_NMS,
                   help=f"NMS IoU threshold (default {DEFAULT_NMS:g})")
    e.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto",
                   help="int8 needs `python -m ssd quantize` first; auto (default): the model's evaluated choice")
    e.add_argument("--engine", choices=ENGINES, default="auto",
                   help="inference engine (auto, the default: the fastest this machine runs; onnxruntime uses a GPU "
                        "when it can)")
    e.add_argument("--limit", type=positive_int, help="evaluate only the first N images")
    e.add_argument("--json", metavar="OUT", help="write the result as JSON")
    e.add_argument("--plot", metavar="OUT.png", help="save precision-recall curves")
    e.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from ssd.base.atomic import check_output_targets
    from ssd.data.dataset import open_dataset
    from ssd.inference.engines import load_detector
    from ssd.inference.evaluation import evaluate, held_out_split

    check_output_targets(args.json, args.plot)
    det = load_detector(args.model, args.engine, args.precision, log=lambda s: print(s, file=sys.stderr))
    print(f"engine: {det.describe()}", file=sys.stderr)
    splits = open_dataset(args.data, **held_out_split(det.meta))
    ds = splits.split(args.split)
    if ds is None or len(ds) == 0:
        why = [reason for reason in splits.skipped if reason.startswith(f"{args.split}/ left out")]
        raise SSDError(f"{args.data} has no {args.split} split to evaluate "
                       f"(it has: {', '.join(splits.split_names()) or 'none'})" + "".join(f"; {w}" for w in why))
    if [c for c in splits.classes] != det.classes:
        print(terminal_safe(f"note: dataset classes {splits.classes} differ from the model's {det.classes}; "
                            "classes are matched by name (by index when no name is shared); boxes of classes "
                            "the model lacks are left out"), file=sys.stderr)
    res = evaluate(det, ds, nms=args.nms, limit=args.limit)
    print(terminal_safe(f"{args.split} split ({ds.name}, {res.num_images} images)"))
    print(terminal_safe(res.table(), keep_newlines=True))                    # class names from the model
    if args.json:
        from ssd.base.atomic import atomic_write_json
        atomic_write_json(args.json, {"split": args.split, "map": res.map, "per_class_ap": res.per_class_ap,
                                      "num_images": res.num_images, "num_boxes": res.num_boxes,
                                      "unscored_boxes": res.unscored_boxes, "difficult_boxes": res.difficult_boxes,
                                      "crowd_regions": res.crowd_regions,
                                      "micro_f1": res.micro_f1, "accuracy": res.accuracy,
                                      "anchor_counts": res.anchor_counts, "info": {"inference": det.engine_info()}})
    if args.plot:
        from ssd.viz.plots import pr_curve_figure
        from ssd.base.atomic import atomic_path
        with atomic_path(args.plot) as tmp:
            pr_curve_figure(res).savefig(tmp, dpi=100, format=(args.plot.rsplit(".", 1)[-1] if "." in args.plot else "png"))
        print(f"precision-recall curves: {args.plot}", file=sys.stderr)
    return 0
