"""Does an INT8 graph compute what its fp32 graph computes? Both run on a few fixed images.

``int8_match`` proves the weights and the wiring, but the activations' scales and zero points come
from calibration images and cannot be re-derived: a graph whose weights are the model's could still
quantize an activation with a step 1000 times too coarse, or a zero point shifted, and output
garbage under a record that claims fp32's mAP. So the full check also runs the fp32 graph (the one
quantize quantizes) and the INT8 graph on ``PROBE_IMAGES`` synthetic validation images (real
activations: backgrounds, edges, an object; deterministic, rendered at the model's input size) and
compares every float output that is not a constant (class scores, box offsets), relative to the
largest fp32 value of that output: the output as a whole, and each of its prediction heads (one per
feature map: the slices of the ``Concat`` that makes it, ``heads``) on its own, still relative to
the whole output's range.

Why per head: the coarsest feature map (TinySSD's 1x1: 4 anchors, 8 of 10,888 class scores and 16
of 21,776 box offsets per image) is too small a share of the output for its percentiles, so a
wrong scale or zero point there (the QuantizeLinear feeding its heads with scale x2, zero point +20,
or a head's QLinearConv output scale /2) left the whole output at 0.004/0.02, as honest. Head by
head, those measure medians of 0.056–0.11 and 99th percentiles of 0.065–0.23 (caught by the median
limit, 2.8–5.5 times over). Why not the head's own range: a head is quantized as part of the
output (one scale for the concatenation), so the coarsest head's own-range error is 0.015 in an
honest graph, and an untrained network's deep heads are near zero (SSDlite, random weights: 0.13–0.26).

Tolerances, measured on honest graphs made by our own quantizer (ONNX Runtime's CPU provider):
whole outputs, the shipped TinySSD has a median relative error of 0.004 and a 99th percentile of 0.021;
an SSDlite with random weights 0.006–0.008 and 0.047–0.062 (calibrated on noise or on synthetic
images). Head by head (Intel Xeon, 2 cores): the shipped graph at most 0.0047/0.041, the shipped weights
quantized here on 8 or 32 other (synthetic training) images 0.0049/0.035, on 2 images 0.0094/0.085,
the SSDlite 0.0103/0.071. The limits, the same for outputs and heads, are about 2.5 times the worst
whole-output figures and 1.8–1.9 times the worst head's. An absurd activation range on the input (scale
x1000, or zero point +50) gives medians of 0.025–0.09 and 99th percentiles of 0.15–0.6. What still
passes: an edit within a few steps of honest (the coarsest map's zero point +5: 0.015/0.042). What
is now refused that passed: a trained model calibrated on random noise instead of images (0.012/0.20
at its 8x8 heads; ``quantize`` always calibrates on the model's own images).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

#: How many synthetic validation images (seed 0) both graphs run on.
PROBE_IMAGES = 4
#: Most relative error (of the output's largest fp32 magnitude) allowed, by percentile, in the output
#: and in each of its prediction heads.
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


def heads(fp32_model) -> Dict[str, List[str]]:
    """Per output, the tensors its ``Concat`` joins along axis 1 (through ``Reshape``/``Flatten``): the
    prediction heads, one per feature map, each a contiguous slice of every batch row of the output."""
    producer = {o: n for n in fp32_model.graph.node for o in n.output}
    out: Dict[str, List[str]] = {}
    for output in fp32_model.graph.output:
        node = producer.get(output.name)
        while node is not None and node.op_type in ("Reshape", "Flatten"):
            node = producer.get(node.input[0])
        axis = next((a.i for a in node.attribute if a.name == "axis"), None) if node is not None else None
        if node is not None and node.op_type == "Concat" and axis == 1 and len(node.input) > 1:
            out[output.name] = list(node.input)
    return out


def _rel(a: np.ndarray, b: np.ndarray, spread: float) -> Dict[int, float]:
    """The percentiles (``LIMITS``' keys) of ``b``'s error relative to ``spread``."""
    rel = np.abs(a.astype(np.float64) - b) / (spread or 1.0)
    rel = np.where(np.isnan(rel), np.inf, rel)
    return {p: float(np.percentile(rel, p)) for p in LIMITS}


def errors(fp32_model, int8_model, inputs: np.ndarray) -> Dict[str, Dict[int, float]]:
    """Per float output computed from the input, and per prediction head of it (``heads``, keyed
    ``"output head i/n"``): the relative error's percentiles (``LIMITS``' keys), all relative to the
    output's largest fp32 magnitude (a head's own range is no measure: the output is quantized as one,
    and an untrained head's values can be tiny)."""
    from onnx import TensorProto, helper

    constants = {i.name for i in fp32_model.graph.initializer}
    names = [o.name for o in fp32_model.graph.output if o.name not in constants]
    parts = {name: pieces for name, pieces in heads(fp32_model).items() if name in names}
    probe = type(fp32_model)()
    probe.CopyFrom(fp32_model)       # the heads' sizes: the fp32 run also returns the tensors concatenated
    extra = [t for pieces in parts.values() for t in pieces]
    probe.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in extra)
    ours = _run(probe.SerializeToString(), inputs, names + extra)
    concatenated = dict(zip(extra, ours[len(names):]))
    theirs = _run(int8_model.SerializeToString(), inputs, names)
    out: Dict[str, Dict[int, float]] = {}
    for name, a, b in zip(names, ours, theirs):
        if a.dtype.kind != "f":
            continue
        if a.shape != b.shape:
            out[name] = {p: np.inf for p in LIMITS}
            continue
        spread = float(np.max(np.abs(a))) if a.size else 0.0
        out[name] = _rel(a, b, spread)
        rows = len(a)
        sizes = [concatenated[t].size // max(rows, 1) for t in parts.get(name, ())]
        if len(sizes) > 1 and rows and sum(sizes) * rows == a.size:
            a2, b2 = a.reshape(rows, -1), b.reshape(rows, -1)
            ends = np.cumsum(sizes)
            for i, (lo, hi) in enumerate(zip(ends - sizes, ends)):
                out[f"{name} head {i + 1}/{len(sizes)}"] = _rel(a2[:, lo:hi], b2[:, lo:hi], spread)
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
