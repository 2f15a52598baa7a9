"""Benchmark the Detect page's work for one uploaded photo with and without an app-launched job
running; prints figures (not a test).

The page's work: ``detect_images`` (decode + network + NMS, on the server's one inference thread,
``load_detector(..., worker=True)`` as ``app_pages/_shared.py`` loads it) for a photo not seen
before, then ``render_batch`` (filter + SVG boxes). The job: a TinySSD training on a synthetic set,
started through ``ssd.jobs.start_job`` (``ssd.jobs.process.launch``), exactly as the Train page
starts one. Phases, in one run: the page's work alone, then while a job trains at nice 0 (how jobs ran\nbefore), then while one trains at ``JOB_NICE`` (how they run now); medians and p90.
The job's throughput while the page works is read from its own progress events, and, for
reference, over an equal window with the page idle.

Usage: .venv/bin/python scripts/bench_job_contention.py [--model DIR] [--repeat 30] [--size 1280x960]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _pct(values: List[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _photos(n: int, size: Tuple[int, int]) -> List[Tuple[str, bytes]]:
    """``n`` distinct JPEG uploads (each one is new to the page: the network runs for every one)."""
    from PIL import Image

    from ssd.data.synthetic import render_example

    out = []
    for i in range(n):
        img = Image.fromarray(render_example(1, i, "val")[0]).resize(size, Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        out.append((f"upload_{i:03d}.jpg", buf.getvalue()))
    return out


def _page_work(det, photos: List[Tuple[str, bytes]]) -> Callable[[int], float]:
    from ssd.inference.batch import DetectionCache, detect_images, render_batch
    from ssd.inference.thresholds import DEFAULT_NMS, MAX_DETECTIONS, SHOWN_THRESHOLD

    def once(i: int) -> float:
        t0 = time.perf_counter()
        results = detect_images(det, [photos[i % len(photos)]], DEFAULT_NMS, DetectionCache(), key="bench")
        render_batch(results, SHOWN_THRESHOLD, None, MAX_DETECTIONS)
        return (time.perf_counter() - t0) * 1000
    return once


def _phase(work: Callable[[int], float], repeat: int, seconds: float) -> List[float]:
    """The page's work back to back (someone uploading and moving sliders), ``repeat`` times at
    least and for ``seconds`` at least; each call's milliseconds."""
    times: List[float] = []
    end = time.time() + seconds
    while len(times) < repeat or time.time() < end:
        times.append(work(len(times)))
    return times


def _nice_of(pid: int) -> List[int]:
    """The nice value of each thread of ``pid`` (field 19 of /proc/PID/task/TID/stat)."""
    vals = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                vals.append(int(fh.read().rsplit(")", 1)[1].split()[16]))
        except (OSError, IndexError, ValueError):
            pass
    return vals


def _train_rate(run_dir: str, t0: float, t1: float, batch: int) -> float:
    """Training images per second between wall times ``t0`` and ``t1``, from the job's events."""
    from ssd.training.events import read_events

    evs = [e for e in read_events(run_dir) if e.get("type") == "progress" and "global_iter" in e
           and t0 <= float(e["time"]) <= t1]
    if len(evs) < 2:
        return float("nan")
    a, b = evs[0], evs[-1]
    return (b["global_iter"] - a["global_iter"]) * batch / max(1e-9, float(b["time"]) - float(a["time"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the default model of models/)")
    ap.add_argument("--repeat", type=int, default=30, help="at least this many photos per phase")
    ap.add_argument("--seconds", type=float, default=20.0, help="and for at least this long")
    ap.add_argument("--size", default="1280x960")
    ap.add_argument("--batch", type=int, default=16, help="the job's batch size")
    args = ap.parse_args()

    from ssd import jobs
    from ssd.jobs.process import alive
    from ssd.data.synthetic import generate
    from ssd.inference.engines import load_detector
    from ssd.store import default_model
    from ssd.training.config import TrainConfig
    from ssd.training.events import read_events
    from ssd.workspace import models_dir

    model = args.model or default_model(models_dir()).path
    det = load_detector(model, "auto", None, worker=True)   # the app's: one inference thread
    det.max_batch = 1
    w, h = (int(v) for v in args.size.lower().split("x"))
    work = _page_work(det, _photos(8, (w, h)))
    for i in range(3):
        work(i)                                              # warm

    tmp = tempfile.mkdtemp(prefix="bench_job_")
    data = os.path.join(tmp, "synthetic")
    generate(data, num_train=256, num_val=16, seed=0)
    models_root = os.path.join(tmp, "models")

    print(f"model: {model} ({det.engine}, {det.precision}); photo {w}x{h} JPEG; {os.cpu_count()} CPUs; "
          f"phases of >= {args.repeat} photos and >= {args.seconds:.0f} s")
    alone = _phase(work, args.repeat, args.seconds)

    rows = [("no job", alone, None, None, None)]
    import ssd.jobs.process as process
    from ssd.base.priority import JOB_NICE, job_environment
    for label, level in (("job at nice 0 (before)", 0), (f"job at nice {JOB_NICE} (now)", JOB_NICE)):
        process.job_environment = lambda env, _l=level: job_environment(env, _l)   # level 0 = the old launch
        cfg = TrainConfig(data=data, out=os.path.join(models_root, f"job{level}"), epochs=1000,
                          batch_size=args.batch, device="cpu", limit_val=8, seed=0)
        info = jobs.start_job(models_root, cfg)
        try:
            deadline = time.time() + 180
            while not any(e.get("type") == "progress" for e in read_events(cfg.out)):
                if time.time() > deadline or not alive(info.pid):
                    raise SystemExit("the job did not start training:\n" + jobs.read_log_tail(cfg.out, 20, jobs.LOG_FILE))
                time.sleep(0.5)
            time.sleep(3)                                         # past its first steps
            nice = sorted(set(_nice_of(info.pid)))
            t0 = time.time()
            busy = _phase(work, args.repeat, args.seconds)
            t1 = time.time()
            time.sleep(t1 - t0)                                   # the job alone for as long
            t2 = time.time()
            rows.append((label, busy, nice, _train_rate(cfg.out, t0, t1, args.batch),
                         _train_rate(cfg.out, t1, t2, args.batch)))
        finally:
            jobs.stop_job(models_root, timeout=30)

    print(f"job: `python -m ssd train` (TinySSD, batch {args.batch}) via ssd.jobs.start_job; "
          f"server nice {os.getpriority(os.PRIO_PROCESS, 0)}")
    print(f"page work, one photo (ms)              median     p90     max   job threads' nice   "
          f"job img/s (page busy / idle)")
    for name, v, nice, rb, ri in rows:
        extra = "" if nice is None else f"   {str(nice):17s}   {rb:5.1f} / {ri:5.1f}"
        print(f"  {name:24s} ({len(v):4d}) {statistics.median(v):7.1f} {_pct(v, 90):7.1f} {max(v):7.1f}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
