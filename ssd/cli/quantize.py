"""``python -m ssd quantize``: INT8 graphs of a model, calibrated on its own images, stored beside it."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List

from ssd.inference.engines import ENGINES
from ssd.inference.precision import CALIB_IMAGES, INT8_PARAMS, INT8_RECORD, INT8_SYMBOL


def register(sub) -> None:
    q = sub.add_parser("quantize", help="quantize a model to INT8 (calibrated once, stored in its folder)")
    q.add_argument("--model", required=True, help="model folder, e.g. models/tiny-pikachu")
    q.add_argument("--data", help="dataset folder to calibrate and evaluate on (default: the model's own; a "
                   "synthetic set that is gone is drawn again from its recorded seed)")
    q.add_argument("--images", type=int, default=CALIB_IMAGES,
                   help=f"calibration images from the training split (default {CALIB_IMAGES})")
    q.add_argument("--eval-images", type=int, default=100,
                   help="validation images for the fp32 vs int8 comparison that picks the model's precision "
                        "(default 100; 0: skip)")
    q.add_argument("--engine", choices=ENGINES, default="auto",
                   help="whose INT8 graph to make (auto, the default: every engine installed here)")
    q.set_defaults(func=cmd_quantize)


def engines_for(choice: str, model_dir: str = "") -> List[str]:
    """The engines ``--engine`` names; ``auto`` leaves ONNX Runtime out (saying why) when it is
    unusable, and MXNet out for a folder exported to ONNX (it has no MXNet weights)."""
    from ssd.inference.onnx_engine import onnxruntime_problem
    from ssd.store import is_onnx, read_meta

    if choice != "auto":
        return [choice]
    if model_dir and is_onnx(read_meta(model_dir)):
        return ["onnxruntime"]
    problem = onnxruntime_problem()
    if problem:
        print(f"note: no ONNX Runtime INT8 graph: {problem}", file=sys.stderr)
        return ["mxnet"]
    return ["mxnet", "onnxruntime"]


def _report(engine: str, rec: Dict[str, Any]) -> None:
    ev = rec["evaluation"]
    times = ev["forward_ms_batch1"]
    where = (f"MXNet {ev['engine']['engine']}, {ev['engine']['omp_threads']} OpenMP threads" if engine == "mxnet"
             else f"ONNX Runtime on {ev.get('device', 'the CPU')}")
    print(f"{engine}: batch-1 forward + decode: fp32 {times['fp32']:.1f} ms, int8 {times['int8']:.1f} ms ({where})")
    if "map_fp32" in ev:
        print(f"{engine}: VOC07 mAP on {ev['images']} validation images: fp32 {ev['map_fp32']:.4f}, "
              f"int8 {ev['map_int8']:.4f}")
    print(f"{engine}: default precision for this model: {rec['recommended']}")


def cmd_quantize(args: argparse.Namespace) -> int:
    from ssd.base.errors import SSDError
    from ssd.inference.onnx_export import INT8_ONNX_FILE, INT8_ONNX_RECORD
    from ssd.inference.quantize import quantize_engines

    if args.images < 1:
        raise SSDError("--images must be at least 1")
    records = quantize_engines(args.model, engines_for(args.engine, args.model), data=args.data,
                               images=args.images, eval_images=max(0, args.eval_images),
                               log=lambda s: print(s, file=sys.stderr))
    files = {"mxnet": f"{INT8_SYMBOL}, {INT8_PARAMS}, {INT8_RECORD}",
             "onnxruntime": f"{INT8_ONNX_FILE}, {INT8_ONNX_RECORD}"}
    print(f"wrote {'; '.join(files[e] for e in records)} in {args.model}")
    for engine, rec in records.items():
        _report(engine, rec)
    return 0
