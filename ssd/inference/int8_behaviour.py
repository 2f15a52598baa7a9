"""Does an INT8 graph compute what its fp32 graph computes? Both run on a few fixed images.

``int8_match`` proves the weights and the wiring, but the activations' scales and zero points come
from calibration images and cannot be re-derived: a graph whose weights are the model's could still
quantize an activation with a step 1000 times too coarse, or a zero point shifted, and output
garbage under a record that claims fp32's mAP. So the full check also runs the fp32 graph (the one
quantize quantizes) and the INT8 graph on ``PROBE_IMAGES`` synthetic validation images (real
activations: backgrounds, edges, an object; deterministic, rendered at the model's input size) and
compares every float output that is not a constant (class scores, box offsets), relative to the
largest fp32 value of that output.

Tolerances, measured on honest graphs made by our own quantizer (Zen 5, ONNX Runtime's CPU
provider): the shipped TinySSD has a median relative error of 0.004 and a 99th percentile of 0.021;
an SSDlite with random weights 0.006–0.008 and 0.047–0.062 (calibrated on noise or on synthetic
images). The limits are about 2.5 times the worst of these. An absurd activation range on the
input (scale ×1000, or zero point +50) gives medians of 0.025–0.09 and 99th percentiles of 0.15–0.6.
A range tampered at the coarsest feature map alone touches a few anchors only and can stay under
these percentiles.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

#: How many synthetic validation images (seed 0) both graphs run on.
PROBE_IMAGES = 4
#: Most relative error (of the output's largest fp32 magnitude) allowed, by percentile.
LIMITS = {50: 0.02, 99: 0.15}


def probe_inputs(meta: Dict) -> np.ndarray:
    """The normalized network input of ``PROBE_IMAGES`` synthetic validation images at the model's size."""
    from ssd.data.preprocess import MEAN, STD, normalize_batch
    from ssd.data.synthetic import render_example

    size, norm = int(meta["input_size"]), meta.get("normalize") or {}
    images = np.stack([render_example(0, i, "val", size)[0] for i in range(PROBE_IMAGES)])
    return normalize_batch(images, norm.get("mean", MEAN), norm.get("std", STD))


def _run(model_bytes: bytes, inputs: np.ndarray, names: List[str]) -> List[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    feed = next(i.name for i in session.get_inputs())
    return session.run(names, {feed: inputs})


def errors(fp32_model, int8_model, inputs: np.ndarray) -> Dict[str, Dict[int, float]]:
    """Per float output computed from the input: the relative error's percentiles (``LIMITS``' keys)."""
    constants = {i.name for i in fp32_model.graph.initializer}
    names = [o.name for o in fp32_model.graph.output if o.name not in constants]
    ours = _run(fp32_model.SerializeToString(), inputs, names)
    theirs = _run(int8_model.SerializeToString(), inputs, names)
    out: Dict[str, Dict[int, float]] = {}
    for name, a, b in zip(names, ours, theirs):
        if a.dtype.kind != "f":
            continue
        if a.shape != b.shape:
            out[name] = {p: np.inf for p in LIMITS}
            continue
        spread = float(np.max(np.abs(a))) or 1.0
        rel = np.abs(a.astype(np.float64) - b) / spread
        rel = np.where(np.isnan(rel), np.inf, rel)
        out[name] = {p: float(np.percentile(rel, p)) for p in LIMITS}
    return out


def behaviour_mismatch(fp32_model, int8_model, meta: Dict) -> Optional[str]:
    """``None`` when the INT8 graph's outputs agree with the fp32 graph's on the probe images; else why not."""
    for name, found in errors(fp32_model, int8_model, probe_inputs(meta)).items():
        over = [p for p, limit in LIMITS.items() if not found[p] <= limit]
        if over:
            p = over[0]
            return (f"its outputs disagree with the fp32 graph's on {PROBE_IMAGES} fixed images ({name!r}: "
                    f"{p}th-percentile error {found[p]:.3f} of the output's range, honest quantization stays "
                    f"under {LIMITS[p]}): its activations' scales or zero points are not the model's")
    return None
