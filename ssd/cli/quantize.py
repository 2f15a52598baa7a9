"""``python -m ssd quantize``: an INT8 graph of a model, calibrated on its own images, stored beside it."""
from __future__ import annotations

import argparse
import sys

from ssd.inference.precision import CALIB_IMAGES, INT8_PARAMS, INT8_RECORD, INT8_SYMBOL


def register(sub) -> None:
    q = sub.add_parser("quantize", help="quantize a model to INT8 (calibrated once, stored in its folder)")
    q.add_argument("--model", required=True, help="model folder, e.g. models/tiny-pikachu")
    q.add_argument("--data", help="dataset folder to calibrate and evaluate on (default: the model's own)")
    q.add_argument("--images", type=int, default=CALIB_IMAGES, help="calibration images (training split)")
    q.add_argument("--eval-images", type=int, default=100,
                   help="validation images for the fp32 vs int8 comparison that picks the default (0: skip)")
    q.set_defaults(func=cmd_quantize)


def cmd_quantize(args: argparse.Namespace) -> int:
    from ssd.base.errors import SSDError
    from ssd.inference.quantize import quantize_model

    if args.images < 1:
        raise SSDError("--images must be at least 1")
    rec = quantize_model(args.model, data=args.data, images=args.images, eval_images=max(0, args.eval_images),
                         log=lambda s: print(s, file=sys.stderr))
    ev = rec["evaluation"]
    times = ev["forward_ms_batch1"]
    print(f"wrote {INT8_SYMBOL}, {INT8_PARAMS} and {INT8_RECORD} in {args.model}")
    print(f"batch-1 forward + decode: fp32 {times['fp32']:.1f} ms, int8 {times['int8']:.1f} ms "
          f"(MXNet {ev['engine']['engine']}, {ev['engine']['omp_threads']} OpenMP threads)")
    if "map_fp32" in ev:
        print(f"VOC07 mAP on {ev['images']} validation images: fp32 {ev['map_fp32']:.4f}, int8 {ev['map_int8']:.4f}")
    print(f"default precision for this model: {rec['recommended']}")
    return 0
