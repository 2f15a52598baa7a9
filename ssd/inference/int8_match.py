"""Is an ONNX INT8 graph the quantization of an fp32 graph? Wiring, operators and weights compared.

``python -m ssd quantize`` makes ``model-int8.onnx`` from the fp32 conversion of ``model.params``
with ONNX Runtime's basic rewrites applied (BatchNorm folded into the convolutions) and then
``quantize_static`` in operator format. ``mismatch(fp32, int8)`` undoes that on paper:

* the INT8 graph's ``QuantizeLinear``/``DequantizeLinear`` nodes are looked through, each
  ``QLinear*`` operator is read as its float operator (same attributes), and a ``Relu`` or ``Clip``
  of the fp32 graph that the quantizer folded away must have left its trace in the producer's
  output range: zero point 0, so the quantized output clamps at 0 as the ``Relu`` did (and, for
  ``Clip``, 255 steps no wider than its maximum);
* the two graphs are walked together from the input: every fp32 node must have one INT8
  counterpart fed by the counterparts of its inputs, every INT8 node must be used, and the graph
  outputs must be the counterparts' outputs;
* every constant (weights, biases, shapes, the anchors) must equal the fp32 one: float and integer
  constants exactly, quantized ones dequantized within half a quantization step (per tensor or per
  channel), and a quantized weight's step no coarser than 7 bits of its own fp32 range (a huge
  step would make any weight "within half a step").

What cannot be re-derived: the activations' scales come from calibration images. ``onnx_int8_mismatch``
therefore also runs both graphs on a few fixed images (``ssd.inference.int8_behaviour``): their outputs
must agree, as a whole and head by head (each feature map's slice), within what honest quantization measures.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ssd.base.errors import SSDError, error_gist
from ssd.inference.onnx_trust import INT8_ONNX_FILE, check_onnx_file

#: QLinear operator -> (float operator, positions of its (tensor, scale, zero point) inputs, position of
#: an int32 bias (scale: product of the first two inputs' scales) or None, positions of output scale/zp).
QLINEAR: Dict[str, Tuple[str, Tuple[int, ...], Optional[int], Tuple[int, int]]] = {
    "QLinearConv": ("Conv", (0, 3), 8, (6, 7)),
    "QLinearMatMul": ("MatMul", (0, 3), None, (6, 7)),
    "QLinearAdd": ("Add", (0, 3), None, (6, 7)),
    "QLinearMul": ("Mul", (0, 3), None, (6, 7)),
    "QGemm": ("Gemm", (0, 3), 6, (7, 8)),
    "QLinearSigmoid": ("Sigmoid", (0,), None, (3, 4)),
    "QLinearLeakyRelu": ("LeakyRelu", (0,), None, (3, 4)),
    "QLinearAveragePool": ("AveragePool", (0,), None, (3, 4)),
    "QLinearGlobalAveragePool": ("GlobalAveragePool", (0,), None, (3, 4)),
    "QLinearSoftmax": ("Softmax", (0,), None, (3, 4)),
}
LOOKED_THROUGH = ("QuantizeLinear", "DequantizeLinear")
FOLDED = ("Relu", "Clip")  # activations the quantizer may fold into their input's quantization range
WEIGHT_LEVELS = 63          # 7-bit signed weights (reduce_range): the coarsest step quantize makes


def fold_batchnorm(src: str, dest: str) -> None:
    """ONNX Runtime's basic, hardware-independent rewrites (BatchNorm into Conv) of ``src`` written to
    ``dest``: the fp32 graph quantize quantizes, and so the one an INT8 graph is compared with."""
    import onnxruntime as ort

    check_onnx_file(src)        # an exported folder's graph is from outside: checked before ONNX Runtime
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = dest
    ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])


def onnx_int8_mismatch(model_dir: str) -> Optional[str]:
    """``None`` when the folder's ``model-int8.onnx`` is the quantization of its weights (a fresh fp32
    conversion of ``model.params``; for a folder exported as ONNX, its ``model.onnx``); else why not.
    Costs one conversion (MXNet's import included) and one BatchNorm folding: ~2 s for the shipped model."""
    import onnx

    from ssd.inference.int8_behaviour import behaviour_mismatch
    from ssd.inference.onnx_export import convert
    from ssd.store import ONNX_FILE, is_onnx, load_model, read_meta

    staging = tempfile.mkdtemp(prefix="ssd-int8-check-")
    try:
        int8 = check_onnx_file(os.path.join(model_dir, INT8_ONNX_FILE))
        fresh, folded = os.path.join(staging, "fp32.onnx"), os.path.join(staging, "folded.onnx")
        if is_onnx(read_meta(model_dir)):
            fresh = os.path.join(model_dir, ONNX_FILE)
        else:
            net, meta = load_model(model_dir)
            convert(net, meta, fresh)
        fold_batchnorm(fresh, folded)
        fp32 = onnx.load(folded)
        return mismatch(fp32, int8) or behaviour_mismatch(fp32, int8, read_meta(model_dir))
    except (SSDError, OSError) as err:
        return error_gist(err, 200)
    except Exception as err:  # noqa: BLE001 - a graph the comparison cannot read is not proven
        return f"it cannot be compared with the weights ({type(err).__name__}: {error_gist(err, 160)})"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _Int8:
    """The INT8 graph read as float: per node, its float operator and inputs (tensor names, or
    constants with their tolerance), and each quantized tensor's zero point."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.alias: Dict[str, str] = {}
        self.ranges: Dict[str, Tuple[Any, Any]] = {}    # quantized tensor -> (scale, zero point)
        self.nodes: List[Tuple[str, Tuple[bytes, ...], List[Any], List[str]]] = []
        for node in model.graph.node:
            if node.op_type in LOOKED_THROUGH:
                self.alias[node.output[0]] = self.name(node.input[0])
                if len(node.input) > 2 and node.input[2] in self.consts and node.input[1] in self.consts:
                    self.ranges.setdefault(self.name(node.input[0]),
                                           (self.consts[node.input[1]], self.consts[node.input[2]]))
                continue
            self.nodes.append(self._read(node))
        self.outputs = {o.name: self.name(o.name) for o in model.graph.output}

    def name(self, tensor: str) -> str:
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def _read(self, node):
        attrs = _attrs(node)
        if node.op_type == "QLinearConcat":
            triples = range(2, len(node.input), 3)
            self._note_range(node.output[0], node.input[0], node.input[1])
            return "Concat", attrs, [self._input(node, i) for i in triples], list(node.output)
        if node.op_type not in QLINEAR:
            return node.op_type, attrs, [self._plain(n) for n in node.input], list(node.output)
        op, triples, bias, (out_scale, out_zp) = QLINEAR[node.op_type]
        inputs = [self._input(node, i) for i in triples]
        if bias is not None and len(node.input) > bias and node.input[bias]:
            step = self.consts.get(node.input[1], np.nan) * self.consts.get(node.input[4], np.nan)
            inputs.append(("const", self.consts[node.input[bias]] * step, step / 2, False))
        self._note_range(node.output[0], node.input[out_scale], node.input[out_zp])
        return op, attrs, inputs, list(node.output)

    def _note_range(self, tensor: str, scale: str, zp: str) -> None:
        if scale in self.consts and zp in self.consts:
            self.ranges[tensor] = (self.consts[scale], self.consts[zp])

    def _input(self, node, i: int):
        tensor, scale, zp = node.input[i], node.input[i + 1], node.input[i + 2]
        if tensor in self.consts:
            s, z = self.consts[scale], self.consts[zp]
            shape = (-1,) + (1,) * (self.consts[tensor].ndim - 1) if np.ndim(s) else ()
            s, z = np.reshape(s, shape), np.reshape(z, shape)
            value = (self.consts[tensor].astype(np.float64) - z) * s
            return "const", value, s / 2, True
        return self._plain(tensor)

    def _plain(self, tensor: str):
        if tensor in self.consts:
            return "const", self.consts[tensor], None, False
        return "tensor", self.name(tensor)


def _attrs(node) -> Tuple[bytes, ...]:
    """The node's attributes, but what ONNX Runtime's QLinear operators add that the float operator has
    implicitly: ``channels_last=0`` (pooling's default layout), ``opset`` (softmax's, the graph's own)."""
    extra = node.op_type.startswith("QLinear")
    out = []
    for a in sorted(node.attribute, key=lambda a: a.name):
        if extra and ((a.name == "channels_last" and a.i == 0) or a.name == "opset"):
            continue
        a = type(a).FromString(a.SerializeToString())
        a.t.name = ""           # a tensor attribute's name (ConstantOfShape's value) is no part of it
        out.append(a.SerializeToString())
    return tuple(out)


def _const_mismatch(ours: np.ndarray, theirs) -> Optional[str]:
    _, value, tol, is_weight = theirs
    if np.shape(value) != ours.shape:
        return f"a constant of shape {list(np.shape(value))} where the weights have {list(ours.shape)}"
    if tol is None:       # a float or integer constant: the very same
        if value.dtype != ours.dtype or not np.array_equal(value, ours):
            return "a constant that differs from the weights' own"
        return None
    ours64 = ours.astype(np.float64)
    half = np.broadcast_to(np.asarray(tol, np.float64), ours.shape)
    if not np.all(np.isfinite(half)) or np.any(np.abs(value - ours64) > half * (1 + 1e-5) + 1e-12):
        return "a quantized weight further than half a step from the weights' own"
    if is_weight:
        per_channel = np.size(tol) > 1 and ours.ndim > 1
        axes = tuple(range(1, ours.ndim)) if per_channel else None
        coarsest = np.max(np.abs(ours64), axis=axes, keepdims=per_channel) / WEIGHT_LEVELS
        coarsest = np.where(coarsest > 0, coarsest, np.inf)     # all zeros: dequantized exactly, any step
        if np.any(2 * np.asarray(tol, np.float64) > coarsest * (1 + 1e-3)):
            return "a quantization step coarser than 7 bits of the weights' range"
    return None


def mismatch(fp32_model, int8_model) -> Optional[str]:
    """``None`` when ``int8_model`` is the quantization of ``fp32_model`` (BatchNorm already folded
    there, as quantize does); else the first difference, in a few words."""
    from onnx import numpy_helper

    q = _Int8(int8_model)
    consts = {i.name: numpy_helper.to_array(i) for i in fp32_model.graph.initializer}
    seen: Dict[str, str] = {i.name: q.name(i.name) for i in fp32_model.graph.input}
    unused = list(range(len(q.nodes)))
    for node in fp32_model.graph.node:
        if node.op_type in FOLDED and not _kept(q, unused, node.op_type, seen.get(node.input[0])):
            why = _folded(node, q, consts, seen)
        else:
            why = _match_node(node, q, consts, seen, unused)
        if why:
            return why
    if unused:
        return f"{len(unused)} operator(s) of the INT8 graph that the weights' graph lacks ({q.nodes[unused[0]][0]})"
    for out in fp32_model.graph.output:
        if out.name in consts:
            theirs = q.consts.get(out.name)
            if theirs is None or _const_mismatch(consts[out.name], ("const", theirs, None, False)):
                return f"output {out.name!r} is another constant"
        elif q.outputs.get(out.name) != seen.get(out.name):
            return f"output {out.name!r} is wired elsewhere"
    return None


def _kept(q: _Int8, unused: List[int], op: str, tensor: Optional[str]) -> bool:
    return any(q.nodes[i][0] == op and q.nodes[i][2][:1] == [("tensor", tensor)] for i in unused)


def _folded(node, q: _Int8, consts: Dict[str, np.ndarray], seen: Dict[str, str]) -> Optional[str]:
    """A ``Relu`` or ``Clip`` the quantizer folded into its input's range: that range must clamp as the
    operator did (zero point 0 in uint8: nothing below 0; for ``Clip``, nothing above its maximum)."""
    src = seen.get(node.input[0])
    scale, zp = q.ranges.get(src, (None, None)) if src else (None, None)
    lo, hi = (0.0, np.inf) if node.op_type == "Relu" else _clip_bounds(node, consts)
    fits = zp is not None and np.asarray(zp).dtype == np.uint8 and not np.any(np.asarray(zp) != 0) and lo == 0.0
    if fits and np.isfinite(hi):
        fits = float(np.max(scale)) * 255 <= hi * (1 + 1e-3) + 1e-6
    if not fits:
        return f"a {node.op_type} ({node.name or node.output[0]!r}) with no trace in the INT8 graph"
    seen[node.output[0]] = src
    return None


def _clip_bounds(node, consts: Dict[str, np.ndarray]) -> Tuple[float, float]:
    bounds = [float(consts[n]) if n in consts else None for n in list(node.input[1:3])]
    bounds += [None] * (2 - len(bounds))
    lo, hi = bounds
    return (-np.inf if lo is None else lo), (np.inf if hi is None else hi)


def _match_node(node, q: _Int8, consts: Dict[str, np.ndarray], seen: Dict[str, str],
                unused: List[int]) -> Optional[str]:
    ours = []
    for name in node.input:
        if name in consts:
            ours.append(("const", consts[name]))
        elif name in seen:
            ours.append(("tensor", seen[name]))
        else:
            return f"{node.op_type} {node.name or node.output[0]!r} reads a tensor the INT8 graph never made"
    attrs, why = _attrs(node), f"no INT8 counterpart of {node.op_type} {node.name or node.output[0]!r}"
    for i in unused:
        op, their_attrs, theirs, outs = q.nodes[i]
        if op != node.op_type or their_attrs != attrs or len(theirs) != len(ours) or len(outs) != len(node.output):
            continue
        if any(a[0] != b[0] or (a[0] == "tensor" and a[1] != b[1]) for a, b in zip(ours, theirs)):
            continue
        problem = next((p for a, b in zip(ours, theirs) if a[0] == "const" for p in [_const_mismatch(a[1], b)] if p),
                       None)
        if problem:
            why = f"{node.op_type} {node.name or node.output[0]!r}: {problem}"
            continue
        unused.remove(i)
        seen.update(zip(node.output, outs))
        return None
    return why
