"""A season of 10^6 files: everything a folder run does around the network, this code against a baseline.

A researcher runs ``python -m ssd detect SEASON --recursive`` over site/camera/date/100RECNX
folders. The network's speed is measured elsewhere (``bench_onnx.py``); here a detector that
returns three boxes at once stands in for it, so what is timed is the rest: listing the folder,
starting a run and resuming one on a journal of N−1000 entries (seconds until the first forward,
peak memory), writing the results, printing the table, planning a shard.

The season is made of hard links to 100 tiny JPEGs (one per camera): 10^6 files cost a few
thousand inodes and no space. The baseline's code (``--baseline``, default ``main``) is exported
with ``git archive`` and run side by side; every measurement runs in its own process, so peak RSS
(``VmHWM``) is its own.

    python scripts/bench_season_million.py --files 1000000 --root /tmp/season-bench
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "tiny-pikachu")        # named in the journal's settings, never loaded
CHILD_STEPS = ("scandir", "walk", "start", "resume", "table", "shard")


# ------------------------------------------------------------------ the season

def make_season(root: str, files: int) -> str:
    """``root/season/siteSS/camCC/2024-06-DD/100RECNX/IMG_NNNN.JPG``: 10 sites × 10 cameras × 20 days."""
    from PIL import Image

    season = os.path.join(root, "season")
    if os.path.isdir(season):
        return season
    per_folder = max(1, files // 2000)
    src = os.path.join(root, "_src")
    os.makedirs(src, exist_ok=True)
    for s in range(10):
        for c in range(10):
            jpeg = os.path.join(src, f"s{s}c{c}.jpg")
            Image.new("RGB", (64, 48), (s * 20, c * 20, 100)).save(jpeg, quality=80)
            for d in range(20):
                folder = os.path.join(season, f"site{s:02d}", f"cam{c:02d}", f"2024-06-{d + 1:02d}", "100RECNX")
                os.makedirs(folder)
                for k in range(per_folder):
                    os.link(jpeg, os.path.join(folder, f"IMG_{k + 1:04d}.JPG"))
    return season


def make_journal(root: str, season: str, keep_undone: int) -> str:
    """A run's journal with every file but the last ``keep_undone`` done (realistic entries)."""
    sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts")]     # this code (the children choose theirs)
    from bench_run_store import entry

    from ssd.camtrap.folders import list_inputs
    from ssd.camtrap.run_checkpoint import compact

    work = os.path.join(root, "work-journal")
    _child("start", ROOT, season, work)                      # a stopped run: the journal's header line
    path = os.path.join(root, "journal.jsonl")
    with open(os.path.join(work, "out.checkpoint.jsonl"), "rb") as fh:
        head = fh.readline()
    shutil.rmtree(work)
    names = list_inputs([season], recursive=True).names
    with open(path, "wb") as fh:
        fh.write(head)
        for i, name in enumerate(names[:len(names) - keep_undone]):
            fh.write(compact(entry(name, i, 3)).encode() + b"\n")
    return path


# ------------------------------------------------------------------ what a child process measures

def _peak_mb() -> float:
    """This process's peak RSS: ``VmHWM``, not ``ru_maxrss``, which starts at the parent's RSS when
    forked (Linux keeps it across ``exec``), the 170 MB the parent held after making the journal."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Detector:
    """Three boxes per picture at once: the network's place, without its time."""

    input_size, classes = 32, ["animal", "person"]

    def __init__(self, t0: float, stop_after: int = 0, stop=None) -> None:
        self.t0, self.first, self.images, self.stop_after, self.stop = t0, None, 0, stop_after, stop

    def predict_arrays(self, images, nms=0.45, floor=0.005):
        import numpy as np

        if self.first is None:
            self.first = time.perf_counter() - self.t0
        self.images += len(images)
        if self.stop_after and self.images >= self.stop_after:
            self.stop.set()
        box = np.array([[0.1, 0.1, 0.3, 0.3], [0.4, 0.2, 0.7, 0.6], [0.5, 0.5, 0.9, 0.9]], np.float32)
        return [(np.array([0, 1, 0], np.float32), np.array([0.9, 0.4, 0.02], np.float32), box) for _ in images]


def _run(season: str, work: str, resume: bool) -> Dict[str, Any]:
    """``run_batch`` as ``detect SEASON --recursive --json`` runs it; a fresh run stops after 64 images."""
    import threading

    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.settings import RunSettings

    stop = threading.Event()
    opts = RunSettings(MODEL, [season], recursive=True, out_json=os.path.join(work, "out.json"), resume=resume)
    t0 = time.perf_counter()
    det = _Detector(t0, 0 if resume else 64, stop)
    with open(os.devnull, "w") as quiet:
        run_batch(opts, det, stop=stop, stream=quiet)
    return {"first_forward_s": det.first, "total_s": time.perf_counter() - t0, "images": det.images}


def _table(work: str) -> Dict[str, Any]:
    """The table ``detect`` prints after a run without ``--quiet``, into /dev/null."""
    from ssd.camtrap import results

    path, t0 = os.path.join(work, "out.json"), time.perf_counter()
    with open(os.devnull, "w") as out:
        if hasattr(results, "write_text_table"):
            from ssd.camtrap.run_checkpoint import read_images_json

            def entries():
                with open(path, encoding="utf-8") as fh:
                    yield from read_images_json(fh)
            results.write_text_table(out, {"1": "animal", "2": "person"}, entries, 0.2)
        else:                                                  # the code before: the document parsed
            with open(path, encoding="utf-8") as fh:
                print(results.text_table(json.load(fh), 0.2), file=out)
    return {"total_s": time.perf_counter() - t0}


def _walk(season: str, step: str) -> Dict[str, Any]:
    """The folder listed: by the run's code, or by a bare sorted ``os.scandir`` walk (the floor)."""
    from ssd.camtrap.folders import list_inputs, shard

    before, t0 = _rss_mb(), time.perf_counter()
    if step == "scandir":
        found: List[str] = []
        stack = [(season, "")]
        while stack:
            path, rel = stack.pop()
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
            stack += [(e.path, rel + e.name + "/") for e in entries if e.is_dir()]
            found += [rel + e.name for e in reversed(entries) if not e.is_dir()]
        n = len(found)
    else:
        files = list_inputs([season], recursive=True)
        n = len(files)
        if step == "shard":
            t0 = time.perf_counter()
            n = len(shard(files, 2, 4))
    return {"total_s": time.perf_counter() - t0, "held_mb": _rss_mb() - before, "files": n}


def child(step: str, season: str, work: str) -> None:
    """One measurement, printed as a JSON line (run with the code to measure first on ``sys.path``)."""
    os.makedirs(work, exist_ok=True)
    if step in ("start", "resume"):
        out = _run(season, work, step == "resume")
    elif step == "table":
        out = _table(work)
    else:
        out = _walk(season, step)
    print(json.dumps({**out, "peak_mb": _peak_mb()}))


# ------------------------------------------------------------------ the side-by-side

def _child(step: str, code: str, season: str, work: str) -> Dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": code, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", step, "--season", season,
                        "--work", work], env=env, cwd=code, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{step} in {code} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def export(ref: str, into: str) -> str:
    """The baseline's code (``ssd/`` and the model folder named in settings) from git."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref, "ssd", "models/tiny-pikachu"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


def compare(root: str, season: str, journal: str, baseline: str) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Every step with each code, the resume and table steps on a fresh copy of the journal."""
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for label, code in (("baseline", baseline), ("this code", ROOT)):
        work = os.path.join(root, "work-" + label.replace(" ", "-"))
        for step in CHILD_STEPS:
            if step == "resume":
                shutil.rmtree(work, ignore_errors=True)
                os.makedirs(work)
                shutil.copy(journal, os.path.join(work, "out.checkpoint.jsonl"))
            out.setdefault(step, {})[label] = _child(step, code, season, work)
        shutil.rmtree(work, ignore_errors=True)
    return out


def report(results: Dict[str, Dict[str, Dict[str, Any]]], files: int, baseline: str) -> None:
    rows: List[tuple] = [
        ("list the folder (s)", "walk", "total_s"), ("list: memory held (MB)", "walk", "held_mb"),
        ("list: peak RSS (MB)", "walk", "peak_mb"), ("fresh run: first forward after (s)", "start", "first_forward_s"),
        ("fresh run: peak RSS (MB)", "start", "peak_mb"),
        ("--resume: first forward after (s)", "resume", "first_forward_s"),
        ("--resume + last 1000 + results written (s)", "resume", "total_s"),
        ("--resume: peak RSS (MB)", "resume", "peak_mb"), ("table printed (s)", "table", "total_s"),
        ("table: peak RSS (MB)", "table", "peak_mb"), ("--shard 2/4 of the list (s)", "shard", "total_s")]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    family = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("cpu family")), "?")
    print(f"{files:,} files; {cpu} (family {family}), {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"floor: a bare sorted os.scandir walk, {results['scandir']['this code']['total_s']:.2f} s, "
          f"{results['scandir']['this code']['held_mb']:.0f} MB held")
    print(f"| {files:,} files | {baseline} | this code | ratio |\n| --- | ---: | ---: | ---: |")
    fmt: Callable[[float], str] = lambda v: f"{v:.2f}" if v < 10 else f"{v:.0f}"
    for label, step, key in rows:
        a, b = results[step]["baseline"][key], results[step]["this code"][key]
        print(f"| {label} | {fmt(a)} | {fmt(b)} | {a / b:.1f}× |" if b else f"| {label} | {fmt(a)} | {fmt(b)} | – |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--root", default=None, help="where the season is made (kept with --keep)")
    ap.add_argument("--baseline", default="main")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", choices=CHILD_STEPS)
    ap.add_argument("--season")
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.season, args.work)
    root = args.root or tempfile.mkdtemp(prefix="season-bench-")
    os.makedirs(root, exist_ok=True)
    try:
        season = make_season(root, args.files)
        journal = make_journal(root, season, 1000)
        baseline = export(args.baseline, tempfile.mkdtemp(prefix="baseline-", dir=root))
        report(compare(root, season, journal, baseline), args.files, args.baseline)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
