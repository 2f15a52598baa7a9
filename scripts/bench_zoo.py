#!/usr/bin/env python
"""Inference latency of the GluonCV model-zoo SSDs on this machine's CPU.

Run: ``OMP_NUM_THREADS=<cores> .venv/bin/python scripts/bench_zoo.py [--repeat 10] [--arch …]``.

For each architecture at its native input size, batch 1, float32: build it offline (random
weights, 20 VOC classes: latency does not depend on the weights), hybridize with static
allocation, warm up, then time ``net(x)`` plus copying the detections to numpy (NMS included,
as the Detector runs it) ``--repeat`` times and report the median. Printed next to GluonCV's
published accuracy and the seconds per image measured on the 2-core development machine.
GluonCV publishes no CPU latency for a 2-core machine, so none is shown.

Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench(arch: str, repeat: int, warmup: int, classes=None, variant: str = "custom") -> dict:
    import mxnet as mx

    from ssd.models.gluoncv.presets import spec_of
    from ssd.models.gluoncv.recipe import new_zoo_model

    spec = spec_of(arch)
    t0 = time.perf_counter()
    net, meta = new_zoo_model(arch, list(classes or [f"c{i}" for i in range(20)]), variant)
    build_s = time.perf_counter() - t0
    net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.uniform(shape=(1, 3, spec.base_size, spec.base_size))
    for _ in range(warmup):
        [o.asnumpy() for o in net(x)]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        [o.asnumpy() for o in net(x)]
        times.append(time.perf_counter() - t)
    params = sum(p.data().size for p in net.collect_params().values())
    return {"arch": arch, "input": spec.base_size, "anchors": meta["anchors"]["total"],
            "params_m": params / 1e6, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "repeat": repeat, "build_s": build_s,
            "reference_s": spec.reference_cpu_s, "published": spec.published}


def main(argv=None) -> int:
    from ssd.models.gluoncv.presets import ZOO_ARCHS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", action="append", choices=ZOO_ARCHS, help="default: all three")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--pullable", action="store_true",
                   help="time the six detectors of `python -m ssd models pull --list` (their own classes and "
                        "anchors), as ratios to ssd_512_mobilenet1.0_voc timed in the same run")
    args = p.parse_args(argv)
    if args.pullable:
        return bench_pullable(args.repeat, args.warmup, args.json)
    rows = [bench(a, args.repeat, args.warmup) for a in (args.arch or ZOO_ARCHS)]
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={threads}; batch 1, float32, hybridized, median of {args.repeat}\n")
    print("| model | input | anchors | params (M) | median s/image | min–max s | s/image measured "
          "in development (2 cores) | GluonCV published accuracy |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        pub = ", ".join(f"{'VOC07 mAP' if k == 'voc_map' else 'COCO AP'} {v}" for k, v in r["published"].items())
        ref = f"{r['reference_s']:.2f}" if r["reference_s"] else "—"
        print(f"| {r['arch']} | {r['input']} | {r['anchors']} | {r['params_m']:.1f} | {r['median_s']:.3f} | "
              f"{r['min_s']:.3f}–{r['max_s']:.3f} | {ref} | {pub} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"machine": platform.platform(), "cores": os.cpu_count(), "omp_threads": threads,
                       "results": rows}, fh, indent=2)
    return 0


def bench_pullable(repeat: int, warmup: int, json_out=None) -> int:
    """Latency of every pullable detector at its native size (random weights: the time does not
    depend on them), with the ratio to the smallest one measured in the same run."""
    from ssd.models.pretrained import pretrained_detectors

    rows = []
    for d in pretrained_detectors():
        r = bench(d.arch, repeat, warmup, d.classes(), d.variant)
        r.update(name=d.name, classes=len(d.classes()), metric=f"{d.metric} {d.published}", params_mb=d.params_mb)
        rows.append(r)
    base = next(r for r in rows if r["name"] == "ssd_512_mobilenet1.0_voc")["median_s"]
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS={threads}; "
          f"batch 1, float32, hybridized, in-graph NMS, median of {repeat}\n")
    print("| detector | classes | input | download (MB) | median s/image | × ssd_512_mobilenet1.0_voc | published |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['classes']} | {r['input']} | {r['params_mb']:.0f} | {r['median_s']:.3f} | "
              f"{r['median_s'] / base:.2f} | {r['metric']} |")
    if json_out:
        with open(json_out, "w", encoding="utf-8") as fh:
            json.dump({"machine": platform.platform(), "cores": os.cpu_count(), "omp_threads": threads,
                       "results": rows}, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
