"""A long camera-trap run's bookkeeping: the append-only journal against the rewritten checkpoint.

Simulates the part of ``run_batch`` that does not depend on pictures: a stream of realistic
entries (site/camera paths, size, EXIF time, ``--detections`` boxes each) kept by the run, a
checkpoint every ``--every`` images, then the results file written in list order. Two ways, each
in its own process so that peak RSS (``resource.getrusage``) is its own:

* ``journal``: this code (``run_store.RunStore``): each entry appended once; a checkpoint is a
  flush + fsync; the results streamed back from the journal.
* ``rewrite``: the code before it, reimplemented here: entries kept in memory as compact JSON,
  the whole checkpoint rewritten atomically (``save_checkpoint``) at every checkpoint.

Bytes written are what the process passed to ``write`` (``/proc/self/io`` ``wchar``). Also timed:
the last checkpoint alone, and opening the checkpoint again as ``--resume`` does.

    python scripts/bench_run_store.py --images 100000 --every 500 --detections 3
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SETTINGS = {"model": "/models/tiny-pikachu", "classes": ["animal", "person", "vehicle"], "nms": 0.45,
            "floor": 0.005, "max_detections": 100, "shard": None, "base": "/data/season", "absolute_paths": False}


def names(n: int) -> List[str]:
    """A season's file list: 20 sites × 10 cameras, sorted as the folder walk sorts them."""
    return sorted(f"site{i % 20:02d}/cam{(i // 20) % 10:02d}/IMG_{i:07d}.JPG" for i in range(n))


def entry(name: str, i: int, detections: int) -> Dict[str, Any]:
    """A realistic results entry (what ``megadetector.image_entry`` makes), deterministic in ``i``."""
    rnd = random.Random(i)
    dets = []
    for _ in range(detections):
        x, y = round(rnd.random() * 0.7, 4), round(rnd.random() * 0.7, 4)
        dets.append({"category": str(rnd.randint(1, 3)), "conf": round(rnd.random(), 3),
                     "bbox": [x, y, round(rnd.random() * 0.3, 4), round(rnd.random() * 0.3, 4)]})
    dets.sort(key=lambda d: -d["conf"])
    return {"file": name, "width": 1920, "height": 1080, "datetime": f"2024:06:{1 + i % 28:02d} 05:30:00",
            "detections": dets, "max_detection_conf": max((d["conf"] for d in dets), default=0.0), "failure": None}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def wchar() -> int:
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("wchar:"))


def run_journal(folder: str, files: List[str], every: int, detections: int) -> Dict[str, float]:
    """This code: append, flush + fsync every ``every``, stream the results from the journal."""
    from ssd.camtrap.batch_run import _episodes, _final_texts
    from ssd.camtrap.run_checkpoint import compact, write_json_with_images
    from ssd.camtrap.run_store import RunStore

    path = os.path.join(folder, "season.checkpoint.jsonl")
    store = RunStore.create(path, SETTINGS, files)
    last = 0.0
    for i, name in enumerate(files):
        store.add(i, compact(entry(name, i, detections)))
        if (i + 1) % every == 0:
            t = time.perf_counter()
            store.checkpoint()
            last = time.perf_counter() - t
    store.checkpoint()
    t = time.perf_counter()
    episodes = _episodes(store, 120.0)          # as the run does before writing its results
    write_json_with_images(os.path.join(folder, "season.json"), {"info": {}},
                           _final_texts(store, {}, False, episodes))
    out = {"last_checkpoint_s": last, "results_s": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}
    store.close()
    t = time.perf_counter()
    RunStore.resume(path, SETTINGS, files).close()
    out["resume_open_s"] = time.perf_counter() - t
    return out


def run_rewrite(folder: str, files: List[str], every: int, detections: int) -> Dict[str, float]:
    """The code before the journal: entries in memory, the whole checkpoint rewritten each time."""
    from ssd.camtrap.run_checkpoint import compact, load_checkpoint, save_checkpoint, write_json_with_images

    path = os.path.join(folder, "season.checkpoint.json")
    done: Dict[str, str] = {}
    last = 0.0
    for i, name in enumerate(files):
        done[name] = compact(entry(name, i, detections))
        if (i + 1) % every == 0:
            t = time.perf_counter()
            save_checkpoint(path, SETTINGS, [done[n] for n in files if n in done])
            last = time.perf_counter() - t
    save_checkpoint(path, SETTINGS, [done[n] for n in files if n in done])
    t = time.perf_counter()
    write_json_with_images(os.path.join(folder, "season.json"), {"info": {}}, [done[n] for n in files if n in done])
    out = {"last_checkpoint_s": last, "results_s": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}
    del done
    t = time.perf_counter()
    load_checkpoint(path, SETTINGS)
    out["resume_open_s"] = time.perf_counter() - t
    return out


def child(mode: str, n: int, every: int, detections: int) -> Dict[str, Any]:
    """One way, measured in this process: seconds, bytes written, peak RSS, file sizes."""
    import ssd.camtrap.batch_run  # noqa: F401  (loaded before the baseline RSS is read)

    files = names(n)
    rss_before = peak_rss_mb()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        w0, t0 = wchar(), time.perf_counter()
        phases = (run_journal if mode == "journal" else run_rewrite)(folder, files, every, detections)
        phases["seconds"] = time.perf_counter() - t0 - phases["resume_open_s"]
        phases["bytes_written"] = wchar() - w0
        phases["results_bytes"] = os.path.getsize(os.path.join(folder, "season.json"))
        phases["resume_peak_rss_mb"] = peak_rss_mb()
        phases["rss_before_mb"] = rss_before
    return phases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=500, help="images between checkpoints")
    ap.add_argument("--detections", type=int, default=3, help="boxes per entry")
    ap.add_argument("--one", choices=["journal", "rewrite"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(child(args.one, args.images, args.every, args.detections)))
        return
    rows = {}
    for mode in ("journal", "rewrite"):
        r = subprocess.run([sys.executable, __file__, "--one", mode, "--images", str(args.images),
                            "--every", str(args.every), "--detections", str(args.detections)],
                           capture_output=True, text=True, check=True)
        rows[mode] = json.loads(r.stdout.strip().splitlines()[-1])
    j, w = rows["journal"], rows["rewrite"]
    print(f"{args.images} entries of {args.detections} detections (results file {j['results_bytes'] / 1e6:.1f} MB), "
          f"a checkpoint every {args.every}")
    print(f"{'':34}{'journal (append)':>18}{'rewrite (before)':>18}{'ratio':>8}")
    for key, label, scale, fmt in [("bytes_written", "bytes written, MB", 1e-6, "{:.1f}"),
                                   ("peak_rss_mb", "peak RSS (run + results), MB", 1, "{:.0f}"),
                                   ("seconds", "seconds (run + results)", 1, "{:.1f}"),
                                   ("last_checkpoint_s", "last checkpoint, ms", 1e3, "{:.1f}"),
                                   ("results_s", "writing the results, s", 1, "{:.2f}"),
                                   ("resume_open_s", "opening for --resume, s", 1, "{:.2f}"),
                                   ("resume_peak_rss_mb", "peak RSS after that, MB", 1, "{:.0f}")]:
        a, b = j[key] * scale, w[key] * scale
        print(f"{label:34}{fmt.format(a):>18}{fmt.format(b):>18}{(b / a if a else float('nan')):>7.1f}x")
    print(f"(peak RSS before the run, interpreter, modules and file list: {j['rss_before_mb']:.0f} / "
          f"{w['rss_before_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
