#!/usr/bin/env python
"""ONNX Runtime on a GPU against the same graph on the CPU: agreement and speed, in one run.

Run where ``onnxruntime-gpu`` is installed (requirements-gpu.txt, then ``source scripts/gpu_env.sh``);
MXNet is not needed::

    python scripts/bench_gpu.py --model DIR [--images 64] [--folder 640] [--rounds 2] [--md OUT.md]

``DIR`` is a model folder whose fp32 ONNX graph already exists: ``python -m ssd export --model M
--format onnx --out DIR`` writes one (that needs MXNet, so do it on any machine and copy the folder),
and a model folder gets one on its first use by the ONNX Runtime engine.

1. **device**: the providers ONNX Runtime offers, the card, and where a session really starts.
2. **agreement**: the graph's raw outputs on ``--images`` generated images, CUDA provider against
   CPU provider (largest differences), and the detections after the same numpy decoder.
3. **forward**: the Detector's call (forward + decode + NMS), batch 1 and batch 8, ms per image.
4. **folder**: ``python -m ssd detect --engine onnxruntime`` as whole processes on ``--folder``
   generated 1920×1080 JPEGs: fp32 on the GPU, fp32 and (where the model has it) INT8 on the CPU
   (``SSD_FORCE_CPU=1``), in rotation, best of ``--rounds``.

Prints a Markdown table that names the card and the CPU (for docs/GPU.md).
"""
from __future__ import annotations

import argparse
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
from bench_precision import _interleaved_ms, _make_folder  # noqa: E402


def section_agreement(model: str, images: int) -> dict:
    import numpy as np

    from ssd.data.synthetic import render_example
    from ssd.inference.onnx_engine import load_onnx
    from ssd.inference.thresholds import EVAL_FLOOR

    gpu, cpu = load_onnx(model, "fp32", prefer_gpu=True), load_onnx(model, "fp32", prefer_gpu=False)
    out = {"gpu_device": gpu.device, "gpu_note": gpu.device_note, "cpu_device": cpu.device}
    from PIL import Image

    size = int(cpu.input_size)
    pixels = np.stack([np.asarray(Image.fromarray(render_example(seed=5, index=i, split="val")[0]).resize((size, size)))
                       for i in range(images)])
    worst = 0.0
    for start in range(0, images, 8):
        for a, b in zip(gpu._forward_raw(pixels[start:start + 8]), cpu._forward_raw(pixels[start:start + 8])):
            worst = max(worst, float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max()))
    dg = gpu.predict_arrays(pixels, floor=EVAL_FLOOR)
    dc = cpu.predict_arrays(pixels, floor=EVAL_FLOOR)
    same = sum(len(g[0]) == len(c[0]) and np.array_equal(g[0], c[0]) and np.allclose(g[1], c[1], atol=1e-4)
               and np.allclose(g[2], c[2], atol=1e-3) for g, c in zip(dg, dc))
    out.update(raw_max_abs_diff=worst, images=images, images_identical_within_tolerance=int(same),
               detections_gpu=int(sum(len(g[0]) for g in dg)), detections_cpu=int(sum(len(c[0]) for c in dc)))
    for batch in (1, 8):
        x = pixels[:batch]
        ms = _interleaved_ms({"gpu": lambda: gpu.predict_arrays(x), "cpu": lambda: cpu.predict_arrays(x)}, 30)
        out.update({f"{k}_b{batch}_ms": v / batch for k, v in ms.items()})
    return out


def section_folder(model: str, folder: str, rounds: int) -> dict:
    n = len([f for f in os.listdir(folder) if f.endswith(".jpg")])
    base = [sys.executable, "-m", "ssd", "detect", "--model", model, "--engine", "onnxruntime", "--quiet", folder]
    runs = {"gpu_fp32": (base + ["--precision", "fp32"], {}),
            "cpu_fp32": (base + ["--precision", "fp32"], {"SSD_FORCE_CPU": "1"})}
    if os.path.exists(os.path.join(model, "onnx-int8.json")):
        runs["cpu_int8"] = (base + ["--precision", "int8"], {"SSD_FORCE_CPU": "1"})
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for k, (argv, extra) in runs.items():
            t = time.perf_counter()
            subprocess.run(argv, check=True, cwd=REPO, env=dict(os.environ, **extra),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[k].append(round(time.perf_counter() - t, 2))
    return {"images": n, "rounds_s": times, **{f"{k}_img_s": n / min(v) for k, v in times.items()}}


def card() -> str:
    try:
        res = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        return res.stdout.strip().replace("\n", "; ") or "no GPU listed by nvidia-smi"
    except (OSError, subprocess.SubprocessError):
        return "nvidia-smi not available"


def table(r: dict) -> str:
    a, f = r["agreement"], r.get("folder")
    lines = [f"GPU: {r['card']}; CPU: {r['cpu']}; onnxruntime {r['onnxruntime']} (providers: {r['providers']})",
             f"Session on: {a['gpu_device']}" + (f" — {a['gpu_note']}" if a["gpu_note"] else ""),
             "" if a["gpu_device"].startswith("GPU") else "**No GPU session: both columns ran on the CPU.**", "",
             "| measure | GPU (CUDA provider) | CPU |", "| --- | ---: | ---: |",
             f"| Detector call, batch 1, ms per image | {a['gpu_b1_ms']:.2f} | {a['cpu_b1_ms']:.2f} |",
             f"| Detector call, batch 8, ms per image | {a['gpu_b8_ms']:.2f} | {a['cpu_b8_ms']:.2f} |",
             f"| detections on {a['images']} images (floor 0.01) | {a['detections_gpu']} | {a['detections_cpu']} |",
             f"| images whose detections agree (boxes 1e-3, scores 1e-4) | {a['images_identical_within_tolerance']} "
             f"of {a['images']} | |",
             f"| largest raw-output difference | {a['raw_max_abs_diff']:.2e} | |"]
    if f:
        lines.append(f"| folder of {f['images']} 1920×1080 JPEGs, `detect` fp32, img/s | {f['gpu_fp32_img_s']:.1f} | "
                     f"{f['cpu_fp32_img_s']:.1f} |")
        if "cpu_int8_img_s" in f:
            lines.append(f"| same, INT8 on the CPU, img/s | | {f['cpu_int8_img_s']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model folder with its fp32 ONNX graph")
    ap.add_argument("--images", type=int, default=64, help="generated images for the agreement check")
    ap.add_argument("--folder", type=int, default=640, help="1920×1080 JPEGs for the folder figure (0: skip)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--md", help="also write the table here")
    a = ap.parse_args()
    import onnxruntime as ort

    from ssd.base.hardware import cpu_kind

    res = {"card": card(), "cpu": cpu_kind(), "onnxruntime": ort.__version__,
           "providers": ", ".join(ort.get_available_providers()),
           "agreement": section_agreement(a.model, a.images)}
    if a.folder:
        work = tempfile.mkdtemp(prefix="bench-gpu-")
        try:
            _make_folder(os.path.join(work, "frames"), a.folder)
            res["folder"] = section_folder(a.model, os.path.join(work, "frames"), a.rounds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    text = table(res)
    print(text)
    if a.md:
        with open(a.md, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
