"""``python -m ssd models``: list saved models (and unusable folders, with reasons); ``models pull``
installs a pretrained detector as a ready model folder; ``models import`` converts a copy made by hand."""
from __future__ import annotations

import argparse
import sys

from ssd.base.text import terminal_safe


#: Where models are found: the project's folder, not the current one (``ssd.workspace.models_dir``).
ROOT_HELP = "models folder (default: $SSD_MODELS_DIR, else the project's models/, wherever you run it from)"


def register(sub) -> None:
    m = sub.add_parser("models", help="list saved models; `models pull NAME` installs a pretrained detector",
                       description="List saved models (and broken folders, with reasons). "
                                   "`models pull --list` shows the pretrained detectors and their sources; "
                                   "`models pull NAME` installs one as models/NAME; `models import FILE --as NAME` "
                                   "converts a copy of its weights made by hand.")
    m.add_argument("--root", default=None, help=ROOT_HELP)
    m.set_defaults(func=cmd_models)
    actions = m.add_subparsers(dest="models_action", metavar="ACTION")
    p = actions.add_parser("pull", help="install a pretrained detector (COCO or VOC) as models/NAME",
                           description="Download a pretrained SSD (hash checked, resumable; torchvision's "
                                       "converted exactly, GluonCV's from MXNET_GLUON_REPO or ~/.mxnet/models) "
                                       "and install it as a model folder.")
    p.add_argument("name", nargs="?", metavar="NAME", help="e.g. ssd300_vgg16_coco")
    p.add_argument("--list", action="store_true", help="print the detectors that can be pulled, with their source")
    p.add_argument("--root", default=argparse.SUPPRESS, help=ROOT_HELP)
    p.set_defaults(func=cmd_pull)
    i = actions.add_parser("import", help="convert a weights file copied by hand into a model folder",
                           description="Convert FILE (torchvision .pth, .safetensors, or GluonCV .params) into a "
                                       "model folder, as `models pull NAME` would after downloading it.")
    i.add_argument("file", metavar="FILE", help="the weights file, e.g. ssd300_vgg16_coco-b556d3b4.pth")
    i.add_argument("--as", dest="as_name", required=True, metavar="NAME",
                   help="which detector it is: an entry of `models pull --list`")
    i.add_argument("--out", default=None, metavar="DIR",
                   help="the new model folder (default: NAME in $SSD_MODELS_DIR, else in the project's models/)")
    i.set_defaults(func=cmd_import)


def cmd_models(args: argparse.Namespace) -> int:
    from ssd.store import list_models
    from ssd.workspace import models_dir

    import os

    root = args.root or models_dir()
    ok, broken = list_models(root)
    for m in ok:
        print(terminal_safe(m.label))
    for b in broken:
        print(f"skipped {terminal_safe(b.name)}: {terminal_safe(b.error)}", file=sys.stderr)
    if not ok:      # the folder named: a mistyped --root must not read as an empty models folder
        where = f": {root} does not exist" if not os.path.isdir(root) else f" in {root}"
        print(terminal_safe(f"no usable model found{where}; `python -m ssd models pull --list` shows "
                            "ready-made detectors"), file=sys.stderr)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from ssd.models.pretrained import listing_line, pretrained_detectors
    from ssd.store import pull_model
    from ssd.workspace import models_dir

    if args.list or not args.name:
        if not args.list:
            print("which detector? name one of these (python -m ssd models pull NAME):", file=sys.stderr)
        print("Pretrained SSDs, live sources first; CPU time an image: batch 1, native size, 2-core AMD EPYC, "
              "torchvision's on ONNX Runtime (detect's default), GluonCV's on MXNet")
        for d in pretrained_detectors():
            print(listing_line(d))
        return 0 if args.list else 2
    result = pull_model(args.name, args.root or models_dir())
    _installed(result.path, "already installed" if result.already else "installed")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import os

    from ssd.store import import_model
    from ssd.workspace import models_dir

    out = args.out or os.path.join(models_dir(), args.as_name)
    _installed(import_model(args.file, args.as_name, out), "imported")
    return 0


def _installed(path: str, verb: str) -> None:
    from ssd.store import read_meta
    from ssd.models.knowledge import model_knowledge

    meta = read_meta(path)
    print(terminal_safe(f"{verb}: {path} — {model_knowledge(meta)}"))     # the metadata is a stranger's
    src = meta.get("source") or {}
    if src.get("kind") == "torchvision" and not src.get("published_file"):
        print(terminal_safe(f"note: this file is not torchvision's published {src.get('file')} (SHA-256 "
                            f"{src.get('sha256')}); it was converted as that architecture"), file=sys.stderr)
    print(f"try it: python -m ssd detect --model {path} IMAGE [--categories megadetector]")
