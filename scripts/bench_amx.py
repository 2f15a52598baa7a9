#!/usr/bin/env python
"""Where TinySSD's one-thread CPU forward goes on a CPU with AMX, and what moves it.

Run: ``.venv/bin/python scripts/bench_amx.py [--runs 15] [--val 300] [--json OUT]``.

The shipped ``models/tiny-pikachu``, copied to a temporary folder (its fp32 ``model.onnx`` made
there). Every forward is TinySSD at 256×256, batch 8, ONE thread (``OMP_NUM_THREADS=1``, ONNX
Runtime ``intra_op_num_threads=1``), timed in CPU milliseconds per image, contenders in rotation
(median of ``--runs``), each section in its own process so that environment switches apply:

1. **profile**: ONNX Runtime's per-operator profile (``enable_profiling``) of the shipped INT8
   graph and of the fp32 graph: time by operator type and the slowest nodes.
2. **qgemm**: a large ``MatMulInteger`` (u8 × s8) and fp32 ``MatMul`` in ONNX Runtime, as
   multiply-adds per second per core, against AVX-512 VNNI's peak (2 × 64 int8 MACs a cycle) and
   AMX's (1024 a cycle): which one MLAS uses.
3. **ort**: the shipped INT8 graph against variants quantized from the same fp32 graph with the
   same calibration images: QOperator as shipped (rebuilt), QDQ, per-channel weights, 8-bit weights
   (``reduce_range`` off), and graph optimization levels; fp32 and fp16 graphs; VOC07 mAP of each
   on ``--val`` fresh synthetic images (seed 2026, as scripts/bench_onnx.py).
4. **mxnet**: MXNet's oneDNN fp32 and INT8 forwards, once per ``ONEDNN_MAX_CPU_ISA`` (oneDNN's default,
   capped at AVX-512 VNNI or BF16, AMX allowed, AMX allowed with the tile state asked of Linux as
   ``ssd.base.engine`` does), with the kernels oneDNN reports running, the INT8 scores against the
   default's, mAP, and bf16 AMP (``mxnet.contrib.amp``).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)
SHIPPED = os.path.join(REPO, "models", "tiny-pikachu")
BATCH = 8


def _cpu_interleaved(fns: dict, runs: int, images: int = BATCH, warmup: int = 3) -> dict:
    """Median CPU ms per image of each function, in rotation (a shared machine's load hits all alike)."""
    from bench_precision import _interleaved_ms

    ms = _interleaved_ms(fns, runs, warmup, clock=time.process_time, per=images)
    return {k: round(v, 3) for k, v in ms.items()}


def _session(path: str, level: str = "ORT_ENABLE_ALL", profile: str = "", inter: int = 1):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.log_severity_level = 3
    o.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = inter
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile:
        o.enable_profiling = True
        o.profile_file_prefix = profile
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def _input(seed: int = 0):
    import numpy as np

    from ssd.data.preprocess import normalize_batch

    return normalize_batch(np.random.default_rng(seed).integers(0, 255, (BATCH, 256, 256, 3), dtype=np.uint8))


def section_profile(model: str, runs: int) -> dict:
    """Per-operator time of the shipped INT8 graph and the fp32 graph (ONNX Runtime's profiler)."""
    from collections import defaultdict

    x = _input()
    out = {}
    for name in ("model-int8.onnx", "model.onnx"):
        prefix = os.path.join(model, "prof-" + name.split(".")[0])
        s = _session(os.path.join(model, name), profile=prefix)
        for _ in range(3 + runs):
            s.run(None, {"data": x})
        events = json.load(open(s.end_profiling()))
        by_type, by_node, convs = defaultdict(float), defaultdict(float), {}
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                op = e["args"]["op_name"]
                by_type[op] += e["dur"]
                by_node[f"{e['name'][:-len('_kernel_time')]} ({op})"] += e["dur"]
                if op in ("Conv", "QLinearConv"):
                    convs.setdefault(e["name"], [0.0, _conv_macs(op, e["args"])])[0] += e["dur"]
        n = (3 + runs) * BATCH
        # each convolution: ms per image, million MACs per image, GMAC/s (how well MLAS runs that shape)
        out[name + " convs"] = [(k[:-len("_kernel_time")], round(us / n / 1000, 3), round(macs / BATCH / 1e6, 1),
                                 round(macs / (us / (3 + runs)) / 1e3, 1)) for k, (us, macs) in convs.items()]
        total = sum(by_type.values()) / n / 1000
        out[name] = {"total_ms_per_image": round(total, 3),
                     "by_type_ms": {k: round(v / n / 1000, 3)
                                    for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])},
                     "top_nodes_ms": {k: round(v / n / 1000, 3) for k, v in
                                      sorted(by_node.items(), key=lambda kv: -kv[1])[:12]}}
    return out


def _conv_macs(op: str, args: dict) -> float:
    """Multiply-adds of one Conv / QLinearConv run from its profiled shapes: output pixels × weights
    (NHWC for the quantized channels-last kernel, NCHW / NCHWc for the float one, whose padded input
    channels count)."""
    import numpy as np

    ins = [list(d.values())[0] for d in args.get("input_type_shape", [])]
    out = list(args.get("output_type_shape", [{}])[0].values())[0]
    if op == "QLinearConv":     # its weights are prepacked constants, unprofiled: TinySSD's are all 3×3
        return float(np.prod(out) * ins[0][-1] * 9)
    return float(out[0] * out[2] * out[3] * np.prod(ins[1]))


def section_qgemm(model: str, runs: int) -> dict:
    """Multiply-adds per second per core of a large u8×s8 MatMulInteger and an fp32 MatMul."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    m = k = n = 1024
    rng = np.random.default_rng(0)
    out = {"shape": [m, k, n]}
    cases = {
        "MatMulInteger_u8s8": (TensorProto.UINT8, TensorProto.INT8, rng.integers(0, 255, (m, k), dtype=np.uint8),
                               rng.integers(-127, 127, (k, n), dtype=np.int8), TensorProto.INT32),
        "MatMul_fp32": (TensorProto.FLOAT, TensorProto.FLOAT, rng.standard_normal((m, k), dtype=np.float32),
                        rng.standard_normal((k, n), dtype=np.float32), TensorProto.FLOAT),
    }
    fns = {}
    for name, (ta, tb, a, b, to) in cases.items():
        op = name.split("_")[0]
        g = helper.make_graph([helper.make_node(op, ["A", "B"], ["Y"])], name,
                              [helper.make_tensor_value_info("A", ta, [m, k])],
                              [helper.make_tensor_value_info("Y", to, [m, n])],
                              [onnx.numpy_helper.from_array(b, "B")])
        path = os.path.join(model, name + ".onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
        s = _session(path)
        fns[name] = lambda s=s, a=a: s.run(None, {"A": a})
    ms = _cpu_interleaved(fns, runs, images=1)
    ghz = _ghz()
    for name, t in ms.items():
        gmacs = m * k * n / (t / 1000) / 1e9
        out[name] = {"ms": t, "gmac_s": round(gmacs, 1), "mac_per_cycle": round(gmacs / ghz, 1) if ghz else None}
    out["ghz"] = ghz
    out["peaks_mac_per_cycle"] = {"avx512_vnni_int8 (2 ports)": 128, "amx_int8": 1024, "avx512_fp32 (2 FMA)": 32}
    return out


def _ghz() -> float:
    try:
        mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
        return round(statistics.mean(mhz) / 1000, 2)
    except (OSError, ValueError):
        return 0.0


def _quantize(fp32: str, dest: str, calib, fmt: str, per_channel: bool, reduce_range: bool,
              float_convs: int = 0) -> None:
    """Quantize as ``ssd.inference.onnx_quantize`` does but for the named choices; ``float_convs``: how many
    of the first convolutions stay float (the 3- and 16-channel ones are MLAS's slowest per MAC)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    from ssd.inference.int8_match import fold_batchnorm
    from ssd.inference.onnx_quantize import decoder_nodes

    class _Images(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter([{"data": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self._feeds, None)

    folded = dest + ".folded.onnx"
    fold_batchnorm(fp32, folded)
    import onnx

    convs = [n.name for n in onnx.load(folded).graph.node if n.op_type == "Conv"][:float_convs]
    quantize_static(folded, dest, _Images(), quant_format=getattr(QuantFormat, fmt), per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=reduce_range,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=decoder_nodes(folded) + convs)
    os.remove(folded)


def section_ort(model: str, runs: int, val: int, work: str) -> dict:
    """The shipped INT8 graph against quantization variants, optimization levels and fp16."""
    import numpy as np

    from ssd.data.dataset import open_dataset
    from ssd.data.preprocess import normalize_batch
    from ssd.data.synthetic import generate
    from ssd.inference.quantize import calibration_images

    generate(os.path.join(work, "calib"), num_train=8, num_val=0, seed=0)
    calib, _ = calibration_images(open_dataset(os.path.join(work, "calib")), 256, 8)
    calib = normalize_batch(calib)
    fp32 = os.path.join(model, "model.onnx")
    graphs = {"int8_shipped": os.path.join(model, "model-int8.onnx"), "fp32": fp32}
    variants = {"int8_qop_rr_pt (rebuilt as shipped)": ("QOperator", False, True),
                "int8_qdq_rr_pt": ("QDQ", False, True),
                "int8_qop_rr_perchannel": ("QOperator", True, True),
                "int8_qop_8bit_pt (reduce_range off)": ("QOperator", False, False),
                "int8_qdq_8bit_perchannel": ("QDQ", True, False),
                "int8_qop_rr_pt first conv fp32": ("QOperator", False, True, 1),
                "int8_qop_rr_pt first 2 convs fp32": ("QOperator", False, True, 2)}
    for name, (fmt, pc, rr, *fc) in variants.items():
        graphs[name] = os.path.join(work, name.replace(" ", "_") + ".onnx")
        _quantize(fp32, graphs[name], calib, fmt, pc, rr, *fc)
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        graphs["fp16 (keep_io_types)"] = os.path.join(work, "fp16.onnx")
        onnx.save(convert_float_to_float16(onnx.load(fp32), keep_io_types=True), graphs["fp16 (keep_io_types)"])
    except Exception as err:  # noqa: BLE001 - a measurement: say why it is missing
        print(f"fp16: {type(err).__name__}: {err}", file=sys.stderr)
        graphs.pop("fp16 (keep_io_types)", None)
    sessions, errors = {}, {}
    for name, path in graphs.items():
        try:
            sessions[name] = _session(path)
        except Exception as err:  # noqa: BLE001
            errors[name] = f"{type(err).__name__}: {str(err)[:200]}"
    for level in ("ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_LAYOUT"):
        sessions[f"int8_shipped {level}"] = _session(graphs["int8_shipped"], level)
        sessions[f"fp32 {level}"] = _session(fp32, level)
    sessions["int8_shipped inter_op 2"] = _session(graphs["int8_shipped"], inter=2)
    x = _input()
    fns = {k: (lambda s=s: s.run(None, {"data": x})) for k, s in sessions.items()}
    out = {"cpu_ms_per_image": _cpu_interleaved(fns, runs), "errors": errors}
    base = sessions["int8_shipped"].run(None, {"data": x})
    out["max_abs_diff_vs_shipped_cls"] = {k: float(np.abs(s.run(None, {"data": x})[1] - base[1]).max())
                                         for k, s in sessions.items()}
    if val:
        out["map"] = _maps(model, {k: graphs[k] for k in graphs if k in sessions}, work, val)
    return out


def _maps(model: str, graphs: dict, work: str, val: int) -> dict:
    """VOC07 mAP of each graph through the ONNX engine's Detector (decode and NMS as ``detect``)."""
    from ssd.data.dataset import open_dataset
    from ssd.data.synthetic import generate
    from ssd.inference.evaluation import evaluate
    from ssd.inference.onnx_engine import OnnxDetector
    from ssd.inference.onnx_export import INT8_ONNX_RECORD, read_onnx_record
    from ssd.store import read_meta

    generate(os.path.join(work, "val"), num_train=1, num_val=val, seed=2026)
    ds = open_dataset(os.path.join(work, "val")).val
    meta, rec = read_meta(model), read_onnx_record(model, INT8_ONNX_RECORD)
    out = {}
    for name, path in graphs.items():
        det = OnnxDetector(_session(path), meta, rec, "int8" if "int8" in name else "fp32", "CPU (1 thread)")
        out[name] = round(evaluate(det, ds).map, 4)
    return out


MX_CODE = r"""
import json, os, sys, time, statistics
if os.environ.get("BENCH_AMX_PERM") == "1":
    # Linux (5.16+) gives a process AMX's tile state only when asked (arch_prctl ARCH_REQ_XCOMP_PERM,
    # XFEATURE_XTILEDATA); the oneDNN inside MXNet 1.9.1 does not ask, so its AMX code dies of SIGILL
    import ctypes
    rc = ctypes.CDLL(None, use_errno=True).syscall(158, 0x1023, 18)
    print("arch_prctl", rc, ctypes.get_errno(), file=sys.stderr)
sys.path.insert(0, sys.argv[1])
import numpy as np, mxnet as mx
from ssd.inference.engines import load_detector
model, runs = sys.argv[2], int(sys.argv[3])
sys.path.insert(0, os.path.join(sys.argv[1], "scripts"))
from bench_amx import _cpu_interleaved, _input
x = mx.nd.array(_input())
dets = {p: load_detector(model, "mxnet", p) for p in ("fp32", "int8")}
fns = {p: (lambda d=d: [o.asnumpy() for o in d.net(x)]) for p, d in dets.items()}
extra = {}
try:
    from mxnet.contrib import amp
    net = dets["fp32"].net
    bf = amp.convert_hybrid_block(net, target_dtype="bfloat16", ctx=mx.cpu())
    fns["bf16_amp"] = lambda: [o.asnumpy() for o in bf(x)]
    ref = [o.asnumpy() for o in net(x)]
    got = [o.astype("float32").asnumpy() for o in bf(x)]
    extra["bf16_max_abs_diff_cls"] = float(np.abs(ref[1] - got[1]).max())
except Exception as err:
    extra["bf16_amp_error"] = f"{type(err).__name__}: {str(err)[:300]}"
np.save(sys.argv[4], dets["int8"].net(x)[1].asnumpy())
if int(sys.argv[5]):
    from ssd.data.dataset import open_dataset
    from ssd.inference.evaluation import evaluate
    val = open_dataset(sys.argv[6]).val
    extra.update({f"map_{p}": round(evaluate(d, val).map, 4) for p, d in dets.items()})
print(json.dumps({"cpu_ms_per_image": _cpu_interleaved(fns, runs), **extra}))
"""


def section_mxnet(model: str, runs: int, val: int, work: str) -> dict:
    """MXNet fp32 / INT8 (and bf16 AMP) per oneDNN ISA cap, each in its own process; the ISA it ran;
    the INT8 graph's class scores against the default ISA's, and mAP on the same fresh images."""
    import numpy as np

    from ssd.data.synthetic import generate

    val_dir = os.path.join(work, "val")
    if val and not os.path.exists(os.path.join(val_dir, "dataset.json")):
        generate(val_dir, num_train=1, num_val=val, seed=2026)
    out = {}
    for cap in ("", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_AMX+perm"):
        env = dict(os.environ, OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine", ONEDNN_VERBOSE="1",
                   DNNL_VERBOSE="1")
        if cap:
            env["ONEDNN_MAX_CPU_ISA"] = env["DNNL_MAX_CPU_ISA"] = cap.split("+")[0]
            env["BENCH_AMX_PERM"] = "1" if cap.endswith("+perm") else "0"
        scores = os.path.join(work, f"mx-int8-{cap or 'default'}.npy")
        res = subprocess.run([sys.executable, "-c", MX_CODE, REPO, model, str(runs), scores, str(val), val_dir],
                             env=env, capture_output=True, text=True)
        lines = res.stdout.strip().splitlines()
        info = [ln for ln in lines if "info,cpu" in ln or "isa" in ln.lower()][:3]
        impls = sorted({",".join(ln.split(",")[3:5]) for ln in lines
                        if ln.startswith(("onednn_verbose,exec", "dnnl_verbose,exec"))})
        try:
            body = json.loads(lines[-1])
        except (IndexError, ValueError):
            body = {"error": f"exit status {res.returncode}: {res.stderr[-300:]}"}
        if os.path.exists(scores) and cap:
            body["int8_max_abs_diff_cls_vs_default"] = float(np.abs(np.load(scores) - np.load(
                os.path.join(work, "mx-int8-default.npy"))).max())
        out[cap or "default"] = {**body, "onednn_info": info, "implementations": impls[:16]}
    return out


def _prepare(work: str) -> str:
    from ssd.inference.onnx_export import ensure_onnx

    model = os.path.join(work, "tiny-pikachu")
    shutil.copytree(SHIPPED, model)
    ensure_onnx(model)
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--val", type=int, default=300)
    ap.add_argument("--sections", default="profile,qgemm,ort,mxnet")
    ap.add_argument("--json")
    ap.add_argument("--section", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.section:
        fn = {"profile": section_profile, "qgemm": section_qgemm, "ort": section_ort, "mxnet": section_mxnet}[a.section]
        args = [int(v) if v.isdigit() else v for v in a.args]
        print(json.dumps(fn(*args)))
        return 0
    from ssd.base.hardware import cpu_kind

    work = tempfile.mkdtemp(prefix="bench-amx-")
    env = dict(os.environ, OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine")
    try:
        model = _prepare(work)
        import onnxruntime

        from ssd.base.hardware import cpu_flags

        res = {"cpu": cpu_kind(),
               "flags": sorted(f for f in set(cpu_flags()) if f.startswith(("amx", "avx512_vnni", "avx512_bf16"))),
               "onnxruntime": onnxruntime.__version__, "load_before": os.getloadavg()}
        for name in a.sections.split(","):
            extra = [model, a.runs, a.val, work] if name in ("ort", "mxnet") else [model, a.runs]
            p = subprocess.run([sys.executable, __file__, "--section", name, *map(str, extra)], env=env,
                               capture_output=True, text=True)
            if p.returncode:
                res[name] = {"error": p.stderr[-1500:]}
            else:
                res[name] = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"--- {name}\n{json.dumps(res[name], indent=1)}", flush=True)
        res["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    print(json.dumps({k: res[k] for k in ("cpu", "flags", "onnxruntime", "load_before", "load_after")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
