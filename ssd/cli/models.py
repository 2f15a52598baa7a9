"""``python -m ssd models``: list saved models (and unusable folders, with reasons); ``models pull``
installs one of GluonCV's pretrained detectors as a ready model folder."""
from __future__ import annotations

import argparse
import sys

from ssd.base.text import terminal_safe


def register(sub) -> None:
    m = sub.add_parser("models", help="list saved models; `models pull NAME` installs a pretrained detector",
                       description="List saved models (and broken folders, with reasons). "
                                   "`models pull --list` shows GluonCV's pretrained detectors; "
                                   "`models pull NAME` installs one as models/NAME.")
    m.add_argument("--root", default=None, help="models folder (default: models/)")
    m.set_defaults(func=cmd_models)
    actions = m.add_subparsers(dest="models_action", metavar="ACTION")
    p = actions.add_parser("pull", help="install a pretrained GluonCV detector (COCO or VOC) as models/NAME",
                           description="Download GluonCV's pretrained SSD NAME (SHA-1 checked, resumable; "
                                       "base URL from MXNET_GLUON_REPO) and install it as a model folder.")
    p.add_argument("name", nargs="?", metavar="NAME", help="e.g. ssd_512_mobilenet1.0_coco")
    p.add_argument("--list", action="store_true", help="print the detectors that can be pulled")
    p.add_argument("--root", default=argparse.SUPPRESS, help="models folder (default: models/)")
    p.set_defaults(func=cmd_pull)


def cmd_models(args: argparse.Namespace) -> int:
    from ssd.store import DEFAULT_MODELS_DIR, list_models

    ok, broken = list_models(args.root or DEFAULT_MODELS_DIR)
    for m in ok:
        print(terminal_safe(m.label))
    for b in broken:
        print(f"skipped {terminal_safe(b.name)}: {terminal_safe(b.error)}", file=sys.stderr)
    if not ok:
        print("no usable model found; `python -m ssd models pull --list` shows ready-made detectors",
              file=sys.stderr)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from ssd.models.pretrained import pretrained_detectors
    from ssd.store import DEFAULT_MODELS_DIR, model_knowledge, pull_model, read_meta

    if args.list or not args.name:
        if not args.list:
            print("which detector? name one of these (python -m ssd models pull NAME):", file=sys.stderr)
        print("GluonCV's pretrained SSDs (Apache-2.0); speed: batch 1, native size, 2-core AMD EPYC CPU")
        for d in pretrained_detectors():
            print(d.summary())
        return 0 if args.list else 2
    root = args.root or DEFAULT_MODELS_DIR
    result = pull_model(args.name, root)

    meta = read_meta(result.path)
    verb = "already installed" if result.already else "installed"
    print(terminal_safe(f"{verb}: {result.path} — {model_knowledge(meta)}"))
    print(f"try it: python -m ssd detect --model {result.path} IMAGE [--categories megadetector]")
    return 0
