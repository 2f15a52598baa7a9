"""The training graph: BatchNorm+ReLU fusion, bfloat16 convolutions, and the choice between them."""
from __future__ import annotations

import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from ssd.base import device as devices
from ssd.models import training_graph as tg
from ssd.models.tiny import TinySSD

SIZE = 64


def _net(seed: int = 0) -> TinySSD:
    mx.random.seed(seed)
    net = TinySSD(1, SIZE)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, SIZE, SIZE)))
    return net


def _batch(n: int = 4) -> mx.nd.NDArray:
    return mx.nd.array(np.random.default_rng(1).standard_normal((n, 3, SIZE, SIZE)))


def _grads_of(block, net, x):
    with autograd.record():
        outs = block(x)
        loss = sum(o.sum() for o in outs[1:])     # the heads' outputs (anchors carry no gradient)
    loss.backward()
    return [o.asnumpy() for o in outs], {k: p.grad().asnumpy().copy() for k, p in net.collect_params().items()
                                         if p.grad_req != "null"}


def test_fusing_batchnorm_relu_changes_no_output_and_no_gradient():
    net = _net()
    sym, params = tg._trace(net, SIZE, mx.cpu())
    fused_sym, pairs = tg.fuse_batchnorm_relu(sym)
    assert pairs == 12                         # 2 per down-sample block: 3 in the base, 3 of 128 channels
    ops = [n["op"] for n in json.loads(fused_sym.tojson())["nodes"]]
    assert ops.count("_contrib_BatchNormWithReLU") == 12 and "BatchNorm" not in ops
    assert fused_sym.list_arguments() == sym.list_arguments()      # binds to the same parameters
    x = _batch()
    want_out, want_grad = _grads_of(tg._bind(sym, params), net, x)
    got_out, got_grad = _grads_of(tg._bind(fused_sym, params), net, x)
    for a, b in zip(got_out, want_out):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for k in want_grad:
        np.testing.assert_allclose(got_grad[k], want_grad[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_fusion_leaves_a_batchnorm_whose_output_is_also_used_elsewhere():
    data = mx.sym.var("data")
    bn = mx.sym.BatchNorm(data, name="bn")
    out = mx.sym.Group([mx.sym.Activation(bn, act_type="relu"), bn * 2])
    fused, pairs = tg.fuse_batchnorm_relu(out)
    assert pairs == 0 and fused is out


def test_precision_choice_follows_the_cpu_and_the_request(monkeypatch):
    monkeypatch.setattr(tg, "cpu_bfloat16", lambda: "avx512_bf16")
    assert tg.resolve_precision("auto", [mx.cpu()]) == ("bf16", "this CPU computes bfloat16 natively (avx512_bf16)")
    assert tg.resolve_precision("fp32", [mx.cpu()])[0] == "fp32"
    precision, why = tg.resolve_precision("auto", [mx.gpu(0)])
    assert precision == "fp32" and "GPU" in why
    monkeypatch.setattr(tg, "cpu_bfloat16", lambda: "")
    precision, why = tg.resolve_precision("bf16", [mx.cpu()])
    assert precision == "fp32" and "AVX512_BF16" in why
    with pytest.raises(ValueError, match="fp16"):
        tg.resolve_precision("fp16", [mx.cpu()])


def test_cpu_flags_are_read_from_cpuinfo(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert devices.cpu_flags(str(info))[-1] == "avx512_bf16"
    assert devices.cpu_flags(str(tmp_path / "missing")) == []
    monkeypatch.setattr(devices, "cpu_flags", lambda: ["avx2", "avx512f"])
    assert devices.cpu_bfloat16() == ""
    monkeypatch.setattr(devices, "cpu_flags", lambda: ["avx2", "amx_bf16"])
    assert devices.cpu_bfloat16() == "amx_bf16"


def _bf16_graph(net, monkeypatch):
    monkeypatch.setattr(tg, "cpu_bfloat16", lambda: "avx512_bf16")
    graph = tg.training_graph(net, SIZE, [mx.cpu()], "auto")
    if graph.precision != "bf16":
        pytest.skip(f"this MXNet/CPU cannot run the bfloat16 graph: {graph.reason}")
    return graph


def test_bf16_graph_keeps_the_input_layer_and_heads_fp32_and_follows_the_fp32_network(monkeypatch):
    net = _net()
    graph = _bf16_graph(net, monkeypatch)
    sym, params = tg._trace(net, SIZE, mx.cpu())
    kept = tg.convolutions_kept_fp32(sym, params)
    first = net.blocks[0][0][0].weight.name
    assert any(first.startswith(k.rsplit("_fwd", 1)[0]) for k in kept), kept   # RGB in: 3 channels
    assert len(kept) == 1 + len(net.cls_heads) + len(net.box_heads)   # and every prediction head
    x = _batch()
    with autograd.train_mode():                            # batch statistics, as in training
        want, got = net(x), graph.block(x)
    np.testing.assert_array_equal(got[0].asnumpy(), want[0].asnumpy())   # anchors stay exact
    for a, b in zip(got[1:], want[1:]):
        a, b = a.asnumpy(), b.asnumpy()
        assert a.dtype == np.float32
        assert np.abs(a - b).max() <= 0.05 * np.abs(b).max()


def test_training_through_the_bf16_graph_updates_the_networks_own_float32_weights(monkeypatch):
    net = _net()
    graph = _bf16_graph(net, monkeypatch)
    weight = net.blocks[0][0][3].weight                     # a bfloat16 convolution's master weight
    before = weight.data().asnumpy().copy()
    # a step far below bfloat16's resolution (8 bits: ~0.4 % of a weight) must still move the
    # weights: the optimizer updates float32 master weights, not the bfloat16 copies
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1e-6})
    with autograd.record():
        outs = graph.block(_batch())
        loss = outs[1].square().mean() + outs[2].square().mean()
    loss.backward()
    trainer.step(1)
    after = weight.data().asnumpy()
    assert weight.data().dtype == np.float32
    step = np.abs(after - before)
    assert step.max() > 0
    assert np.median(step[step > 0] / np.abs(before[step > 0])) < 2 ** -9


def test_an_unconvertible_network_trains_as_written():
    class Imperative(gluon.Block):        # calls NDArray code: it cannot be traced
        def __init__(self):
            super().__init__()
            self.conv = gluon.nn.Conv2D(4, 3)

        def forward(self, x):
            return mx.nd.relu(self.conv(x))

    net = Imperative()
    net.initialize()
    graph = tg.training_graph(net, 16, [mx.cpu()], "auto")
    assert graph.block is net and graph.precision == "fp32" and "traced" in graph.reason


def test_a_training_run_records_its_arithmetic_and_warns_when_bf16_is_unavailable(synth_dir, tmp_path,
                                                                                  monkeypatch):
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    monkeypatch.setattr(tg, "cpu_bfloat16", lambda: "")
    events = []
    cfg = TrainConfig(data=synth_dir, out=str(tmp_path / "m"), epochs=1, batch_size=8, device="cpu",
                      precision="bf16", max_iters_per_epoch=2, limit_val=4, input_size=64)
    train(cfg, on_event=events.append, install_signal_handlers=False)
    arith = [e for e in events if e["type"] == "arithmetic"]
    assert arith and arith[0]["precision"] == "fp32" and arith[0]["batchnorm_relu_fused"] == 12
    assert any(e["type"] == "warning" and "bfloat16" in e["message"] for e in events)
    with open(os.path.join(cfg.out, "meta.json"), encoding="utf-8") as fh:
        meta = json.load(fh)
    assert meta["training"]["arithmetic"]["precision"] == "fp32"
    assert meta["training"]["args"]["precision"] == "bf16"


def test_a_distributed_run_trains_the_network_as_written(monkeypatch):
    monkeypatch.setattr(tg, "cpu_bfloat16", lambda: "avx512_bf16")
    mx.random.seed(0)
    net = TinySSD(1, SIZE)
    net.initialize(mx.init.Xavier())
    graph = tg.training_graph(net, SIZE, [mx.cpu()], "auto", distributed=True)
    assert graph.block is net and graph.precision == "fp32" and "distributed" in graph.reason
    assert net.blocks[0][0][0].weight._deferred_init        # untouched until the trainer's first step
