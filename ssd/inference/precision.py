"""Inference precision: ``fp32`` (oneDNN-fused graph) or ``int8`` (quantized once, stored beside the model).

* **fp32**: the network is turned into a graph with any in-graph NMS taken out (the recipe's
  ``export_outputs``; GluonCV SSDs then get the same ``box_nms`` after the graph, so results
  equal the live network's) and fused by oneDNN (``optimize_for(backend='MKLDNN')``:
  convolution + BatchNorm + ReLU become one operator). Outputs equal the plain hybridized net
  to ~1e-5.
* **int8**: ``python -m ssd quantize`` quantizes that graph with MXNet's
  ``quantize_net_v2`` (naive min/max calibration on a few of the model's own training images,
  ``Concat`` and ``Flatten`` kept in fp32 so the anchors stay exact) and writes
  ``int8-symbol.json`` + ``int8-0000.params`` and the calibration record ``int8.json`` (written
  last) into the model folder. Loading reads those files: it never re-calibrates.

The record also holds the model's own evaluation of both precisions (VOC07 mAP on its
validation images and the batch-1 forward time); ``default_precision`` picks INT8 only when its
mAP is within ``MAP_TOLERANCE`` of fp32 and it is faster, else fp32. A record whose source
parameters changed since (the model was retrained) is stale: loading INT8 then says to re-run
``quantize``, and the default falls back to fp32.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ssd.base.atomic import atomic_write_json
from ssd.base.errors import DatasetError, ModelError, SSDError, error_gist
from ssd.data.preprocess import MEAN, STD, normalize_batch, resize
from ssd.models.registry import recipe_for
from ssd.store import INPUT_NAME, PARAMS_FILE, is_exported, load_model, params_file, read_meta

PRECISIONS = ("fp32", "int8")
INT8_PREFIX = "int8"
INT8_SYMBOL = f"{INT8_PREFIX}-symbol.json"
INT8_PARAMS = f"{INT8_PREFIX}-0000.params"
INT8_RECORD = "int8.json"
MAP_TOLERANCE = 0.01             # INT8 may lose at most this much mAP to be the default
CALIB_IMAGES = 8                 # enough for naive min/max calibration (REFERENCE.md)
EXCLUDED_OPERATORS = ["Concat", "Flatten"]   # quantized, the anchor Concat is off by up to 0.005


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


def _example(meta: Dict[str, Any], ctx, batch: int = 1):
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
            net.optimize_for(_example(meta, ctx), backend="MKLDNN", static_alloc=True, static_shape=True)
            note = "fp32, oneDNN-fused graph"
        except Exception:  # a build without oneDNN: plain hybridized graph, same numbers
            net.hybridize(static_alloc=True, static_shape=True)
            note = "fp32, hybridized graph (oneDNN fusion unavailable)"
    return PreparedNet(net, graph_decoder(meta), "fp32", note)


def params_digest(model_dir: str, meta: Dict[str, Any]) -> str:
    """sha1 of the source parameters: an INT8 graph belongs to exactly these weights."""
    name = params_file(meta) if is_exported(meta) else PARAMS_FILE
    h = hashlib.sha1()
    with open(os.path.join(model_dir, name), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_record(model_dir: str) -> Optional[Dict[str, Any]]:
    """The calibration record, or ``None`` when the model was never quantized (or it is unreadable)."""
    path = os.path.join(model_dir, INT8_RECORD)
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
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
    return True, "ok"


def default_precision(model_dir: str, meta: Optional[Dict[str, Any]] = None) -> str:
    """INT8 when the model's own evaluation recommended it and the graph is current, else fp32."""
    ok, _ = int8_status(model_dir, meta)
    rec = read_record(model_dir) if ok else None
    return "int8" if rec and rec.get("recommended") == "int8" else "fp32"


def precision_choices(model_dir: str) -> List[str]:
    """What a picker offers for this model: auto and fp32 always, int8 when a current graph exists."""
    try:
        usable = int8_status(model_dir)[0]
    except (SSDError, OSError):
        usable = False
    return ["auto", "fp32"] + (["int8"] if usable else [])


def load_int8(model_dir: str, meta: Dict[str, Any], ctx=None) -> PreparedNet:
    """The stored INT8 graph (no calibration happens here); ``ModelError`` if absent or stale."""
    import mxnet as mx
    from mxnet import gluon

    ok, why = int8_status(model_dir, meta)
    if not ok:
        raise ModelError(why)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = gluon.SymbolBlock.imports(os.path.join(model_dir, INT8_SYMBOL), [INPUT_NAME],
                                            os.path.join(model_dir, INT8_PARAMS), ctx=ctx or mx.cpu())
    except Exception as err:
        raise ModelError(f"{model_dir}: the INT8 graph does not load ({error_gist(err)}); re-run quantize") from None
    net.hybridize(static_alloc=True, static_shape=True)
    rec = read_record(model_dir) or {}
    return PreparedNet(net, graph_decoder(meta), "int8",
                       f"int8, calibrated on {rec.get('calibration', {}).get('images', '?')} images")


def prepare(model_dir: str, precision: Optional[str] = None, ctx=None) -> Tuple[PreparedNet, Dict[str, Any]]:
    """Load ``model_dir`` at ``precision`` (``None``: the model's default)."""
    precision = check_precision(precision)
    meta = read_meta(model_dir)
    on_gpu = ctx is not None and getattr(ctx, "device_type", "cpu") == "gpu"
    if precision == "int8" and on_gpu:
        raise ModelError("INT8 graphs run on the CPU only (MXNet's quantized operators are oneDNN's); "
                         "use --precision fp32 on a GPU")
    if precision is None:
        precision = "fp32" if on_gpu else default_precision(model_dir, meta)
    if precision == "int8":
        return load_int8(model_dir, meta, ctx), meta
    net, meta = load_model(model_dir, ctx=ctx)
    return fuse_fp32(net, meta, ctx), meta


# ---------------------------------------------------------------------------------------------
# Quantizing: calibration images, the INT8 graph, the model's own evaluation, the record.
# ---------------------------------------------------------------------------------------------
def _dataset_of(meta: Dict[str, Any], data: Optional[str]):
    from ssd.data.dataset import open_dataset

    path = data or (meta.get("dataset") or {}).get("path")
    if not path:
        raise SSDError("the model does not record its dataset; give one with --data DIR")
    seed = ((meta.get("training") or {}).get("args") or {}).get("seed", 0)
    try:
        return path, open_dataset(path, seed=seed)
    except DatasetError as err:
        raise DatasetError(f"{err} — the model's calibration images come from its dataset; "
                           "give another copy with --data DIR") from None


def calibration_images(splits, size: int, count: int = CALIB_IMAGES) -> Tuple[np.ndarray, str]:
    """``count`` training images (validation ones if there is no training split) at the input size."""
    ds, split = (splits.train, "train") if splits.train is not None and len(splits.train) else (splits.val, "val")
    if ds is None or len(ds) == 0:
        raise SSDError("the dataset has no images to calibrate on")
    imgs = []
    for i in range(len(ds)):
        try:
            imgs.append(resize(ds[i][0], size))
        except SSDError:
            continue  # an undecodable image is skipped, as training skips it
        if len(imgs) >= count:
            break
    if not imgs:
        raise SSDError("none of the dataset's images could be decoded for calibration")
    return np.stack(imgs), split


def build_int8(net, meta: Dict[str, Any], images: np.ndarray, ctx=None):
    """``quantize_net_v2`` on the graph form of ``net``, calibrated (naive min/max) on ``images``."""
    import mxnet as mx
    from mxnet.contrib.quantization import quantize_net_v2

    norm = meta.get("normalize") or {}
    x = mx.nd.array(normalize_batch(images, norm.get("mean", MEAN), norm.get("std", STD)), ctx=ctx or mx.cpu())
    as_graph(net, meta)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qnet = quantize_net_v2(net, quantized_dtype="auto", calib_mode="naive",
                                   calib_data=mx.io.NDArrayIter(data=x, batch_size=len(x)),
                                   exclude_operators=list(EXCLUDED_OPERATORS), ctx=ctx or mx.cpu())
    except Exception as err:
        raise ModelError(f"quantization failed ({error_gist(err)})") from None
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet


def forward_ms(prepared: PreparedNet, meta: Dict[str, Any], runs: int = 20, batch: int = 1) -> float:
    """Median wall time of one forward + decode of a batch (what the Detector pays per call)."""
    x = _example(meta, None, batch)
    for _ in range(3):
        prepared.decoder(prepared.net, x, 0.45, 0.01)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        prepared.decoder(prepared.net, x, 0.45, 0.01)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _save_graph(qnet, meta: Dict[str, Any], model_dir: str) -> None:
    """Export the INT8 pair through a staging folder: each file lands complete via ``os.replace``.

    A SymbolBlock exports its parameters only after a forward pass has bound them (without it
    the params file is empty), hence the forward first.
    """
    qnet(_example(meta, None))
    staging = tempfile.mkdtemp(prefix=".int8-", dir=model_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qnet.export(os.path.join(staging, INT8_PREFIX), epoch=0)
        for name in (INT8_SYMBOL, INT8_PARAMS):
            os.replace(os.path.join(staging, name), os.path.join(model_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def quantize_model(model_dir: str, data: Optional[str] = None, images: int = CALIB_IMAGES,
                   eval_images: int = 100, ctx=None, log: Callable[[str], None] = lambda s: None) -> Dict[str, Any]:
    """Quantize ``model_dir`` to INT8, evaluate both precisions on its own data, write the record."""
    from ssd.inference.detector import Detector
    from ssd.inference.evaluation import evaluate

    meta = read_meta(model_dir)
    path, splits = _dataset_of(meta, data)
    calib, split = calibration_images(splits, int(meta["input_size"]), images)
    log(f"calibrating on {len(calib)} {split} images of {path}")
    record_path = os.path.join(model_dir, INT8_RECORD)
    if os.path.exists(record_path):  # until the new record lands, the folder has no INT8 graph
        os.remove(record_path)
    net, meta = load_model(model_dir, ctx=ctx)
    t0 = time.perf_counter()
    qnet = build_int8(net, meta, calib, ctx)
    build_s = time.perf_counter() - t0
    _save_graph(qnet, meta, model_dir)
    int8 = PreparedNet(qnet, graph_decoder(meta), "int8", "int8")
    fp32 = fuse_fp32(load_model(model_dir, ctx=ctx)[0], meta, ctx)
    record: Dict[str, Any] = {
        "precision": "int8", "format": "symbol", "symbol": INT8_SYMBOL, "params": INT8_PARAMS,
        "input": INPUT_NAME, "source_params_sha1": params_digest(model_dir, meta),
        "calibration": {"mode": "naive", "dataset": os.path.abspath(path), "split": split, "images": len(calib)},
        "exclude_operators": list(EXCLUDED_OPERATORS), "build_s": round(build_s, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    from ssd.base.engine import report

    evaluation: Dict[str, Any] = {"forward_ms_batch1": {}, "engine": report()}
    for prep in (fp32, int8):
        evaluation["forward_ms_batch1"][prep.precision] = round(forward_ms(prep, meta), 2)
    val = splits.val if splits.val is not None and len(splits.val) else None
    if val is not None and eval_images > 0:
        for prep in (fp32, int8):
            det = Detector(prep.net, meta, ctx=ctx, hybridize=False, decoder=prep.decoder)
            res = evaluate(det, val, limit=eval_images)
            evaluation[f"map_{prep.precision}"] = round(res.map, 4)
            evaluation["images"] = res.num_images
        log(f"mAP fp32 {evaluation['map_fp32']:.4f}, int8 {evaluation['map_int8']:.4f} "
            f"on {evaluation['images']} validation images")
    record["evaluation"] = evaluation
    record["recommended"] = recommend(evaluation)
    atomic_write_json(record_path, record)
    return record


def recommend(evaluation: Dict[str, Any]) -> str:
    """INT8 if it is faster and loses at most ``MAP_TOLERANCE`` mAP on the model's own data."""
    times = evaluation.get("forward_ms_batch1") or {}
    faster = times.get("int8", float("inf")) < times.get("fp32", 0.0)
    m32, m8 = evaluation.get("map_fp32"), evaluation.get("map_int8")
    if m32 is None or m8 is None:
        return "fp32"   # no evaluation, no evidence: stay exact
    return "int8" if faster and m8 >= m32 - MAP_TOLERANCE else "fp32"
