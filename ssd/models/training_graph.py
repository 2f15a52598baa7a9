"""The graph a network trains through: BatchNorm+ReLU fused, convolutions in bfloat16 where it pays.

A network is written for people: Conv → BatchNorm → ReLU blocks in float32. The training step
only needs the same arithmetic done fast, so it runs a graph traced from the network:

* **BatchNorm + ReLU fused** into oneDNN's one kernel (``_contrib_BatchNormWithReLU``): one pass
  over each activation fewer, forward and backward. Identical results.
* **bfloat16 convolutions** on a CPU with native bfloat16 (AVX512_BF16 or AMX: AMD Zen 4, Intel
  Cooper Lake and later), through MXNet's AMP graph pass: activations and convolution inputs are
  bfloat16, the weights stay float32 *master* weights (cast inside the graph, so SGD updates
  float32 values), BatchNorm's parameters and statistics stay float32, the outputs are cast back
  to float32 before the loss. The prediction heads stay float32 (see ``convolutions_kept_fp32``),
  and so do convolutions whose channel counts are not multiples of 16 (the RGB-in layer): oneDNN
  has no blocked bfloat16 kernel for them and falls back to a gemm 2× slower than float32.

The traced graph shares the network's ``Parameter`` objects, so the trainer, checkpoints,
validation, export and detection all see the network as written, in float32. Nothing about the
saved model depends on how it was trained. Before use, the bfloat16 graph is checked against the
float32 one on one input; any failure (an operator without bfloat16 support, a network that cannot
be traced) falls back to the float32 graph with the reason, never a failed run.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, List, Sequence, Tuple

import numpy as np

from ssd.base.device import cpu_bfloat16
from ssd.base.errors import error_gist

PRECISIONS = ("auto", "fp32", "bf16")
BF16_CHANNEL_BLOCK = 16      # oneDNN's bfloat16 convolutions want channel counts in blocks of 16
CHECK_TOLERANCE = 0.05       # bf16 vs fp32 outputs on the check input, relative to their scale


@dataclass
class TrainingGraph:
    """What the training step calls (``block``), and how it computes, in words for the run's log."""

    block: Any
    precision: str           # "fp32" | "bf16"
    reason: str              # why this precision
    fused: int = 0           # BatchNorm+ReLU pairs fused

    def meta(self) -> dict:
        return {"precision": self.precision, "reason": self.reason, "batchnorm_relu_fused": self.fused}


def arithmetic_text(arith: Any) -> str:
    """A run's ``arithmetic`` record in words: "bfloat16 mixed precision (why)", or "float32"
    (also for models trained before the record existed)."""
    if not isinstance(arith, dict):
        return "float32"
    name = "bfloat16 mixed precision" if arith.get("precision") == "bf16" else "float32"
    return f"{name} ({arith['reason']})" if arith.get("reason") else name


def resolve_precision(requested: str, contexts: Sequence[Any]) -> Tuple[str, str]:
    """``(precision, reason)`` for a requested ``auto|fp32|bf16`` on these devices."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown training precision {requested!r}; known: {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return "fp32", "float32 was requested"
    if any(getattr(c, "device_type", "cpu") != "cpu" for c in contexts):
        return "fp32", "bfloat16 training is a CPU path here (MXNet 1.9 has no bfloat16 GPU kernels)"
    flag = cpu_bfloat16()
    if not flag:
        return "fp32", "this CPU has no native bfloat16 arithmetic (AVX512_BF16 or AMX)"
    return "bf16", f"this CPU computes bfloat16 natively ({flag})"


def fuse_batchnorm_relu(sym):
    """``sym`` with every BatchNorm whose only consumer is a ReLU replaced by the fused operator.

    Returns ``(symbol, pairs fused)``. Parameter and node names are kept, so the fused graph
    binds to the same parameters.
    """
    import mxnet as mx

    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    consumers: dict = {}
    for i, node in enumerate(nodes):
        for src in node["inputs"]:
            consumers.setdefault(src[0], []).append(i)
    for head in graph["heads"]:
        consumers.setdefault(head[0], []).append(-1)
    dropped = {}   # ReLU node -> the BatchNorm node that now does its work
    for i, node in enumerate(nodes):
        if node["op"] != "Activation" or node.get("attrs", {}).get("act_type") != "relu":
            continue
        src, out_index = node["inputs"][0][:2]
        if nodes[src]["op"] == "BatchNorm" and out_index == 0 and consumers.get(src) == [i]:
            nodes[src]["op"] = "_contrib_BatchNormWithReLU"
            dropped[i] = src
    if not dropped:
        return sym, 0
    index = {}
    kept = []
    for i, node in enumerate(nodes):
        if i not in dropped:
            index[i] = len(kept)
            kept.append(node)

    def remap(ref):
        if ref[0] in dropped:
            return [index[dropped[ref[0]]], 0, 0]
        return [index[ref[0]], ref[1], ref[2]]

    for node in kept:
        node["inputs"] = [remap(r) for r in node["inputs"]]
    graph["nodes"] = kept
    graph["heads"] = [remap(h) for h in graph["heads"]]
    graph["arg_nodes"] = [i for i, n in enumerate(kept) if n["op"] == "null"]
    graph.pop("node_row_ptr", None)
    return mx.sym.load_json(json.dumps(graph)), len(dropped)


def convolutions_kept_fp32(sym, params) -> List[str]:
    """Names of the convolutions that stay float32: the prediction heads, and any whose input or
    output channels are not multiples of 16.

    A head is a convolution whose output is neither normalized nor activated: its values are the
    network's class scores and box offsets, where bfloat16's 8-bit mantissa would round what the
    loss measures (with the heads in bfloat16, two 10-epoch TinySSD runs ended 0.02 and 0.06 mAP lower).
    """
    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    shaping = {"BatchNorm", "_contrib_BatchNormWithReLU", "Activation", "relu", "LeakyReLU"}
    activated = {src[0] for node in nodes if node["op"] in shaping for src in node["inputs"][:1]}
    names = []
    for i, node in enumerate(nodes):
        if node["op"] != "Convolution":
            continue
        weight = nodes[node["inputs"][1][0]]["name"]
        out_ch, in_ch = params[weight].shape[:2]
        if out_ch % BF16_CHANNEL_BLOCK or in_ch % BF16_CHANNEL_BLOCK or i not in activated:
            names.append(node["name"])
    return names


DISTRIBUTED_REASON = ("a distributed run trains the network as written: with parameters initialized before "
                      "the first step, MXNet 1.9's dist_sync kvstore left workers with different weights")


def training_graph(net, input_size: int, contexts: Sequence[Any], requested: str = "auto",
                   distributed: bool = False) -> TrainingGraph:
    """The graph the training step should call for ``net`` (initialized on ``contexts``).

    Never raises for a network it cannot convert: it returns the network itself with the reason.
    ``distributed`` (a ``dist_*`` kvstore): the network itself, float32. Tracing needs the weights
    initialized before the trainer's first step, and MXNet 1.9's parameter-server initialization
    then went wrong now and then (a worker pulling weights before the server had them, or ending
    with other weights than its peer; ``tests/test_distributed.py``).
    """
    if distributed:
        return TrainingGraph(net, "fp32", DISTRIBUTED_REASON)
    precision, reason = resolve_precision(requested, contexts)
    try:
        sym, params = _trace(net, input_size, contexts[0])
        fused_sym, fused = fuse_batchnorm_relu(sym)
        fp32 = _bind(fused_sym, params)
    except Exception as err:  # noqa: BLE001 - any network that cannot be traced trains as written
        return TrainingGraph(net, "fp32", f"the network could not be traced ({error_gist(err)})")
    if fused:
        try:
            _check_backward(fp32, params, input_size, contexts[0])
        except Exception as err:  # noqa: BLE001 - oneDNN lacks a fused kernel for some layer's layout
            fused_sym, fused = sym, 0
            fp32 = _bind(sym, params)
            reason += f"; BatchNorm+ReLU left unfused (oneDNN: {error_gist(err)})"
    if precision != "bf16":
        return TrainingGraph(fp32, "fp32", reason, fused)
    try:
        bf16 = _bind(_bf16_symbol(fused_sym, params), params)
        _check_close(bf16, fp32, input_size, contexts[0])
    except Exception as err:  # noqa: BLE001 - an operator without bfloat16 support, a failed check
        return TrainingGraph(fp32, "fp32", f"bfloat16 graph unusable ({error_gist(err)}); float32 instead", fused)
    return TrainingGraph(bf16, "bf16", reason, fused)


def _trace(net, input_size: int, ctx):
    """The network's symbol as training sees it (train mode), and its parameters with shapes known."""
    import mxnet as mx
    from mxnet import autograd

    # Both calls in train mode, as training will make them.
    with autograd.train_mode():
        net(mx.nd.zeros((2, 3, input_size, input_size), ctx=ctx))   # finishes deferred initialization
        out = net(mx.sym.var("data", dtype="float32"))
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    return mx.sym.Group(outs), net.collect_params()


def _bf16_symbol(sym, params):
    """AMP's bfloat16 pass with float32 weights, the listed convolutions kept, outputs float32."""
    import mxnet as mx
    from mxnet.contrib import amp

    converted = amp.convert_symbol(sym, target_dtype="bfloat16", cast_optional_params=False,
                                   excluded_sym_names=convolutions_kept_fp32(sym, params))
    return mx.sym.Group([mx.sym.amp_cast(converted[i], dtype="float32") for i in range(len(converted))])


def _bind(sym, params):
    """A hybridized block computing ``sym`` with ``params`` (shared, not copied)."""
    import mxnet as mx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "cannot decide type for data": it is float32
        block = mx.gluon.SymbolBlock(sym, mx.sym.var("data", dtype="float32"), params=params)
    block.hybridize(static_alloc=True)
    return block


def _check_backward(block, params, input_size: int, ctx) -> None:
    """One forward and backward pass of ``block`` in train mode on a batch of 2; raises what oneDNN
    raises. Why: its fused BatchNorm+ReLU has no backward kernel for some layouts (measured: after
    SSDlite's 64-channel stride-2 depthwise convolution), and the failure shows only in the step.
    The running statistics the pass moves are put back; the gradients it writes are overwritten by
    the first step."""
    import mxnet as mx
    from mxnet import autograd

    stats = {name: [d.copy() for d in p.list_data()] for name, p in params.items() if p.grad_req == "null"}
    x = mx.nd.zeros((2, 3, input_size, input_size), ctx=ctx)
    try:
        with autograd.record():
            total = sum(o.sum() for o in _as_list(block(x)))
        total.backward()
        mx.nd.waitall()
    finally:
        for name, copies in stats.items():
            for dst, src in zip(params[name].list_data(), copies):
                src.copyto(dst)


def _check_close(candidate, reference, input_size: int, ctx) -> None:
    """Raise ``ValueError`` when ``candidate``'s outputs stray from ``reference``'s on one batch
    (train mode, as the step calls them)."""
    import mxnet as mx
    from mxnet import autograd

    x = mx.nd.array(np.random.default_rng(0).standard_normal((2, 3, input_size, input_size)), ctx=ctx)
    with autograd.train_mode():
        pairs = list(zip(_as_list(candidate(x)), _as_list(reference(x))))
    for got, want in pairs:
        got, want = got.asnumpy(), want.asnumpy()
        scale = float(np.abs(want).max()) + 1e-3
        err = float(np.abs(got - want).max())
        if not np.isfinite(got).all() or err > CHECK_TOLERANCE * scale:
            raise ValueError(f"outputs differ from float32 by {err:.3g} (scale {scale:.3g})")


def _as_list(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]
