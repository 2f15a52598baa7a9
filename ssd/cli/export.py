"""``python -m ssd export``: a model as a symbol + params pair that loads without our classes."""
from __future__ import annotations

import argparse
import os
import sys

from ssd.inference.export import export_model
from ssd.store import INPUT_NAME, SYMBOL_FILE, SYMBOL_PARAMS


def _cmd_export(args: argparse.Namespace) -> int:
    out = args.out or os.path.normpath(args.model) + "-export"
    meta = export_model(args.model, out)
    print(f"exported {args.model} ({meta['arch']}) to {out}: {SYMBOL_FILE}, {SYMBOL_PARAMS}, meta.json")
    print("load it with ssd.inference.detector.Detector.load(path) or mxnet.gluon.SymbolBlock.imports("
          f"'{SYMBOL_FILE}', ['{INPUT_NAME}'], '{SYMBOL_PARAMS}')", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to a symbol+params pair (no Python class needed)")
    p.add_argument("--model", required=True, help="model folder, e.g. models/my-model")
    p.add_argument("--out", help="folder to write (default: MODEL-export)")
    p.set_defaults(func=_cmd_export)
