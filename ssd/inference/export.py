"""Export a trained model to a hybridized graph + parameters that load without our Python classes.

``python -m ssd export --model models/NAME --out models/NAME-export`` writes (via ``export_model``)

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
Detector applies the same ``box_nms`` afterwards (``ssd.models.gluoncv.decode.decode_exported``), so the NMS
threshold stays adjustable and results equal the live network's.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from typing import Any, Dict, Optional

from ssd.base.errors import ModelError, SSDError, error_gist
from ssd.models.registry import recipe_for
from ssd.store import (FORMAT, INPUT_NAME, META_FILE, ONNX_FILE, PARAMS_FILE, PREFIX, SYMBOL_FILE, SYMBOL_PARAMS,
                       is_exported, load_model, read_meta, save_model)


def check_export_target(model_dir: str, out_dir: str, fmt: str) -> None:
    """Refuse an ``--out`` that is the model itself (by any path) or holds another model.

    Why: an export replaces ``meta.json`` and its graph files in ``out_dir``; over another model
    (a trained one, an export of a different model, a folder of someone's own ``model.onnx``) that
    model would be lost. Only an earlier export of this same model in this same format is replaced.
    """
    if os.path.realpath(out_dir) == os.path.realpath(model_dir):
        raise SSDError("--out must be a different folder from --model")
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise SSDError(f"--out {out_dir} is a file, not a folder; nothing was written: choose a new folder")
    ours = (META_FILE, PARAMS_FILE, ONNX_FILE, SYMBOL_FILE, SYMBOL_PARAMS)
    present = [n for n in ours if os.path.lexists(os.path.join(out_dir, n))]
    if not present:
        return
    try:
        old = read_meta(out_dir)
    except SSDError:
        old = {}
    same = (old.get("format") == fmt and PARAMS_FILE not in present
            and os.path.realpath(str(old.get("exported_from", ""))) == os.path.realpath(model_dir))
    if not same:
        raise SSDError(f"{out_dir} already holds {', '.join(present)} (another model, or files of your own); "
                       "nothing was written: choose an empty or new --out folder")


def export_model(model_dir: str, out_dir: Optional[str] = None, ctx=None) -> Dict[str, Any]:
    """Export ``model_dir`` into ``out_dir`` (default ``<model_dir>-export``); returns its meta.

    Files land under their final names by ``os.replace`` from a staging folder next to
    ``out_dir``; ``meta.json`` is written last, so a folder with a meta.json is complete.
    """
    import mxnet as mx

    out_dir = out_dir or os.path.normpath(model_dir) + "-export"
    check_export_target(model_dir, out_dir, FORMAT)
    net, meta = load_model(model_dir, ctx=ctx)
    if is_exported(meta):
        raise SSDError(f"{model_dir} is already an exported graph; export the model it came from "
                       f"({meta.get('exported_from', 'unknown')})")
    size = int(meta["input_size"])
    graph = recipe_for(meta["arch"]).export_outputs(net)
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
    new = {k: v for k, v in meta.items() if k not in ("name", "saved", "default", "versions")}
    new.update({
        "source_versions": meta.get("versions"),
        "format": FORMAT, "default": False,
        "exported_from": os.path.abspath(model_dir),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "export": {"symbol": SYMBOL_FILE, "params": SYMBOL_PARAMS, "input": INPUT_NAME, "dtype": "float32",
                   "input_shape": ["B", 3, size, size], **graph},
    })
    save_model(out_dir, None, new)
    return new
