"""``python -m ssd export``: a model as a graph that loads without our classes (MXNet's pair, or ONNX)."""
from __future__ import annotations

import argparse
import os
import sys

from ssd.store import INPUT_NAME, ONNX_FILE, SYMBOL_FILE, SYMBOL_PARAMS

ONNX_EXAMPLE = """\
import numpy as np, onnxruntime as ort
session = ort.InferenceSession("{path}")
x = np.zeros((1, 3, {size}, {size}), np.float32)  # RGB / 255, minus mean, over std (meta.json "normalize")
outputs = session.run(None, {{"{input}": x}})     # {outputs}
print([o.shape for o in outputs])"""


def _cmd_export(args: argparse.Namespace) -> int:
    out = args.out or os.path.normpath(args.model) + ("-onnx" if args.format == "onnx" else "-export")
    if args.format == "onnx":
        from ssd.inference.onnx_export import export_onnx_folder

        meta = export_onnx_folder(args.model, out)
        graph = meta["onnx"]
        print(f"exported {args.model} ({meta['arch']}) to {out}: {ONNX_FILE} (opset {graph['opset']}, checked by "
              f"onnx.checker; anchors as constants), meta.json")
        print("run it with python -m ssd detect --model " + out + " --engine onnxruntime, or in plain ONNX Runtime:\n"
              + ONNX_EXAMPLE.format(path=os.path.join(out, ONNX_FILE), size=meta["input_size"], input=graph["input"],
                                    outputs=", ".join(graph["outputs"])), file=sys.stderr)
        return 0
    from ssd.inference.export import export_model

    meta = export_model(args.model, out)
    print(f"exported {args.model} ({meta['arch']}) to {out}: {SYMBOL_FILE}, {SYMBOL_PARAMS}, meta.json")
    print("load it with ssd.inference.detector.Detector.load(path) or mxnet.gluon.SymbolBlock.imports("
          f"'{SYMBOL_FILE}', ['{INPUT_NAME}'], '{SYMBOL_PARAMS}')", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to an MXNet symbol+params pair or an ONNX graph")
    p.add_argument("--model", required=True, help="model folder, e.g. models/my-model")
    p.add_argument("--format", choices=["symbol", "onnx"], default="symbol",
                   help="symbol: MXNet's symbol+params pair (default); onnx: model.onnx for ONNX Runtime")
    p.add_argument("--out", help="folder to write (default: MODEL-export, or MODEL-onnx for --format onnx)")
    p.set_defaults(func=_cmd_export)
