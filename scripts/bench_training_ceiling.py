#!/usr/bin/env python
"""How fast can a TinySSD training step be on this CPU? The convolutions' share and the ceiling.

Run: ``.venv/bin/python scripts/bench_training_ceiling.py [--precision auto] [--batches 8] [--json OUT]``.

Why: training should run at ≥ 3× the d2l book's loop ("Single Shot Multibox Detection"). Whether
that is a matter of code or of arithmetic depends on the CPU, and this script measures which, in
one run:

1. **the machine's peak**: float32 matrix multiply (NumPy, 2048², all cores): the most
   multiply-adds per second these cores deliver to a dense kernel;
2. **the work**: the multiply-adds of every convolution of the training step, counted from the
   traced network's shapes: forward, backward to the data (not for the input layer, whose
   data needs no gradient) and backward to the weights;
3. **the step**: this project's training step (``ssd.models.multibox.MultiBoxPlan.step``: the
   graph, loss, targets and optimizer of ``python -m ssd train``) on preloaded batches of 32,
   timed after warm-up, and MXNet's profiler's time in ``Convolution`` and
   ``_backward_Convolution`` over the same steps;
4. **the d2l book's loop** (``scripts/benchmark.py --section d2l``, its own process).

It prints the images/s this step would reach if everything but the convolutions were free (the
ceiling of any change to the code around them) and if the convolutions ran at the matrix
multiply's peak, each as a multiple of the d2l book's loop.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import ssd  # noqa: E402,F401  (sizes MXNet's OpenMP pool before MXNet loads)

BATCH = 32


def matmul_peak_gflops(n: int = 2048, reps: int = 5) -> float:
    """Float32 GEMM throughput, best of ``reps``: the dense-kernel roofline of these cores."""
    import numpy as np

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def conv_gflop_per_image(net, size: int) -> dict:
    """Forward, backward-data and backward-weights GFLOP of the network's convolutions, per image."""
    import mxnet as mx

    out = net(mx.sym.var("data"))
    sym = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
    internals = sym.get_internals()
    nodes = json.loads(sym.tojson())["nodes"]
    convs = [n for n in nodes if n["op"] == "Convolution"]
    _, out_shapes, _ = internals.infer_shape(data=(1, 3, size, size))
    shape_of = dict(zip(internals.list_outputs(), out_shapes))
    fwd = bwd_data = 0.0
    for node in convs:
        data_name = nodes[node["inputs"][0][0]]["name"]
        cin = shape_of.get(data_name + "_output", shape_of.get(data_name))[1]
        _, cout, h, w = shape_of[node["name"] + "_output"]
        kh, kw = ast.literal_eval(node["attrs"]["kernel"])      # MXNet writes "(3, 3)"
        flops = 2.0 * cin * cout * h * w * kh * kw
        fwd += flops
        if data_name != "data":           # the input image needs no gradient
            bwd_data += flops
    return {"forward": fwd / 1e9, "backward_data": bwd_data / 1e9, "backward_weights": fwd / 1e9,
            "layers": len(convs)}


def step_profile(data: str, precision: str, batches: int, warmup: int) -> dict:
    """Time this project's training step and the convolutions inside it (MXNet's profiler)."""
    import mxnet as mx

    from ssd.data.dataset import open_dataset
    from ssd.data.decoded import prepare_split
    from ssd.training.config import TrainConfig, prepared
    from ssd.training.optimizer import make_trainer

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(data=data, out=out, epochs=1, batch_size=BATCH, limit_val=0, device="cpu",
                          precision=precision)
        recipe, _ = prepared(cfg)
        splits = open_dataset(cfg.data)
        train_ds = prepare_split(splits.train, cfg.input_size, splits.kind, cfg.data, "train", None, cfg.cache)
        plan = recipe.training_plan(cfg, splits.classes, train_ds, [mx.cpu()], lambda *a, **k: None,
                                    resuming=False)
        trainer = make_trainer(plan.net, cfg, plan.iters, 1)
        it = plan.epoch(0)
        loaded = [next(it) for _ in range(min(batches, plan.iters))]
        for b in loaded[:warmup]:
            plan.step(b, trainer)
        mx.nd.waitall()
        t = time.perf_counter()
        for i in range(batches):
            plan.step(loaded[i % len(loaded)], trainer)
        mx.nd.waitall()
        step_s = (time.perf_counter() - t) / batches
        mx.profiler.set_config(profile_imperative=True, profile_symbolic=True, aggregate_stats=True,
                               filename=os.path.join(out, "profile.json"))
        mx.profiler.set_state("run")
        for i in range(batches):
            plan.step(loaded[i % len(loaded)], trainer)
        mx.nd.waitall()
        mx.profiler.set_state("stop")
        stats = json.loads(mx.profiler.dumps(format="json"))
        flops = conv_gflop_per_image(plan.net, cfg.input_size)
        arith = plan.arithmetic()
    ops = stats.get("Time", {}).get("operator", {})
    conv_ms = sum(ops.get(k, {}).get("Total", 0.0) for k in ("Convolution", "_backward_Convolution"))
    return {"step_ms": step_s * 1000, "conv_ms_per_step": conv_ms / batches, "flops": flops,
            "precision": arith.get("precision"), "img_s": BATCH / step_s}


def d2l_img_s(data: str, batches: int, warmup: int) -> float:
    """Images/s of the d2l book's training loop (``scripts/benchmark.py``), in its own process."""
    cmd = [sys.executable, os.path.join(REPO, "scripts", "benchmark.py"), "--section", "d2l", "--data", data,
           "--batches", str(batches), "--warmup", str(warmup), "--out", os.devnull]
    return float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--batches", type=int, default=8, help="timed steps of 32 (then as many profiled)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()

    from ssd.data.synthetic import generate

    res = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                      f"Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "synth")
        generate(data, num_train=BATCH * (args.batches + args.warmup), num_val=8, seed=123)
        res["matmul_peak_gflops"] = matmul_peak_gflops()
        res["d2l_img_s"] = d2l_img_s(data, args.batches, args.warmup)
        res.update(step_profile(data, args.precision, args.batches, args.warmup))
    f = res["flops"]
    per_image = f["forward"] + f["backward_data"] + f["backward_weights"]
    conv_s = res["conv_ms_per_step"] / 1000
    res["conv_gflops"] = per_image * BATCH / conv_s
    res["ceiling_img_s"] = BATCH / conv_s                          # everything but the convolutions free
    res["peak_img_s"] = res["matmul_peak_gflops"] / per_image      # …and the convolutions at GEMM peak
    d2l = res["d2l_img_s"]
    print(f"\nMachine: {res['machine']}; training arithmetic: {res['precision']}\n")
    print("| measure | result | × the d2l book's loop |")
    print("| --- | --- | --- |")
    print(f"| float32 matrix multiply, 2048², all cores | {res['matmul_peak_gflops']:.0f} GFLOP/s | |")
    print(f"| convolution work per training image ({f['layers']} layers: forward / backward-data / "
          f"backward-weights) | {per_image:.2f} GFLOP ({f['forward']:.2f} / {f['backward_data']:.2f} / "
          f"{f['backward_weights']:.2f}) | |")
    print(f"| the d2l book's loop, batch {BATCH} | {d2l:.1f} img/s | 1.00× |")
    print(f"| this project's step, batch {BATCH} | {res['img_s']:.1f} img/s ({res['step_ms']:.0f} ms per step) "
          f"| {res['img_s'] / d2l:.2f}× |")
    print(f"| its convolutions | {res['conv_ms_per_step']:.0f} ms per step, {res['conv_gflops']:.0f} GFLOP/s "
          f"(profiler on) | |")
    print(f"| ceiling: everything but the convolutions free | {res['ceiling_img_s']:.1f} img/s | "
          f"{res['ceiling_img_s'] / d2l:.2f}× |")
    print(f"| ceiling: convolutions at the matrix multiply's peak, nothing else | {res['peak_img_s']:.1f} img/s | "
          f"{res['peak_img_s'] / d2l:.2f}× |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
