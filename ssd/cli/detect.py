"""``python -m ssd detect``: detect objects in images; table, MegaDetector JSON, CSV."""
from __future__ import annotations

import argparse
import os
import sys

from ssd.inference.detector import DEFAULT_NMS, DEFAULT_THRESHOLD


def register(sub) -> None:
    d = sub.add_parser("detect", help="detect objects in images")
    d.add_argument("--model", required=True, help="model folder, e.g. models/tiny-pikachu")
    d.add_argument("images", nargs="+", metavar="IMAGE")
    d.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="minimum score shown")
    d.add_argument("--nms", type=float, default=DEFAULT_NMS, help="NMS IoU threshold")
    d.add_argument("--json", metavar="OUT", help="write MegaDetector-format JSON here")
    d.add_argument("--csv", metavar="OUT", help="write CSV here")
    d.add_argument("--batch-size", type=int, default=8)
    d.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto",
                   help="int8 needs `python -m ssd quantize` first; auto: the model's evaluated default")
    d.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> int:
    from ssd.inference.detector import Detector
    from ssd.base.errors import ImageError
    from ssd.data.images import load_image
    from ssd.inference.results import detections_csv, megadetector_json, text_table

    det = Detector.load(args.model, precision=args.precision)
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
        from ssd.base.atomic import atomic_write_json
        atomic_write_json(args.json, megadetector_json(results, det.classes, name, args.threshold))
    if args.csv:
        from ssd.base.atomic import atomic_write_text
        atomic_write_text(args.csv, detections_csv(results))
    ok = len(args.images) - failures
    print(f"{ok} image(s) processed, {failures} failed", file=sys.stderr)
    return 0 if failures == 0 else 1
