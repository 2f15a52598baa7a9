#!/usr/bin/env python
"""Inference speed by precision and engine, measured side by side in one run.

Run: ``.venv/bin/python scripts/bench_precision.py [--runs 50] [--val 500] [--folder 150] [--json OUT]``.

Every figure is a ratio against a baseline measured in the same run, each section in its own
process so that MXNet's engine (read once, at import) can differ:

1. **forward**: TinySSD at 256, batch 1 and batch 8, the shipped model's weights: the
   tutorials' imperative net (an ``nn.Block`` forward, as the tutorials run it), the hybridized net, the
   oneDNN-fused fp32 graph and the stored INT8 graph; under MXNet's default threaded engine
   and under ``NaiveEngine`` (what ``python -m ssd detect|eval`` now runs).
2. **accuracy**: VOC07 mAP of fp32 and INT8 on ``--val`` freshly generated synthetic images,
   and how often the top boxes agree (same class, IoU ≥ 0.9).
3. **folder**: ``--folder`` 1920×1080 JPEGs, whole process (start-up included): the
   tutorials' naive loop (``mx.image.imread`` full decode, ``imresize``, imperative forward,
   ``MultiBoxDetection``, one image at a time) against ``python -m ssd detect`` at fp32 and int8.
4. **zoo**: ssd_512_mobilenet1.0 at 512, batch 1 (random weights, no download): the live net
   with its in-graph NMS against the fused fp32 and INT8 graphs with NMS after the graph.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Optional
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import ssd  # noqa: E402,F401  (sets OMP_NUM_THREADS before any section imports MXNet)
SHIPPED = os.path.join(REPO, "models", "tiny-pikachu")


def _interleaved_ms(fns: dict, runs: int, warmup: int = 5, clock=time.perf_counter, per: int = 1) -> dict:
    """Median ms of each function (divided by ``per``: images a call), timed in rotation so that a
    change in the machine's load (other processes on a shared machine) hits every contender alike.
    ``clock``: wall time by default, ``time.process_time`` for CPU time."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t = clock()
            fn()
            times[k].append((clock() - t) * 1000 / per)
    return {k: statistics.median(v) for k, v in times.items()}


def section_forward(model: str, runs: int) -> dict:
    """Batch-1 and batch-8 forward (outputs read back) of each way to run the same weights."""
    import mxnet as mx

    from ssd.inference.precision import prepare
    from ssd.store import load_model

    out = {}
    for batch in (1, 8):
        x = mx.nd.random.uniform(shape=(batch, 3, 256, 256))
        imperative, _ = load_model(model)                       # the tutorials: an imperative forward
        hybrid, _ = load_model(model)
        hybrid.hybridize(static_alloc=True, static_shape=True)
        p32, p8 = prepare(model, "fp32")[0], prepare(model, "int8")[0]
        nets = {"imperative": imperative, "hybridized": hybrid, "fp32": p32.net, "int8": p8.net}
        fns = {k: (lambda n=n: [o.asnumpy() for o in n(x)]) for k, n in nets.items()}
        # what the Detector pays per call: forward + MultiBoxDetection + copy to numpy
        fns.update({f"{p.precision}_decoded": (lambda p=p: p.decoder(p.net, x, 0.45, 0.01)) for p in (p32, p8)})
        ms = _interleaved_ms(fns, runs)
        out.update({f"{k}_b{batch}_ms": v / batch for k, v in ms.items()})
    return out


def section_accuracy(model: str, val_dir: str) -> dict:
    """mAP of both precisions on the same fresh images, and top-box agreement."""
    from ssd.base.boxes import box_iou
    from ssd.data.dataset import open_dataset
    from ssd.data.preprocess import resize
    from ssd.inference.detector import Detector
    from ssd.inference.evaluation import evaluate

    val = open_dataset(val_dir).val
    dets = {p: Detector.load(model, precision=p) for p in ("fp32", "int8")}
    res = {f"map_{p}": evaluate(d, val).map for p, d in dets.items()}
    agree = n = 0
    for start in range(0, len(val), 16):
        batch = [resize(val[i][0], 256) for i in range(start, min(len(val), start + 16))]
        import numpy as np
        a, b = (dets[p].predict_arrays(np.stack(batch)) for p in ("fp32", "int8"))
        for (ia, sa, ba), (ib, sb, bb) in zip(a, b):
            n += 1
            if len(sa) and len(sb) and ia[0] == ib[0] and box_iou(ba[:1], bb[:1])[0, 0] >= 0.9:
                agree += 1
    res.update(images=len(val), top_box_agree=agree / max(n, 1))
    return res


NAIVE_LOOP = r"""
import sys, time, glob
sys.path.insert(0, sys.argv[1])
import ssd, numpy as np, mxnet as mx
from mxnet import contrib, image, nd
from ssd.store import load_model
net, meta = load_model(sys.argv[2])          # imperative, as the tutorials run it
mean = nd.array(meta["normalize"]["mean"]).reshape((1, 3, 1, 1)) * 255
std = nd.array(meta["normalize"]["std"]).reshape((1, 3, 1, 1)) * 255
found = 0
for path in sorted(glob.glob(sys.argv[3] + "/*.jpg")):
    X = image.imread(path)
    h, w = X.shape[:2]
    x = image.imresize(X, 256, 256).astype("float32").transpose((2, 0, 1)).expand_dims(axis=0)
    anchors, cls_preds, bbox_preds = net((x - mean) / std)
    out = contrib.nd.MultiBoxDetection(cls_preds.softmax().transpose((0, 2, 1)), bbox_preds, anchors,
                                       nms_threshold=0.45).asnumpy()[0]
    found += int((out[:, 1] >= 0.5).sum())
print(found)
"""


def section_folder(model: str, folder: str, batch: int) -> dict:
    """Whole-process seconds over the folder: the tutorials' naive loop and ``python -m ssd detect``."""
    import glob

    files = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    env = {k: v for k, v in os.environ.items() if k != "MXNET_ENGINE_TYPE"}
    out = {"images": len(files)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", NAIVE_LOOP, REPO, model, folder], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    out["naive_s"] = time.perf_counter() - t
    for p in ("fp32", "int8"):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", model, "--precision", p,
                        "--batch-size", str(batch), *files], check=True, cwd=REPO, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out[f"detect_{p}_s"] = time.perf_counter() - t
    for k in ("naive", "detect_fp32", "detect_int8"):
        out[f"{k}_img_s"] = len(files) / out[f"{k}_s"]
    return out


def section_zoo(work: str, synth: str, runs: int) -> dict:
    """ssd_512_mobilenet1.0 at 512, batch 1: live (NMS in graph) vs fused fp32 vs INT8, NMS after."""
    import mxnet as mx  # noqa: F401 - loads MXNet after ssd set its threads
    import numpy as np

    from ssd.inference.detector import Detector
    from ssd.inference.quantize import quantize_model
    from ssd.models.gluoncv.recipe import new_zoo_model
    from ssd.store import load_model, save_model

    path = os.path.join(work, "zoo")
    net, meta = new_zoo_model("ssd_512_mobilenet1.0", ["pikachu"])
    save_model(path, net, meta)
    quantize_model(path, data=synth, eval_images=0)
    img = np.zeros((1, 512, 512, 3), np.uint8)
    img[:] = np.random.default_rng(0).integers(0, 255, img.shape, dtype=np.uint8)
    live = Detector(*load_model(path))
    dets = {"live": live, "fp32": Detector.load(path, precision="fp32"), "int8": Detector.load(path, precision="int8")}
    ms = _interleaved_ms({k: (lambda d=d: d.predict_arrays(img)) for k, d in dets.items()}, runs, warmup=3)
    return {f"{k}_ms": v for k, v in ms.items()}


def _section(name: str, engine: str, *args) -> dict:
    """Run one section in a fresh process with ``engine``; its JSON result."""
    env = dict(os.environ)
    env.pop("MXNET_ENGINE_TYPE", None)
    if engine:
        env["MXNET_ENGINE_TYPE"] = engine
    res = subprocess.run([sys.executable, __file__, "--section", name, *map(str, args)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def emit(text: str, res: dict, json_path: Optional[str]) -> int:
    """Print a benchmark's table and keep all its figures as JSON where asked (every script's end)."""
    print(text)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    return 0


def _make_folder(folder: str, n: int) -> None:
    """1920×1080 camera-like JPEGs: a synthetic scene stretched, with sensor noise (decodes like a photo)."""
    import numpy as np
    from PIL import Image

    from ssd.data.synthetic import render_example

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = Image.fromarray(render_example(seed=77, index=i % 40, split="val")[0]).resize((1920, 1080))
        arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 13, (1080, 1920, 3), dtype=np.int16)
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(os.path.join(folder, f"frame{i:04d}.jpg"), quality=90)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--val", type=int, default=500, help="fresh synthetic images for the mAP comparison")
    ap.add_argument("--folder", type=int, default=150, help="1920×1080 JPEGs for the folder figure")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the forward sections")
    ap.add_argument("--only", help="comma-separated sections to run: forward,accuracy,folder,zoo (default all)")
    ap.add_argument("--json")
    ap.add_argument("--section", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.section:
        fn = {"forward": section_forward, "accuracy": section_accuracy, "folder": section_folder,
              "zoo": section_zoo}[a.section]
        conv = [int(x) if x.isdigit() else x for x in a.args]
        print(json.dumps(fn(*conv)))
        return 0

    from ssd.data.synthetic import generate
    from ssd.inference.quantize import quantize_model

    res = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                      f"Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory() as tmp:
        synth = os.path.join(tmp, "calib")
        generate(synth, num_train=16, num_val=max(a.val, 1), seed=4242)   # fresh: not the model's data
        model = os.path.join(tmp, "tiny-pikachu")
        shutil.copytree(SHIPPED, model, ignore=shutil.ignore_patterns("int8*"))
        print("quantizing the shipped model …", file=sys.stderr)
        res["quantize"] = quantize_model(model, data=synth, eval_images=0)["build_s"]
        only = set((a.only or "forward,accuracy,folder,zoo").split(","))
        if "forward" in only:
            print("forward passes …", file=sys.stderr)
            # the engines need separate processes; alternate them and keep each figure's best of
            # the rounds, so a burst of load from other processes does not decide the comparison
            for key, engine in [("forward_threaded", ""), ("forward_naive", "NaiveEngine")] * a.rounds:
                got = _section("forward", engine, model, a.runs)
                res[key] = {k: min(v, res.get(key, {}).get(k, v)) for k, v in got.items()}
        if "accuracy" in only:
            print("accuracy …", file=sys.stderr)
            res["accuracy"] = _section("accuracy", "NaiveEngine", model, synth)
        if "folder" in only:
            print("folder …", file=sys.stderr)
            folder = os.path.join(tmp, "frames")
            _make_folder(folder, a.folder)
            res["folder"] = _section("folder", "", model, folder, a.batch_size)
        if "zoo" in only:
            print("zoo …", file=sys.stderr)
            res["zoo"] = _section("zoo", "NaiveEngine", tmp, synth, max(5, a.runs // 5))
    return emit(table(res), res, a.json)


def table(r: dict) -> str:
    """The README table: every figure with its ratio to the baseline of the same run."""
    rows = [f"Machine: {r['machine']}", "", "| measure | result | ratio | target |", "| --- | --- | --- | --- |"]
    if "forward_naive" in r:
        fn, ft = r["forward_naive"], r["forward_threaded"]
        base = ft["imperative_b1_ms"]
        for label, d in (("threaded engine", ft), ("NaiveEngine", fn)):
            for k, name in (("imperative", "the tutorials' imperative net"), ("hybridized", "hybridized"),
                            ("fp32", "fp32 oneDNN-fused"), ("int8", "INT8")):
                tgt = {"int8": "≤ 10 ms, ≥ 3×", "fp32": "≤ 18 ms"}.get(k, "") if label == "NaiveEngine" else ""
                rows.append(f"| TinySSD 256 batch 1, {name}, {label} | {d[k + '_b1_ms']:.1f} ms | "
                            f"{base / d[k + '_b1_ms']:.2f}× | {tgt} |")
        for k in ("fp32", "int8"):
            rows.append(f"| TinySSD 256 batch 1, {k} forward + decode (the Detector's call) | "
                        f"{ft[k + '_decoded_b1_ms']:.1f} ms threaded, {fn[k + '_decoded_b1_ms']:.1f} ms NaiveEngine | "
                        f"{ft[k + '_decoded_b1_ms'] / fn[k + '_decoded_b1_ms']:.2f}× (engine) | |")
        for k in ("fp32", "int8"):
            rows.append(f"| TinySSD 256 batch 8, {k}, NaiveEngine | {fn[k + '_b8_ms']:.1f} ms/image | "
                        f"{base / fn[k + '_b8_ms']:.2f}× | |")
    if "accuracy" in r:
        acc = r["accuracy"]
        rows.append(f"| VOC07 mAP on {acc['images']} fresh synthetic images, fp32 / INT8 | {acc['map_fp32']:.4f} / "
                    f"{acc['map_int8']:.4f} | Δ {acc['map_int8'] - acc['map_fp32']:+.4f} | within 0.01 |")
        rows.append(f"| top box agrees (class, IoU ≥ 0.9), INT8 vs fp32 | {100 * acc['top_box_agree']:.0f} % | | |")
    if "folder" in r:
        fo = r["folder"]
        rows.append(f"| folder of {fo['images']} 1920×1080 JPEGs, whole process, the tutorials' naive loop | "
                    f"{fo['naive_img_s']:.1f} img/s | 1× | |")
        for k, tgt in (("fp32", "≥ 2.5×"), ("int8", "≥ 4×")):
            rows.append(f"| same, `python -m ssd detect --precision {k}` | {fo[f'detect_{k}_img_s']:.1f} img/s | "
                        f"{fo[f'detect_{k}_img_s'] / fo['naive_img_s']:.2f}× | {tgt} |")
    if "zoo" in r:
        zoo = r["zoo"]
        rows.append(f"| ssd_512_mobilenet1.0 at 512 batch 1, live (NMS in graph) | {zoo['live_ms']:.0f} ms | 1× | |")
        rows.append(f"| same, fp32 oneDNN, NMS after the graph | {zoo['fp32_ms']:.0f} ms | "
                    f"{zoo['live_ms'] / zoo['fp32_ms']:.2f}× | |")
        rows.append(f"| same, INT8, NMS after the graph | {zoo['int8_ms']:.0f} ms | "
                    f"{zoo['live_ms'] / zoo['int8_ms']:.2f}× | ≤ 70 ms |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
