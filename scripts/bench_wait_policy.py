#!/usr/bin/env python
"""OpenMP's waiting in MXNet inference: passive (what ``detect``/``eval`` set) against spinning, in one run.

Run: ``.venv/bin/python scripts/bench_wait_policy.py [--folder 640] [--val 400] [--rounds 4] [--json OUT]``.

Why: MXNet's OpenMP threads spin after each parallel region unless ``OMP_WAIT_POLICY=PASSIVE``;
a folder run's decode threads need those cores. ``ssd.base.engine`` sets the passive policy for
the inference commands; this script runs each command whole-process both ways, alternating
(A B A B …), so drift on the machine falls on both: **passive** is the code as it is,
**spinning** the same code with the inference kind's policy table emptied (OpenMP's default).
Rows: ``detect --engine mxnet`` on ``--folder`` generated 1920×1080 JPEGs at fp32 and INT8,
``detect`` on one of them (start-up dominated), and ``eval`` on ``--val`` synthetic images.
The median of the pairs' ratios is printed beside each median time, with the CPU kind and load.
Then a lone Detector call in a tight loop (batch 1 and batch 8, median of 60 and 10, in a process
of each policy), which is what passive waiting slows: each call wakes the threads.
"""
from __future__ import annotations

import argparse
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
from bench_precision import _make_folder, emit  # noqa: E402

SHIPPED = os.path.join(REPO, "models", "tiny-pikachu")
SPINNING = ("import sys; sys.path.insert(0, sys.argv[1]); from ssd.base import engine; "
            "engine.WAIT_POLICY_FOR_KIND.clear(); from ssd.cli.main import main; sys.exit(main(sys.argv[2:]))")


FORWARD = r"""
import json, os, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from ssd.base import engine
if sys.argv[2] == "spinning":
    engine.WAIT_POLICY_FOR_KIND.clear()
engine.configure("inference")
from ssd.inference.engines import load_detector
out = {}
for prec in ("fp32", "int8"):
    det = load_detector(sys.argv[3], "mxnet", prec)
    for batch, runs in ((1, 60), (8, 10)):
        x = np.zeros((batch, det.input_size, det.input_size, 3), np.uint8)
        for _ in range(5):
            det.predict_arrays(x)
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            det.predict_arrays(x)
            ts.append((time.perf_counter() - t) * 1000 / batch)
        out[f"{prec} batch {batch}"] = statistics.median(ts)
print(json.dumps(out))
"""


def forward_ms(rounds: int) -> dict:
    """Per-image ms of a lone Detector call under each policy (median over ``rounds`` processes each)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MXNET_ENGINE_TYPE")}
    runs = {p: [] for p in ("passive", "spinning")}
    for r in range(rounds):
        for p in (("passive", "spinning") if r % 2 == 0 else ("spinning", "passive")):
            res = subprocess.run([sys.executable, "-c", FORWARD, REPO, p, SHIPPED], check=True, env=env,
                                 capture_output=True, text=True)
            runs[p].append(json.loads(res.stdout.strip().splitlines()[-1]))
    return {p: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for p, rs in runs.items()}


def _argv(policy: str, args: list) -> list:
    if policy == "passive":
        return [sys.executable, "-m", "ssd"] + args
    return [sys.executable, "-c", SPINNING, REPO] + args


def _cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def compare(args: list, rounds: int) -> dict:
    """Wall and CPU seconds of ``python -m ssd ARGS`` under each policy, alternating, ``rounds`` pairs."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MXNET_ENGINE_TYPE")}
    out = {p: {"wall": [], "cpu": []} for p in ("passive", "spinning")}
    for r in range(rounds):
        order = ("passive", "spinning") if r % 2 == 0 else ("spinning", "passive")
        for p in order:
            t, c = time.perf_counter(), _cpu_s()
            subprocess.run(_argv(p, args), check=True, cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out[p]["wall"].append(round(time.perf_counter() - t, 2))
            out[p]["cpu"].append(round(_cpu_s() - c, 2))
    ratios = [a / b for a, b in zip(out["passive"]["wall"], out["spinning"]["wall"])]
    out["wall_ratio_median"] = statistics.median(ratios)
    return out


def table(res: dict) -> str:
    lines = [f"CPU: {res['cpu']}; load {res['load_before']} before, {res['load_after']} after",
             "", "| whole process | passive: wall s / CPU s | spinning: wall s / CPU s | passive ÷ spinning (wall) |",
             "| --- | ---: | ---: | ---: |"]
    for name, r in res["rows"].items():
        cells = [f"{statistics.median(r[p]['wall']):.2f} / {statistics.median(r[p]['cpu']):.2f}"
                 for p in ("passive", "spinning")]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {r['wall_ratio_median']:.2f} |")
    lines += ["", "| a lone Detector call, ms per image | passive | spinning | passive ÷ spinning |",
              "| --- | ---: | ---: | ---: |"]
    for k, v in res["forward"]["passive"].items():
        spin = res["forward"]["spinning"][k]
        lines.append(f"| {k} | {v:.2f} | {spin:.2f} | {v / spin:.2f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=int, default=640, help="1920×1080 JPEGs for the folder rows")
    ap.add_argument("--val", type=int, default=400, help="synthetic images for the eval row")
    ap.add_argument("--rounds", type=int, default=4, help="pairs of runs per row")
    ap.add_argument("--json", help="write all figures here")
    a = ap.parse_args()
    from ssd.base.hardware import cpu_kind
    from ssd.data.synthetic import generate

    work = tempfile.mkdtemp(prefix="bench-wait-")
    try:
        folder, one, val = (os.path.join(work, n) for n in ("frames", "one", "val"))
        _make_folder(folder, a.folder)
        os.makedirs(one)
        shutil.copy(os.path.join(folder, sorted(os.listdir(folder))[0]), one)
        generate(val, num_train=1, num_val=a.val, seed=2026)
        res = {"cpu": cpu_kind(), "cores": os.cpu_count(), "load_before": [round(v, 1) for v in os.getloadavg()]}
        model = ["--model", SHIPPED, "--engine", "mxnet"]
        jobs = {f"`detect` {a.folder} JPEGs, INT8": ["detect"] + model + ["--precision", "int8", "--quiet", folder,
                                                                          "--json", os.path.join(work, "a.json")],
                f"`detect` {a.folder} JPEGs, fp32": ["detect"] + model + ["--precision", "fp32", "--quiet", folder,
                                                                          "--json", os.path.join(work, "b.json")],
                "`detect` one JPEG, INT8": ["detect"] + model + ["--precision", "int8", "--quiet", one,
                                                                  "--json", os.path.join(work, "c.json")],
                f"`eval` {a.val} images, INT8": ["eval"] + model + ["--precision", "int8", "--data", val]}
        res["rows"] = {name: compare(args, a.rounds) for name, args in jobs.items()}
        res["forward"] = forward_ms(a.rounds)
        res["load_after"] = [round(v, 1) for v in os.getloadavg()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return emit(table(res), res, a.json)


if __name__ == "__main__":
    raise SystemExit(main())
