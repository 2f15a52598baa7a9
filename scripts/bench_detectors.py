#!/usr/bin/env python
"""CPU latency per image of the real-world detectors, side by side in one run, fp32 and INT8, on MXNet
and on ONNX Runtime.

Run: ``OMP_NUM_THREADS=<cores> .venv/bin/python scripts/bench_detectors.py [--rounds 3] [--repeat 8]``.

Contenders (COCO's 80 classes, native input size, batch 1): torchvision's SSD300-VGG16 and
SSDlite320-MobileNetV3-Large as converted (torchvision's per-class post-processing), and GluonCV's
ssd_512_mobilenet1.0, ssd_300_vgg16_atrous and ssd_512_resnet50_v1. Each is a model folder made here
with random weights (nothing is downloaded; the forward's speed does not depend on the weights, the
per-class decoding's follows the number of scores above the floor: SSDlite's class head is set as
``bench_ssdlite.random_coco_ssdlite`` says) and loaded the way the app and the CLI load it:
``Detector.load(precision="fp32")`` (the oneDNN-fused graph) and an INT8 graph made by the same
``build_int8`` as ``python -m ssd quantize`` (calibrated on 8 synthetic pictures). One timing is
``Detector.predict_arrays`` on one picture at the network size: normalization, forward, decoding
and NMS. Contenders run in rotation, ``--rounds`` times ``--repeat`` timings each after a warm-up;
the median of each round is kept and the best round reported (other work on a shared machine only
ever slows a round down). The CPU kind is read from /proc/cpuinfo and printed with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GLUONCV = ("ssd_512_mobilenet1.0", "ssd_300_vgg16_atrous", "ssd_512_resnet50_v1")


def cpu_kind() -> str:
    """"AMD EPYC Zen 4 (AVX-512, VNNI, BF16)" and the like, from /proc/cpuinfo."""
    from ssd.base.device import cpu_flags

    info = open("/proc/cpuinfo").read().split("\n\n")[0]
    field = {k.strip(): v for k, v in (line.split(":", 1) for line in info.splitlines() if ":" in line)}
    name = field.get("model name", "?").strip()
    fam, model = field.get("cpu family", "").strip(), field.get("model", "").strip()
    zen = {("25", "17"): "Zen 4", ("25", "1"): "Zen 3"}.get((fam, model)) or (
        f"Zen 5 (family {fam} model {model})" if fam == "26" else f"family {fam} model {model}")
    flags = set(cpu_flags())
    isa = ", ".join(f for f, k in (("AVX-512", "avx512f"), ("VNNI", "avx512_vnni"), ("BF16", "avx512_bf16"),
                                   ("AVX2", "avx2")) if k in flags)
    return f"{name} {zen} ({isa}), {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"


def make_folders(root: str):
    """name → model folder, each saved as the store saves models."""
    from ssd.models.gluoncv.from_torchvision import new_converted_net
    from ssd.models.gluoncv.recipe import new_zoo_model
    from ssd.models.pretrained import dataset_classes
    from ssd.store import save_model

    from bench_ssdlite import random_coco_ssdlite

    out = {}
    net, meta = new_converted_net()
    out["ssd300_vgg16 (torchvision, converted)"] = (net, meta)
    out["ssdlite320_mobilenet_v3_large (torchvision, converted)"] = random_coco_ssdlite()
    for arch in GLUONCV:
        out[f"{arch} (GluonCV)"] = new_zoo_model(arch, dataset_classes("coco"), "coco")
    folders = {}
    for i, (name, (net, meta)) in enumerate(out.items()):
        folders[name] = os.path.join(root, f"m{i}")
        save_model(folders[name], net, meta)
    return folders


PRECISIONS = ("fp32", "int8", "ort fp32", "ort int8")


def detectors(folder: str, calib):
    """{"fp32", "int8": MXNet Detectors, "ort fp32", "ort int8": ONNX Runtime's} of a model folder (the
    ONNX INT8 graph made by ``quantize``'s own ``quantize_onnx``, same calibration pictures)."""
    from ssd.inference.onnx_engine import load_onnx
    from ssd.inference.onnx_quantize import quantize_onnx

    from ssd.inference.detector import Detector
    from ssd.inference.precision import graph_decoder
    from ssd.inference.quantize import build_int8
    from ssd.store import load_model
    import numpy as np

    fp32 = Detector.load(folder, precision="fp32")
    net, meta = load_model(folder)
    size = int(meta["input_size"])
    qnet = build_int8(net, meta, calib[:, :size, :size])
    int8 = Detector(qnet, meta, hybridize=False, decoder=graph_decoder(meta))
    quantize_onnx(folder, np.ascontiguousarray(calib[:, :size, :size]), {"source": "bench_detectors"})
    return {"fp32": fp32, "int8": int8, "ort fp32": load_onnx(folder, "fp32", prefer_gpu=False),
            "ort int8": load_onnx(folder, "int8", prefer_gpu=False)}


def calibration(size: int = 512, n: int = 8):
    import numpy as np
    from PIL import Image

    from ssd.data.synthetic import render_example

    return np.stack([np.asarray(Image.fromarray(render_example(seed=1, index=i, split="val")[0]).resize((size, size)))
                     for i in range(n)])


def time_one(det, image, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        det.predict_arrays(image)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=8)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    import numpy as np

    print(cpu_kind(), flush=True)
    calib = calibration()
    with tempfile.TemporaryDirectory() as root:
        dets = {name: detectors(folder, calib) for name, folder in make_folders(root).items()}
        best = {(n, pr): float("inf") for n in dets for pr in PRECISIONS}
        for r in range(args.rounds):
            for (name, precision) in best:
                det = dets[name][precision]
                img = np.ascontiguousarray(calib[:1, :det.input_size, :det.input_size])
                det.predict_arrays(img)
                best[(name, precision)] = min(best[(name, precision)], time_one(det, img, args.repeat))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"{'detector':55s} " + " ".join(f"{p + ' ms':>12s}" for p in PRECISIONS))
    rows = []
    for name in dets:
        ms = {p: best[(name, p)] * 1000 for p in PRECISIONS}
        rows.append({"detector": name, **{f"{p.replace(' ', '_')}_ms": round(v, 1) for p, v in ms.items()}})
        print(f"{name:55s} " + " ".join(f"{ms[p]:12.1f}" for p in PRECISIONS))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cpu": cpu_kind(), "rounds": args.rounds, "repeat": args.repeat, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
