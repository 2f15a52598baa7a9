"""Quantizing a model to INT8 once: calibrate on its own images, evaluate both precisions, store.

``python -m ssd quantize`` (and ``train --quantize``) call ``quantize_model``: the INT8 graph is
calibrated on a few of the model's own training images, evaluated beside the fused fp32 graph on
its validation split with the same ``Detector`` and ``evaluate`` as ``python -m ssd eval``, and
written beside the model with a record (``int8.json``, written last) from which
``ssd.inference.precision.default_precision`` picks the default. Loading never recalibrates.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from ssd.base.atomic import atomic_write_json
from ssd.base.errors import DatasetError, ModelError, SSDError, error_gist
from ssd.base.hardware import cpu_kind
from ssd.data.preprocess import MEAN, STD, normalize_batch, resize
from ssd.data.synthetic import GENERATOR
from ssd.inference.detector import Detector
from ssd.inference.evaluation import evaluate, held_out_split
from ssd.inference.precision import (CALIB_IMAGES, EXCLUDED_OPERATORS, INT8_PARAMS, INT8_PREFIX, INT8_RECORD,
                                     INT8_SYMBOL, PreparedNet, example_input, as_graph, fuse_fp32, graph_decoder,
                                     params_digest, recommend)
from ssd.store import INPUT_NAME, load_model, read_meta


def synthetic_origin(meta: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """How the model's synthetic training set was drawn (generator, seed, size), if it was one."""
    syn = (meta.get("dataset") or {}).get("synthetic")
    if isinstance(syn, dict) and syn.get("generator") == GENERATOR and isinstance(syn.get("seed"), int):
        return syn
    return None


@contextmanager
def own_dataset(meta: Dict[str, Any], data: Optional[str], train: int, val: int) -> Iterator[Tuple[str, Any]]:
    """``(where, splits)`` of the model's own images: ``data``, else its recorded dataset, else —
    for a model trained on the synthetic set, when that folder is gone — the same images drawn
    again from the recorded seed (image ``i`` depends on the seed and ``i`` alone) into a
    temporary folder that is removed afterwards."""
    from ssd.data.dataset import open_dataset
    from ssd.data.synthetic import generate

    path = data or (meta.get("dataset") or {}).get("path")
    syn = synthetic_origin(meta)
    split = held_out_split(meta)
    if not path and syn is None:
        raise SSDError("the model does not record its dataset; give one with --data DIR")
    if path and (data or os.path.exists(path) or syn is None):
        try:
            yield path, open_dataset(path, **split)
            return
        except DatasetError as err:
            raise DatasetError(f"{err} — the model's calibration images come from its dataset; "
                               "give another copy with --data DIR") from None
    tmp = tempfile.mkdtemp(prefix="ssd-regenerated-")
    try:
        folder = os.path.join(tmp, "synthetic")
        generate(folder, num_train=max(1, train), num_val=max(0, val), seed=int(syn["seed"]),
                 size=int(syn.get("size", 256)))
        yield f"the synthetic set regenerated from seed {syn['seed']} ({path} is gone)", open_dataset(folder, **split)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    x = example_input(meta, None, batch)
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
    qnet(example_input(meta, None))
    staging = tempfile.mkdtemp(prefix=".int8-", dir=model_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qnet.export(os.path.join(staging, INT8_PREFIX), epoch=0)
        for name in (INT8_SYMBOL, INT8_PARAMS):
            os.replace(os.path.join(staging, name), os.path.join(model_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


ENGINES = ("mxnet", "onnxruntime")


def quantize_engines(model_dir: str, engines: Sequence[str] = ENGINES, data: Optional[str] = None,
                     images: int = CALIB_IMAGES, eval_images: int = 100,
                     log: Callable[[str], None] = lambda s: None) -> Dict[str, Dict[str, Any]]:
    """INT8 graphs of ``model_dir`` for each engine, calibrated on the same images; records by engine."""
    meta = read_meta(model_dir)
    out: Dict[str, Dict[str, Any]] = {}
    with own_dataset(meta, data, images, eval_images) as (path, splits):
        calib, split = calibration_images(splits, int(meta["input_size"]), images)
        log(f"calibrating on {len(calib)} {split} images of {path}")
        if "mxnet" in engines:
            out["mxnet"] = quantize_model(model_dir, images=images, eval_images=eval_images, log=log,
                                          source=(path, splits))
        if "onnxruntime" in engines:
            from ssd.inference.onnx_quantize import quantize_onnx

            val = splits.val if splits.val is not None and len(splits.val) else None
            out["onnxruntime"] = quantize_onnx(model_dir, calib, {"dataset": path, "split": split}, val,
                                               eval_images, log)
    return out


def quantize_model(model_dir: str, data: Optional[str] = None, images: int = CALIB_IMAGES,
                   eval_images: int = 100, ctx=None, log: Callable[[str], None] = lambda s: None,
                   source: Optional[Tuple[str, Any]] = None) -> Dict[str, Any]:
    """Quantize ``model_dir`` to INT8 for MXNet, evaluate both precisions on its own data, write the record.

    ``source``: ``(where, splits)`` already opened (``quantize_engines``); else ``own_dataset``.
    """
    if source is None:
        with own_dataset(read_meta(model_dir), data, images, eval_images) as opened:
            return quantize_model(model_dir, images=images, eval_images=eval_images, ctx=ctx, log=log, source=opened)
    meta = read_meta(model_dir)
    path, splits = source
    calib, split = calibration_images(splits, int(meta["input_size"]), images)
    log(f"MXNet: calibrating on {len(calib)} {split} images")
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
        "calibration": {"mode": "naive", "dataset": path if not os.path.exists(path) else os.path.abspath(path),
                        "split": split, "images": len(calib)},
        "exclude_operators": list(EXCLUDED_OPERATORS), "build_s": round(build_s, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    from ssd.base.engine import report

    evaluation: Dict[str, Any] = {"forward_ms_batch1": {}, "engine": report(), "cpu": cpu_kind()}
    for prep in (fp32, int8):
        evaluation["forward_ms_batch1"][prep.precision] = round(forward_ms(prep, meta), 2)
    val = splits.val if splits.val is not None and len(splits.val) else None
    if val is not None and eval_images > 0:
        for prep in (fp32, int8):
            det = Detector(prep.net, meta, ctx=ctx, hybridize=False, decoder=prep.decoder)
            res = evaluate(det, val, limit=eval_images)
            evaluation[f"map_{prep.precision}"] = round(res.map, 4)
            evaluation["images"] = res.num_images
        log(f"MXNet: mAP fp32 {evaluation['map_fp32']:.4f}, int8 {evaluation['map_int8']:.4f} "
            f"on {evaluation['images']} validation images")
    record["evaluation"] = evaluation
    record["recommended"] = recommend(evaluation)
    atomic_write_json(record_path, record)
    from ssd.inference.int8_trust import remember_made_here

    remember_made_here(model_dir, "mxnet")      # MXNet's INT8 graph cannot be proven later: made here
    return record
