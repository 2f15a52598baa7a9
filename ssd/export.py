"""Export a trained model to a hybridized graph + parameters that load without our Python classes.

``python -m ssd export --model models/NAME --out models/NAME-export`` writes

* ``model-symbol.json`` and ``model-0000.params`` — MXNet's ``HybridBlock.export`` pair, float32
  input named ``data`` of shape ``(B, 3, S, S)`` normalized with ``meta["normalize"]``;
* ``meta.json`` — the source model's metadata plus ``"format": "symbol"`` and an ``export``
  section naming the files, the input and the outputs.

The folder is an ordinary model folder: ``store.load_model`` and ``Detector.load`` open it with
``gluon.SymbolBlock.imports`` (no TinySSD or GluonCV ``SSD`` class involved), so detection,
evaluation and the app work on it unchanged.

Outputs: TinySSD graphs return ``(anchors, cls_preds, box_preds)`` as the live network does and
are decoded with ``MultiBoxDetection``. GluonCV zoo graphs are exported **without** their NMS
step — ``(ids, scores, boxes)`` for every anchor and class, boxes in input pixels — and the
Detector applies the same ``box_nms`` afterwards (``ssd.zoo.decode_exported``), so the NMS
threshold stays adjustable and results equal the live network's.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from typing import Any, Dict, Optional, Tuple

from .errors import ModelError, SSDError, error_gist

FORMAT = "symbol"
PREFIX = "model"
SYMBOL_FILE = f"{PREFIX}-symbol.json"
SYMBOL_PARAMS = f"{PREFIX}-0000.params"
INPUT_NAME = "data"


def is_exported(meta: Dict[str, Any]) -> bool:
    return meta.get("format") == FORMAT


def symbol_files(meta: Dict[str, Any]) -> Tuple[str, str]:
    """(symbol, params) file names of an exported model (base names only: no path tricks)."""
    exp = meta.get("export") or {}
    return (os.path.basename(str(exp.get("symbol") or SYMBOL_FILE)),
            os.path.basename(str(exp.get("params") or SYMBOL_PARAMS)))


def params_file(meta: Dict[str, Any]) -> str:
    """The parameter file a model folder must hold (used by ``store.list_models``)."""
    return symbol_files(meta)[1]


def export_model(model_dir: str, out_dir: Optional[str] = None, ctx=None) -> Dict[str, Any]:
    """Export ``model_dir`` into ``out_dir`` (default ``<model_dir>-export``); returns its meta.

    Files land under their final names by ``os.replace`` from a staging folder next to
    ``out_dir``; ``meta.json`` is written last, so a folder with a meta.json is complete.
    """
    import mxnet as mx

    from .store import META_FILE, load_model, save_model
    from .zoo import is_zoo_arch

    out_dir = out_dir or os.path.normpath(model_dir) + "-export"
    if os.path.abspath(out_dir) == os.path.abspath(model_dir):
        raise SSDError("--out must be a different folder from --model")
    net, meta = load_model(model_dir, ctx=ctx)
    if is_exported(meta):
        raise SSDError(f"{model_dir} is already an exported graph; export the model it came from "
                       f"({meta.get('exported_from', 'unknown')})")
    size = int(meta["input_size"])
    zoo = is_zoo_arch(meta["arch"])
    if zoo:
        net.set_nms(nms_thresh=-1)  # keep NMS out of the graph: the Detector applies it, adjustable
    net.hybridize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net(mx.nd.zeros((1, 3, size, size), ctx=ctx or mx.cpu(), dtype="float32"))
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        try:
            net.export(os.path.join(staging, PREFIX), epoch=0)
        except Exception as err:
            raise ModelError(f"{model_dir}: the network could not be exported ({error_gist(err)})") from None
        os.makedirs(out_dir, exist_ok=True)
        old_meta = os.path.join(out_dir, META_FILE)
        if os.path.exists(old_meta):
            os.remove(old_meta)  # the folder is incomplete until the new meta.json lands
        for name in (SYMBOL_FILE, SYMBOL_PARAMS):
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    outputs = (["ids", "scores", "boxes_px"] if zoo else ["anchors", "cls_preds", "box_preds"])
    new = {k: v for k, v in meta.items() if k not in ("name", "saved", "default", "versions")}
    new.update({
        "source_versions": meta.get("versions"),
        "format": FORMAT, "default": False,
        "exported_from": os.path.abspath(model_dir),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "export": {"symbol": SYMBOL_FILE, "params": SYMBOL_PARAMS, "input": INPUT_NAME, "dtype": "float32",
                   "input_shape": ["B", 3, size, size], "outputs": outputs, "nms_in_graph": False if zoo else None,
                   "decode": ("ssd.zoo.decode_exported: box_nms(topk 400, post 100) on the outputs" if zoo
                              else "MultiBoxDetection on softmax(cls_preds)")},
    })
    save_model(out_dir, None, new)
    return new


def load_symbol_model(model_dir: str, meta: Optional[Dict[str, Any]] = None, ctx=None):
    """``(SymbolBlock, meta)`` of an exported folder; ``ModelError`` on any failure."""
    import mxnet as mx
    from mxnet import gluon

    from .store import read_meta

    meta = meta or read_meta(model_dir)
    sym_name, params_name = symbol_files(meta)
    sym, params = os.path.join(model_dir, sym_name), os.path.join(model_dir, params_name)
    for path in (sym, params):
        if not os.path.isfile(path):
            raise ModelError(f"{model_dir}: exported model lacks {os.path.basename(path)}")
    input_name = str((meta.get("export") or {}).get("input") or INPUT_NAME)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = gluon.SymbolBlock.imports(sym, [input_name], params, ctx=ctx or mx.cpu())
    except Exception as err:
        raise ModelError(f"{model_dir}: the exported graph does not load ({error_gist(err)})") from None
    return net, meta


def _cmd_export(args: argparse.Namespace) -> int:
    out = args.out or os.path.normpath(args.model) + "-export"
    meta = export_model(args.model, out)
    print(f"exported {args.model} ({meta['arch']}) to {out}: {SYMBOL_FILE}, {SYMBOL_PARAMS}, meta.json")
    print("load it with ssd.detection.Detector.load(path) or mxnet.gluon.SymbolBlock.imports("
          f"'{SYMBOL_FILE}', ['{INPUT_NAME}'], '{SYMBOL_PARAMS}')", file=sys.stderr)
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to a symbol+params pair (no Python class needed)")
    p.add_argument("--model", required=True, help="model folder, e.g. models/my-model")
    p.add_argument("--out", help="folder to write (default: MODEL-export)")
    p.set_defaults(func=_cmd_export)
