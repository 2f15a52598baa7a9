"""Inference precision: ``fp32`` (oneDNN-fused graph) or ``int8`` (quantized once, stored beside the model).

* **fp32**: the network is turned into a graph with any in-graph NMS taken out (the recipe's
  ``export_outputs``; GluonCV SSDs then get the same ``box_nms`` after the graph, so results
  equal the live network's) and fused by oneDNN (``optimize_for(backend='MKLDNN')``:
  convolution + BatchNorm + ReLU become one operator). Outputs equal the plain hybridized net
  to ~1e-5.
* **int8**: ``python -m ssd quantize`` quantizes that graph with MXNet's
  ``quantize_net_v2`` (naive min/max calibration on a few of the model's own training images,
  ``Concat`` and ``Flatten`` kept in fp32 so the anchors stay exact, ``elemwise_mul`` too: MXNet's
  quantized multiply takes signed int8 only and fails on SSDlite's hardswish) and writes
  ``int8-symbol.json`` + ``int8-0000.params`` and the calibration record ``int8.json`` (written
  last) into the model folder. Loading reads those files: it never re-calibrates.

The record also holds the model's own evaluation of both precisions (VOC07 mAP on its
validation images and the batch-1 forward time); ``default_precision`` picks INT8 only when its
mAP is within ``MAP_TOLERANCE`` of fp32 and it is faster, else fp32. A record whose source
parameters changed since (the model was retrained) is stale: loading INT8 then says to re-run
``quantize``, and the default falls back to fp32.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple


from ssd.base.errors import ModelError, SSDError, error_gist
from ssd.base.file_digest import file_digest
from ssd.base.params_file import import_graph
from ssd.models.registry import recipe_for
from ssd.store import INPUT_NAME, PARAMS_FILE, is_exported, is_onnx, load_model, params_file, read_meta

PRECISIONS = ("fp32", "int8")
INT8_PREFIX = "int8"
INT8_SYMBOL = f"{INT8_PREFIX}-symbol.json"
INT8_PARAMS = f"{INT8_PREFIX}-0000.params"
INT8_RECORD = "int8.json"
MAP_TOLERANCE = 0.01             # INT8 may lose at most this much mAP to be the default
CALIB_IMAGES = 8                 # enough for naive min/max calibration (MXNet's quantization recipe)
EXCLUDED_OPERATORS = ["Concat", "Flatten", "elemwise_mul"]   # see the docstring


@dataclass
class PreparedNet:
    """A network ready for the Detector: the graph, its decoder and what was done to it."""

    net: Any
    decoder: Callable
    precision: str
    note: str


def check_precision(precision: Optional[str]) -> Optional[str]:
    """``None`` (the model's default) or one of ``PRECISIONS``; ``SSDError`` otherwise."""
    if precision is None or precision == "auto":
        return None
    if precision not in PRECISIONS:
        raise SSDError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)} (or auto)")
    return precision


def graph_decoder(meta: Dict[str, Any]) -> Callable:
    """The decoder of the model's graph form (NMS outside the graph, as exported graphs have it)."""
    return recipe_for(meta["arch"]).decoder({**meta, "format": "symbol"})


def as_graph(net, meta: Dict[str, Any]):
    """Take in-graph NMS out of a live network (no-op for TinySSD and exported graphs)."""
    if not is_exported(meta):
        recipe_for(meta["arch"]).export_outputs(net)
    return net


def example_input(meta: Dict[str, Any], ctx, batch: int = 1):
    import mxnet as mx

    size = int(meta["input_size"])
    return mx.nd.zeros((batch, 3, size, size), ctx=ctx or mx.cpu(), dtype="float32")


def fuse_fp32(net, meta: Dict[str, Any], ctx=None) -> PreparedNet:
    """The oneDNN-fused fp32 graph of ``net`` (changes ``net`` in place)."""
    as_graph(net, meta)
    if ctx is not None and getattr(ctx, "device_type", "cpu") == "gpu":  # oneDNN is the CPU's library
        net.hybridize(static_alloc=True, static_shape=True)
        return PreparedNet(net, graph_decoder(meta), "fp32", "fp32, hybridized graph on the GPU")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            net.optimize_for(example_input(meta, ctx), backend="MKLDNN", static_alloc=True, static_shape=True)
            note = "fp32, oneDNN-fused graph"
        except Exception:  # a build without oneDNN: plain hybridized graph, same numbers
            net.hybridize(static_alloc=True, static_shape=True)
            note = "fp32, hybridized graph (oneDNN fusion unavailable)"
    return PreparedNet(net, graph_decoder(meta), "fp32", note)


def params_digest(model_dir: str, meta: Dict[str, Any]) -> str:
    """sha1 of the source parameters: an INT8 graph belongs to exactly these weights (remembered per
    file version: ``ssd.base.file_digest``)."""
    name = params_file(meta) if is_exported(meta) or is_onnx(meta) else PARAMS_FILE
    return file_digest(os.path.join(model_dir, name), "sha1")


def read_record(model_dir: str) -> Optional[Dict[str, Any]]:
    """The calibration record, or ``None`` when the model was never quantized (or it is unreadable)."""
    return read_folder_record(model_dir, INT8_RECORD)


def read_folder_record(model_dir: str, name: str) -> Optional[Dict[str, Any]]:
    """A JSON object the model folder keeps beside its weights, or ``None`` when absent or unusable.

    Why ``read_json_file``: the folder may be a stranger's, and a FIFO under the record's name blocked
    every command that looked at the model (even past SIGTERM), a ``[[[[…`` one crashed it.
    """
    from ssd.base.json_file import JSONFileError, read_json_file
    from ssd.base.meta_schema import MAX_META_BYTES

    try:
        rec = read_json_file(os.path.join(model_dir, name), MAX_META_BYTES)
    except (OSError, JSONFileError):
        return None
    return rec if isinstance(rec, dict) else None


def int8_status(model_dir: str, meta: Optional[Dict[str, Any]] = None) -> Tuple[bool, str]:
    """(usable, why): is there an INT8 graph for this model's current parameters?"""
    rec = read_record(model_dir)
    if rec is None:
        return False, f"{model_dir} has no INT8 graph (make one with: python -m ssd quantize --model {model_dir})"
    for name in (INT8_SYMBOL, INT8_PARAMS):
        if not os.path.isfile(os.path.join(model_dir, name)):
            return False, f"{model_dir}: {INT8_RECORD} is there but {name} is missing; re-run quantize"
    meta = meta or read_meta(model_dir)
    if rec.get("source_params_sha1") != params_digest(model_dir, meta):
        return False, (f"{model_dir}: the INT8 graph was made from other weights (the model was retrained "
                       f"since); re-run: python -m ssd quantize --model {model_dir}")
    from ssd.inference.int8_trust import int8_verdict, refusal

    trusted, why = int8_verdict(model_dir, "mxnet")     # made here, or the shipped model's files
    return (True, "ok") if trusted else (False, refusal(model_dir, "mxnet", why))


def default_precision(model_dir: str, meta: Optional[Dict[str, Any]] = None) -> str:
    """INT8 when the model's own evaluation recommended it and the graph is current, else fp32."""
    ok, _ = int8_status(model_dir, meta)
    rec = read_record(model_dir) if ok else None
    return "int8" if rec and rec.get("recommended") == "int8" else "fp32"


def load_int8(model_dir: str, meta: Dict[str, Any], ctx=None) -> PreparedNet:
    """The stored INT8 graph (no calibration happens here); ``ModelError`` if absent or stale."""
    import mxnet as mx

    ok, why = int8_status(model_dir, meta)
    if not ok:
        raise ModelError(why)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = import_graph(os.path.join(model_dir, INT8_SYMBOL), [INPUT_NAME],
                               os.path.join(model_dir, INT8_PARAMS), ctx or mx.cpu())
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(f"{model_dir}: the INT8 graph does not load ({error_gist(err)}); re-run quantize") from None
    net.hybridize(static_alloc=True, static_shape=True)
    rec = read_record(model_dir) or {}
    return PreparedNet(net, graph_decoder(meta), "int8",
                       f"int8, calibrated on {rec.get('calibration', {}).get('images', '?')} images")


def effective_precision(model_dir: str, precision: Optional[str] = None, ctx=None,
                        meta: Optional[Dict[str, Any]] = None) -> str:
    """What ``precision`` (``None`` or "auto": the model's default) means for this model and device:
    "fp32" or "int8". A server keys its loaded models by it, so "auto" and the precision it picks
    share one loaded graph."""
    precision = check_precision(precision)
    on_gpu = ctx is not None and getattr(ctx, "device_type", "cpu") == "gpu"
    if precision == "int8" and on_gpu:
        raise ModelError("INT8 graphs run on the CPU only (MXNet's quantized operators are oneDNN's); "
                         "use --precision fp32 on a GPU")
    if precision is None:
        precision = "fp32" if on_gpu else default_precision(model_dir, meta if meta is not None else read_meta(model_dir))
    return precision


def prepare(model_dir: str, precision: Optional[str] = None, ctx=None) -> Tuple[PreparedNet, Dict[str, Any]]:
    """Load ``model_dir`` at ``precision`` (``None``: the model's default)."""
    meta = read_meta(model_dir)
    precision = effective_precision(model_dir, precision, ctx, meta)
    if precision == "int8":
        return load_int8(model_dir, meta, ctx), meta
    net, meta = load_model(model_dir, ctx=ctx)
    return fuse_fp32(net, meta, ctx), meta


# ---------------------------------------------------------------------------------------------
# Quantizing: calibration images, the INT8 graph, the model's own evaluation, the record.
# ---------------------------------------------------------------------------------------------
def recommend(evaluation: Dict[str, Any]) -> str:
    """INT8 if it is faster and loses at most ``MAP_TOLERANCE`` mAP on the model's own data."""
    times = evaluation.get("forward_ms_batch1") or {}
    faster = times.get("int8", float("inf")) < times.get("fp32", 0.0)
    m32, m8 = evaluation.get("map_fp32"), evaluation.get("map_int8")
    if m32 is None or m8 is None:
        return "fp32"   # no evaluation, no evidence: stay exact
    return "int8" if faster and m8 >= m32 - MAP_TOLERANCE else "fp32"
