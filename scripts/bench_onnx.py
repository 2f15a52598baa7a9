#!/usr/bin/env python
"""MXNet against ONNX Runtime, fp32 and INT8, beside the tutorials' naive loop, in one run.

Run: ``.venv/bin/python scripts/bench_onnx.py [--folder 640] [--rounds 2] [--runs 50] [--val 300] [--json OUT]``.

The shipped ``models/tiny-pikachu`` (copied; its INT8 graphs are made first if the copy lacks
them). Every figure is a ratio against the naive loop measured in the same run:

1. **forward**: TinySSD at 256, batch 1 and batch 8 (per image), the tensors read back: the
   tutorials' imperative net (their forward), MXNet's fused fp32 and INT8 graphs, ONNX
   Runtime's fp32 and INT8 graphs; then the Detector's call (forward + decode + NMS) of each
   engine and precision. All timed in rotation in one process under ``NaiveEngine`` (what
   ``detect`` runs), median of ``--runs``.
2. **folder**: ``--folder`` generated 1920×1080 JPEGs, whole processes (start-up, imports and
   model load included): the tutorials' naive loop (full decode with ``mx.image.imread``, resize,
   imperative batch-1 forward, ``MultiBoxDetection``, one image at a time) and ``python -m ssd
   detect`` with ``--engine mxnet|onnxruntime --precision fp32|int8`` and ``--engine auto``; the
   contenders in rotation, ``--rounds`` rounds, best wall time of each.
3. **accuracy**: VOC07 mAP of the four engine × precision pairs on ``--val`` freshly generated
   synthetic images (a seed the model never saw).
4. **budget**: the CPU milliseconds each stage of a folder run costs per image on one thread
   (``OMP_NUM_THREADS=1``, CPU time, on the folder's first 64 images): reading and JPEG decoding
   at libjpeg's reduced scale, resizing to the network's square, each engine's batch-8 forward,
   decoding + NMS at the results floor, the results entry. Their sum bounds any scheduling: the
   machine's cores divided by it is the most images per second a run can reach, printed beside
   the ratio to the naive loop that bound allows. The folder figure also gives each contender's
   CPU seconds, so how many cores it kept busy.

Name the machine with the figures: the script prints the CPU kind read from /proc/cpuinfo.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)
import ssd  # noqa: E402,F401  (sets OMP_NUM_THREADS before any section imports MXNet)
from bench_precision import NAIVE_LOOP, _interleaved_ms, _make_folder, emit  # noqa: E402

SHIPPED = os.path.join(REPO, "models", "tiny-pikachu")
PAIRS = (("mxnet", "fp32"), ("mxnet", "int8"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"))


def section_forward(model: str, runs: int) -> dict:
    """Batch-1 and batch-8 forwards of each engine × precision, and each Detector call."""
    import mxnet as mx
    import numpy as np

    from ssd.data.preprocess import normalize_batch
    from ssd.inference.engines import load_detector
    from ssd.store import load_model

    dets = {f"{e}_{p}": load_detector(model, e, p) for e, p in PAIRS}
    out = {"devices": {k: d.describe() for k, d in dets.items()}}
    tutorials, _ = load_model(model)                              # the tutorials' imperative forward
    for batch in (1, 8):
        pixels = np.random.default_rng(0).integers(0, 255, (batch, 256, 256, 3), dtype=np.uint8)
        x = normalize_batch(pixels)
        xm = mx.nd.array(x)
        fns = {"tutorials_imperative": lambda: [o.asnumpy() for o in tutorials(xm)]}
        for k, d in dets.items():
            if d.engine == "mxnet":
                fns[k] = lambda d=d: [o.asnumpy() for o in d.net(xm)]
            else:
                fns[k] = lambda d=d: d.net.run(None, {"data": x})
            fns[f"{k}_detector"] = lambda d=d: d.predict_arrays(pixels)
        ms = _interleaved_ms(fns, runs)
        out.update({f"{k}_b{batch}_ms": v / batch for k, v in ms.items()})
    return out


def section_accuracy(model: str, val_dir: str) -> dict:
    from ssd.data.dataset import open_dataset
    from ssd.inference.engines import load_detector
    from ssd.inference.evaluation import evaluate

    val = open_dataset(val_dir).val
    return {f"map_{e}_{p}": round(evaluate(load_detector(model, e, p), val).map, 4) for e, p in PAIRS} | \
        {"val_images": len(val)}


def _cpu_ms(fn, images: int, rounds: int = 3) -> float:
    """Least CPU milliseconds per image of ``fn()`` (which handles ``images`` images) over ``rounds``."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        fn()
        best = min(best, (time.process_time() - t) * 1000 / images)
    return best


def section_budget(model: str, folder: str, count: int) -> dict:
    """CPU ms per image of each stage of a folder run, one thread (the caller sets OMP_NUM_THREADS=1)."""
    import glob

    import numpy as np

    from ssd.camtrap.megadetector import image_entry
    from ssd.data.images import load_image, resize_for_network
    from ssd.inference.detector import RawDetections
    from ssd.inference.engines import load_detector
    from ssd.inference.thresholds import DEFAULT_NMS, RESULTS_FLOOR

    files = sorted(glob.glob(os.path.join(folder, "*.jpg")))[:count]
    dets = {f"{e}_{p}": load_detector(model, e, p) for e, p in PAIRS}
    size = int(dets["onnxruntime_int8"].input_size)
    loaded = [load_image(f, os.path.basename(f), draft_to=size) for f in files]
    out = {"images": len(files), "decoded_at": list(loaded[0].image.size), "threads": os.environ.get("OMP_NUM_THREADS")}
    out["decode_ms"] = _cpu_ms(lambda: [load_image(f, os.path.basename(f), draft_to=size) for f in files], len(files))
    out["resize_ms"] = _cpu_ms(lambda: [resize_for_network(li.image, size) for li in loaded], len(files))
    pixels = np.stack([resize_for_network(li.image, size) for li in loaded])
    batches = [pixels[i:i + 8] for i in range(0, len(pixels), 8)]
    for k, d in dets.items():
        out[f"{k}_forward_ms"] = _cpu_ms(lambda d=d: [d._forward_raw(b) for b in batches], len(files))
    ort = dets["onnxruntime_int8"]
    raws = [ort._forward_raw(b) for b in batches]
    decode = ort._array_decode
    out["nms_ms"] = _cpu_ms(lambda: [decode(r, ort.meta, RESULTS_FLOOR, DEFAULT_NMS) for r in raws], len(files))
    found = [RawDetections(i, s, b * np.float32(1000), (1920, 1080), ort.classes)
             for r in raws for i, s, b in decode(r, ort.meta, RESULTS_FLOOR, DEFAULT_NMS)]
    out["entry_ms"] = _cpu_ms(lambda: [image_entry("f.jpg", raw) for raw in found], len(files))
    return out


def _detect_argv(model: str, folder: str, engine: str, precision: str) -> list:
    return [sys.executable, "-m", "ssd", "detect", "--model", model, "--engine", engine, "--precision", precision,
            "--quiet", folder]


def section_folder(model: str, folder: str, rounds: int) -> dict:
    """Best whole-process wall time of each contender over ``rounds`` rotations."""
    n = len([f for f in os.listdir(folder) if f.endswith(".jpg")])
    env = {k: v for k, v in os.environ.items() if k != "MXNET_ENGINE_TYPE"}
    runs = {"naive": [sys.executable, "-c", NAIVE_LOOP, REPO, model, folder]}
    runs.update({f"{e}_{p}": _detect_argv(model, folder, e, p) for e, p in PAIRS})
    runs["auto"] = _detect_argv(model, folder, "auto", "auto")
    times, cpu = {k: [] for k in runs}, {k: [] for k in runs}
    for _ in range(rounds):
        for k, argv in runs.items():
            t, c = time.perf_counter(), _children_cpu_s()
            subprocess.run(argv, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[k].append(round(time.perf_counter() - t, 2))
            cpu[k].append(round(_children_cpu_s() - c, 2))
    out = {"images": n, "rounds_s": times, "rounds_cpu_s": cpu}
    for k, ts in times.items():
        best = ts.index(min(ts))
        out[f"{k}_img_s"] = n / ts[best]
        out[f"{k}_ratio"] = min(times["naive"]) / ts[best]
        out[f"{k}_cores"] = cpu[k][best] / ts[best]
    return out


def _children_cpu_s() -> float:
    import resource

    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _section(name: str, *args, threads: str = "") -> dict:
    env = dict(os.environ, MXNET_ENGINE_TYPE="NaiveEngine")
    if threads:
        env["OMP_NUM_THREADS"] = threads
    res = subprocess.run([sys.executable, __file__, "--section", name, *map(str, args)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _prepare_model(work: str) -> str:
    """A copy of the shipped model with both engines' INT8 graphs (made if absent)."""
    model = os.path.join(work, "tiny-pikachu")
    shutil.copytree(SHIPPED, model)
    if not (os.path.exists(os.path.join(model, "int8.json")) and os.path.exists(os.path.join(model, "onnx-int8.json"))):
        subprocess.run([sys.executable, "-m", "ssd", "quantize", "--model", model], check=True, cwd=REPO)
    return model


def table(r: dict) -> str:
    f, fo = r["forward"], r["folder"]
    base = f["tutorials_imperative_b1_ms"]
    lines = [f"CPU: {r['cpu']}; load average before/after {r['load_before'][0]:.1f}/{r['load_after'][0]:.1f}",
             "| measure | result | vs the naive loop |", "| --- | ---: | ---: |",
             f"| TinySSD 256 batch 1, the tutorials' imperative net | {base:.1f} ms | 1.00× |"]
    for e, p in PAIRS:
        k = f"{e}_{p}"
        lines.append(f"| TinySSD 256 batch 1, {e} {p} (forward) | {f[k + '_b1_ms']:.1f} ms | "
                     f"{base / f[k + '_b1_ms']:.2f}× |")
    for e, p in PAIRS:
        k = f"{e}_{p}_detector"
        lines.append(f"| Detector call batch 1 / batch 8 per image, {e} {p} | {f[k + '_b1_ms']:.1f} / "
                     f"{f[k + '_b8_ms']:.1f} ms | |")
    lines.append(f"| folder of {fo['images']} 1920×1080 JPEGs, whole process, the naive loop "
                 f"({fo['naive_cores']:.2f} cores busy) | {fo['naive_img_s']:.1f} img/s | 1.00× |")
    for k in [f"{e}_{p}" for e, p in PAIRS] + ["auto"]:
        lines.append(f"| same, `detect` {k.replace('_', ' ')} ({fo[k + '_cores']:.2f} cores busy) | "
                     f"{fo[k + '_img_s']:.1f} img/s | {fo[k + '_ratio']:.2f}× |")
    if "budget" in r:
        lines += budget_lines(r["budget"], r["cores"], fo["naive_img_s"])
    if "accuracy" in r:
        a = r["accuracy"]
        lines.append(f"| VOC07 mAP on {a['val_images']} fresh images | " +
                     ", ".join(f"{e} {p} {a[f'map_{e}_{p}']:.4f}" for e, p in PAIRS) + " | |")
    return "\n".join(lines)


def budget_lines(b: dict, cores: int, naive_img_s: float) -> list:
    """The one-thread CPU cost of each stage, and the ceiling their sum sets on ``cores`` cores."""
    w, h = b["decoded_at"]
    lines = [f"| CPU per image, one thread: read + JPEG decode (at {w}×{h}) | {b['decode_ms']:.2f} ms | |",
             f"| CPU per image, one thread: resize to the network's square | {b['resize_ms']:.2f} ms | |"]
    lines += [f"| CPU per image, one thread: {e} {p} forward, batch 8 | {b[f'{e}_{p}_forward_ms']:.2f} ms | |"
              for e, p in PAIRS]
    lines += [f"| CPU per image, one thread: decoding + NMS at the results floor | {b['nms_ms']:.2f} ms | |",
              f"| CPU per image, one thread: the results entry | {b['entry_ms']:.2f} ms | |"]
    for p in ("fp32", "int8"):
        total = b["decode_ms"] + b["resize_ms"] + b[f"onnxruntime_{p}_forward_ms"] + b["nms_ms"] + b["entry_ms"]
        ceiling = cores * 1000 / total
        lines.append(f"| ceiling of a folder run on {cores} cores, onnxruntime {p} ({total:.1f} CPU ms per image) | "
                     f"{ceiling:.0f} img/s | {ceiling / naive_img_s:.2f}× |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--folder", type=int, default=640, help="1920×1080 JPEGs for the folder figure")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--val", type=int, default=300, help="fresh synthetic images for the mAP comparison (0: skip)")
    ap.add_argument("--json", help="write all figures here")
    ap.add_argument("--section", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.section:
        fn = {"forward": section_forward, "accuracy": section_accuracy, "budget": section_budget}[a.section]
        print(json.dumps(fn(a.args[0], *[int(v) if v.isdigit() else v for v in a.args[1:]])))
        return 0
    from ssd.base.hardware import cpu_kind

    work = tempfile.mkdtemp(prefix="bench-onnx-")
    try:
        model = _prepare_model(work)
        res = {"cpu": cpu_kind(), "python": sys.version.split()[0], "load_before": os.getloadavg()}
        res["forward"] = _section("forward", model, a.runs)
        if a.val:
            from ssd.data.synthetic import generate

            generate(os.path.join(work, "val"), num_train=1, num_val=a.val, seed=2026)
            res["accuracy"] = _section("accuracy", model, os.path.join(work, "val"))
        folder = os.path.join(work, "frames")
        _make_folder(folder, a.folder)
        res["folder"] = section_folder(model, folder, a.rounds)
        res["budget"] = _section("budget", model, folder, 64, threads="1")
        res["cores"] = os.cpu_count()
        res["load_after"] = os.getloadavg()   # other work on the machine: ratios hold better than times
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return emit(table(res), res, a.json)


if __name__ == "__main__":
    raise SystemExit(main())
