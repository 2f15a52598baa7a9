"""``python -m ssd models``: list saved models, and the folders that are not usable, with reasons."""
from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    m = sub.add_parser("models", help="list saved models (and broken folders, with reasons)")
    m.add_argument("--root", default=None)
    m.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from ssd.store import DEFAULT_MODELS_DIR, list_models

    ok, broken = list_models(args.root or DEFAULT_MODELS_DIR)
    for m in ok:
        print(m.label)
    for b in broken:
        print(f"skipped {b.name}: {b.error}", file=sys.stderr)
    if not ok:
        print("no usable model found", file=sys.stderr)
    return 0
