"""``python -m ssd``: make data, train, detect, evaluate, list models.

User errors (``SSDError``) print one line on stderr and exit with status 2; nothing a
person can cause should end in a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from .errors import SSDError


def _parse_floats(text: str) -> List[List[float]]:
    """'0.2,0.272;0.37,0.447' → [[0.2, 0.272], [0.37, 0.447]] (one group per scale)."""
    try:
        return [[float(v) for v in grp.split(",") if v.strip()] for grp in text.split(";") if grp.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like '0.2,0.272;0.37,0.447', got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    from .detection import DEFAULT_NMS, DEFAULT_THRESHOLD

    p = argparse.ArgumentParser(prog="python -m ssd", description="SSD object detection: data, training, "
                                "detection and evaluation (MXNet + GluonCV).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    data = sub.add_parser("data", help="make, download or describe datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    dsub.required = True
    for mod in ("synth", "download", "summary"):
        try:
            __import__(f"ssd.{mod}", fromlist=["register_cli"]).register_cli(dsub)
        except ModuleNotFoundError as err:
            if err.name != f"ssd.{mod}":
                raise

    t = sub.add_parser("train", help="train a model into models/NAME",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--data", required=True, help="dataset folder (RecordIO Pikachu-style or COCO Camera Traps)")
    t.add_argument("--model", default="tiny", dest="arch", help="architecture: " + ", ".join(_archs()))
    t.add_argument("--out", required=True, help="model folder to write, e.g. models/my-model")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, help="default: 0.01 for tiny, 0.001×batch/32 for zoo models")
    t.add_argument("--wd", type=float, default=5e-4)
    t.add_argument("--momentum", type=float, help="default: 0.9")
    t.add_argument("--lr-schedule", choices=["constant", "cosine", "step"], help="default: cosine (tiny), step (zoo)")
    t.add_argument("--input-size", type=int, help="default: 256 (tiny), the native size (zoo)")
    t.add_argument("--sizes", type=_parse_floats, help="anchor sizes per scale, e.g. '0.2,0.272;0.37,0.447;…'")
    t.add_argument("--ratios", type=_parse_floats, help="anchor ratios per scale (one group = all scales)")
    t.add_argument("--cls-loss", choices=["ce", "focal"], default="ce")
    t.add_argument("--box-loss", choices=["l1", "smooth_l1"], help="default: smooth_l1")
    t.add_argument("--hard-negative-ratio", type=float, help="negatives kept per positive; 0 = off (default: 3, the SSD paper)")
    t.add_argument("--loss-norm", choices=["d2l", "positives"],
                   help="positives (default): SSD paper, divide by positive anchors; d2l: mean over anchors")
    t.add_argument("--no-augment", dest="augment", action="store_false")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    t.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    t.add_argument("--val-fraction", type=float, default=0.2, help="validation share when the dataset has none")
    t.add_argument("--no-cache", dest="cache", action="store_false",
                   help="decode large photos every epoch instead of once into a cache")
    t.add_argument("--limit-train", type=int, help="use only the first N training images")
    t.add_argument("--limit-val", type=int, help="use only the first N validation images")
    t.add_argument("--max-iters", type=int, dest="max_iters_per_epoch", help="cap iterations per epoch")
    t.add_argument("--kvstore", default="device", help="gluon.Trainer kvstore (device, local, dist_sync…)")
    t.add_argument("--pretrained", help="zoo models: imagenet, voc, coco or a .params file")
    t.add_argument("--default", action="store_true", help="mark the model as the app's default")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("detect", help="detect objects in images")
    d.add_argument("--model", required=True, help="model folder, e.g. models/tiny-pikachu")
    d.add_argument("images", nargs="+", metavar="IMAGE")
    d.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="minimum score shown")
    d.add_argument("--nms", type=float, default=DEFAULT_NMS, help="NMS IoU threshold")
    d.add_argument("--json", metavar="OUT", help="write MegaDetector-format JSON here")
    d.add_argument("--csv", metavar="OUT", help="write CSV here")
    d.add_argument("--batch-size", type=int, default=8)
    d.set_defaults(func=cmd_detect)

    e = sub.add_parser("eval", help="VOC07 mAP and per-class AP on a dataset split")
    e.add_argument("--model", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--split", choices=["val", "train"], default="val")
    e.add_argument("--nms", type=float, default=DEFAULT_NMS)
    e.add_argument("--limit", type=int, help="evaluate only the first N images")
    e.add_argument("--json", metavar="OUT", help="write the result as JSON")
    e.add_argument("--plot", metavar="OUT.png", help="save precision-recall curves")
    e.set_defaults(func=cmd_eval)

    # [export hook] `python -m ssd export --model models/NAME --out models/NAME-export` (ssd/export.py)
    from .export import register_cli as _register_export
    _register_export(sub)

    m = sub.add_parser("models", help="list saved models (and broken folders, with reasons)")
    m.add_argument("--root", default=None)
    m.set_defaults(func=cmd_models)
    return p


def _archs() -> List[str]:
    from .model import ARCHITECTURES
    return list(ARCHITECTURES)


def cmd_train(args: argparse.Namespace) -> int:
    from .training import TrainConfig, command_line, train

    fields = {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if hasattr(args, k)}
    fields["command"] = command_line(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    cfg = TrainConfig(**fields)
    res = train(cfg)
    best = res.best
    msg = f"{res.status}: model in {res.model_dir}"
    if best.get("val_map") is not None:
        msg += f" (best epoch {best['epoch']}, val mAP {best['val_map']:.4f})"
    print(msg)
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from .detection import Detector
    from .errors import ImageError
    from .images import load_image
    from .results import detections_csv, megadetector_json, text_table

    det = Detector.load(args.model)
    results = []
    pending = []

    def flush() -> None:
        if not pending:
            return
        outs = det.detect_many([li for _, li in pending], nms=args.nms)
        for (path, _), raw in zip(pending, outs):
            results.append((path, raw.filter(args.threshold), None))
        pending.clear()

    failures = 0
    for path in args.images:
        try:
            li = load_image(path, draft_to=det.input_size)
        except (ImageError, OSError) as err:
            failures += 1
            msg = str(err) if isinstance(err, ImageError) else f"{path}: cannot read ({err.strerror or err})"
            print(f"error: {msg}", file=sys.stderr)
            results.append((path, None, msg))
            continue
        pending.append((path, li))
        if len(pending) >= args.batch_size:
            flush()
    flush()
    order = {p: i for i, p in enumerate(args.images)}
    results.sort(key=lambda r: order.get(r[0], 0))
    print(text_table(results))
    name = os.path.basename(os.path.normpath(args.model))
    if args.json:
        from .fsutil import atomic_write_json
        atomic_write_json(args.json, megadetector_json(results, det.classes, name, args.threshold))
    if args.csv:
        from .fsutil import atomic_write_text
        atomic_write_text(args.csv, detections_csv(results))
    ok = len(args.images) - failures
    print(f"{ok} image(s) processed, {failures} failed", file=sys.stderr)
    return 0 if failures == 0 else 1


def cmd_eval(args: argparse.Namespace) -> int:
    from .datasets import open_dataset
    from .detection import Detector
    from .evaluation import evaluate

    det = Detector.load(args.model)
    splits = open_dataset(args.data, seed=det.meta.get("training", {}).get("args", {}).get("seed", 0))
    ds = splits.val if args.split == "val" else splits.train
    if ds is None or len(ds) == 0:
        raise SSDError(f"{args.data} has no {args.split} split to evaluate")
    if [c for c in splits.classes] != det.classes:
        print(f"note: dataset classes {splits.classes} differ from the model's {det.classes}; "
              "class ids are compared as they are", file=sys.stderr)
    res = evaluate(det, ds, nms=args.nms, limit=args.limit)
    print(res.table())
    if args.json:
        from .fsutil import atomic_write_json
        atomic_write_json(args.json, {"map": res.map, "per_class_ap": res.per_class_ap,
                                      "num_images": res.num_images, "num_boxes": res.num_boxes})
    if args.plot:
        from .plots import pr_curve_figure
        pr_curve_figure(res).savefig(args.plot, dpi=100)
        print(f"precision-recall curves: {args.plot}", file=sys.stderr)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .store import DEFAULT_MODELS_DIR, list_models

    ok, broken = list_models(args.root or DEFAULT_MODELS_DIR)
    for m in ok:
        print(m.label)
    for b in broken:
        print(f"skipped {b.name}: {b.error}", file=sys.stderr)
    if not ok:
        print("no usable model found", file=sys.stderr)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SSDError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
