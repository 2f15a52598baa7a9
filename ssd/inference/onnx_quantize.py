"""INT8 for the ONNX engine: ONNX Runtime's static quantization, calibrated on the model's own images.

``python -m ssd quantize`` calls ``quantize_onnx`` beside MXNet's INT8 (``ssd.inference.quantize``)
with the same calibration images (a few of the model's training images) and the same evaluation
(VOC07 mAP of both precisions on its validation images, the batch-1 forward + decode time): the
record ``onnx-int8.json`` (written last) says ``recommended: int8`` only when INT8 is faster and
within ``MAP_TOLERANCE`` of fp32, which is what the ONNX engine's default precision follows.

How (measured on the development machine, scripts/bench_onnx.py): the fp32 graph is first
optimized by ONNX Runtime at its basic level (BatchNorm folded into the convolutions — quantized
unfolded, every BatchNorm became a float round trip and INT8 was no faster than fp32), then
``quantize_static`` with min/max calibration, unsigned 8-bit activations and signed weights
(the pairing the CPU's VNNI instructions multiply), operator format (``QLinearConv``). The graph's
outputs stay float32 and the anchors, being constants, are never quantized.

The weights use 7 of their 8 bits (``reduce_range``). Why: a model is quantized and evaluated on one
machine and its INT8 graph used on others. CPUs without VNNI (AVX2 only, like AMD Zen 3, or AVX-512
without it) multiply uint8 by int8 with ``VPMADDUBSW``, which adds two products in 16 bits and
saturates: 2 × 255 × 127 overflows, so full-range weights could lose accuracy there that the
evaluation on a VNNI machine never saw. With 7-bit weights (2 × 255 × 64 < 32768) the arithmetic is
exact on every x86 CPU; measured on the shipped model (Zen 5): mAP within noise of 8-bit weights
(0.9823 against 0.9765 on 300 images) and the same speed (forward ratio 0.97–1.00).
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.errors import ModelError, SSDError, error_gist
from ssd.data.preprocess import MEAN, STD, normalize_batch

from ssd.inference.onnx_export import INT8_ONNX_FILE, INT8_ONNX_RECORD


#: How the INT8 graph is made, as its record says (7-bit weights: see the module's docstring).
QUANTIZATION = "QOperator, uint8 activations, int8 weights in 7 bits (reduce_range), per tensor, BatchNorm folded first"


def _optimized(src: str, dest: str) -> None:
    """ONNX Runtime's basic, hardware-independent rewrites (BatchNorm into Conv) written to ``dest``."""
    import onnxruntime as ort

    from ssd.inference.onnx_trust import check_onnx_file

    check_onnx_file(src)        # an exported folder's graph is from outside: checked before ONNX Runtime
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = dest
    ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])


def decoder_nodes(path: str) -> List[str]:
    """The graph's box and class decoders (GluonCV's ``*decoder*`` blocks), kept in float.

    They are a few element-wise operations after the last convolution, where INT8 gains nothing and
    loses the scores' resolution; and ONNX Runtime's quantizer cannot rewrite their ``Where`` over a
    quantized ``Mul`` (it leaves a dangling tensor and refuses the model), so without this GluonCV
    SSDs and detectors converted onto them got no ONNX INT8 graph at all.
    """
    import onnx

    return [n.name for n in onnx.load(path, load_external_data=False).graph.node if "decoder" in n.name.lower()]


def build_onnx_int8(fp32_path: str, dest: str, inputs: np.ndarray, input_name: str) -> float:
    """Quantize the graph at ``fp32_path`` into ``dest`` (atomically), calibrated on ``inputs``
    (normalized float32 NCHW); returns the seconds it took."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class _Images(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter([{input_name: inputs[i:i + 1]} for i in range(len(inputs))])

        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            return next(self._feeds, None)

    import logging

    t0 = time.perf_counter()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)    # the quantizer's generic "consider pre-processing" advice: done above
    staging = tempfile.mkdtemp(prefix=".onnx-int8-", dir=os.path.dirname(os.path.abspath(dest)))
    try:
        optimized = os.path.join(staging, "optimized.onnx")
        _optimized(fp32_path, optimized)
        with atomic_path(dest) as tmp:
            quantize_static(optimized, tmp, _Images(), quant_format=QuantFormat.QOperator, per_channel=False,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=decoder_nodes(optimized))
    except (SSDError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - an operator the quantizer cannot handle, a missing package
        raise ModelError(f"ONNX quantization failed ({error_gist(err)})") from None
    finally:
        root.setLevel(level)
        shutil.rmtree(staging, ignore_errors=True)
    return time.perf_counter() - t0


def forward_ms(det, runs: int = 20) -> float:
    """Median batch-1 forward + decode of a Detector (what a folder run pays per call)."""
    x = np.zeros((1, det.input_size, det.input_size, 3), np.uint8)
    for _ in range(3):
        det.predict_arrays(x)
    times: List[float] = []
    for _ in range(runs):
        t = time.perf_counter()
        det.predict_arrays(x)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def quantize_onnx(model_dir: str, calib: np.ndarray, calibration: Dict[str, Any], val=None, eval_images: int = 100,
                  log: Callable[[str], None] = lambda s: None) -> Dict[str, Any]:
    """The ONNX INT8 graph of ``model_dir``, evaluated beside fp32; writes and returns its record.

    ``calib``: uint8 ``(N, S, S, 3)`` calibration images; ``calibration``: where they came from
    (for the record); ``val``: the validation split to compare both precisions on (or None).
    """
    from ssd.base.hardware import cpu_kind
    from ssd.inference.evaluation import evaluate
    from ssd.inference.onnx_engine import load_onnx
    from ssd.inference.onnx_export import ensure_onnx
    from ssd.inference.precision import params_digest, recommend
    from ssd.store import read_meta

    meta = read_meta(model_dir)
    record_path = os.path.join(model_dir, INT8_ONNX_RECORD)
    if os.path.exists(record_path):           # until the new record lands, there is no current INT8 graph
        os.remove(record_path)
    graph = ensure_onnx(model_dir, log)
    norm = meta.get("normalize") or {}
    inputs = normalize_batch(calib, norm.get("mean", MEAN), norm.get("std", STD))
    build_s = build_onnx_int8(os.path.join(model_dir, graph["file"]), os.path.join(model_dir, INT8_ONNX_FILE),
                              inputs, graph.get("input", "data"))
    record: Dict[str, Any] = {
        **{k: v for k, v in graph.items() if k not in ("file", "precision", "convert_s", "created")},
        "file": INT8_ONNX_FILE, "precision": "int8", "source_params_sha1": params_digest(model_dir, meta),
        "calibration": dict(calibration, mode="minmax", images=len(calib)),
        "quantization": QUANTIZATION,
        "build_s": round(build_s, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(record_path, {**record, "recommended": "fp32"})   # loadable for the evaluation below
    dets = {p: load_onnx(model_dir, p, prefer_gpu=False) for p in ("fp32", "int8")}
    evaluation: Dict[str, Any] = {"forward_ms_batch1": {p: round(forward_ms(d), 2) for p, d in dets.items()},
                                  "device": dets["fp32"].device, "cpu": cpu_kind()}
    if val is not None and eval_images > 0:
        for p, det in dets.items():
            res = evaluate(det, val, limit=eval_images)
            evaluation[f"map_{p}"], evaluation["images"] = round(res.map, 4), res.num_images
        log(f"ONNX Runtime: mAP fp32 {evaluation['map_fp32']:.4f}, int8 {evaluation['map_int8']:.4f} "
            f"on {evaluation['images']} validation images")
    record.update(evaluation=evaluation, recommended=recommend(evaluation))
    atomic_write_json(record_path, record)
    return record
