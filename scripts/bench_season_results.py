"""A season's results at scale: what happens after the run, on a MegaDetector file of N entries.

Writes a results file of ``--images`` entries in site/camera/date folders (no photos: the
network's time is measured elsewhere), split into two shards too, then times, each command in a
process of its own (wall seconds and peak RSS, ``resource.getrusage`` of the child):
``results summary`` (and ``--sweep``), ``results merge`` of the two shards, ``results export --format camtrap-dp``,
and the Camera traps page in AppTest (first render of the file, then a move of the confidence
slider: the file must not be read again; where the page has "Episode gap", a regroup at 300 s and
a slider move after it, which must not be slower than the one before). ``--baseline ROOT`` runs the same commands with another
checkout's code, alternating, for side-by-side figures on a shared machine. ``results compare``,
``results split`` and ``results export --format coco``: scripts/bench_season_tools.py, on the same files.

    .venv/bin/python scripts/bench_season_results.py --images 200000 [--baseline /tmp/main-copy] [--rounds 2]
        [--detections 84] [--only summary page] [--keep season.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PAGE = """
import os, sys, time
from streamlit.testing.v1 import AppTest
results = sys.argv[1]
at = AppTest.from_file("app.py", default_timeout=900).run()
at.switch_page("app_pages/camera_traps.py").run()
at.text_input(key="ct_results_path").set_value(results)
t = time.perf_counter()
at.text_input(key="ct_image_root").set_value(os.path.dirname(results)).run()
first = time.perf_counter() - t
t = time.perf_counter()
at.slider(key="ct_conf").set_value(0.5).run()
note = f"first render {first:.1f} s, slider move {time.perf_counter() - t:.1f} s"
gap = next((w for w in at.number_input if w.key == "ct_rg_gap"), None)     # a checkout with "Episode gap"
if gap is not None:
    t = time.perf_counter()
    gap.set_value(300.0).run()
    note += f", regroup at 300 s {time.perf_counter() - t:.1f} s"
    t = time.perf_counter()
    at.slider(key="ct_conf").set_value(0.6).run()
    note += f", slider move after it {time.perf_counter() - t:.1f} s"
assert not at.exception, [e.value for e in at.exception]
print(note, file=sys.stderr)
"""


def season(n: int, seed: int = 0, detections: Optional[int] = None) -> Dict:
    """A results document: 20 sites x 10 cameras x 30 days, 0-3 boxes, one failure in 997.

    ``detections``: each read entry carries that many boxes, as a real detector writes every box
    down to the results floor (0.005): its 0-3 "real" boxes (any score) and the rest low-scored
    background (0.005-0.15, most near the floor), so a threshold move must look at all of them.
    """
    sys.path.insert(0, ROOT)
    from ssd.camtrap.megadetector import results_document, sort_key

    rnd = random.Random(seed)
    names = sorted((f"site{i % 20:02d}/cam{(i // 20) % 10:02d}/2024-06-{(i // 200) % 30 + 1:02d}/IMG_{i:07d}.JPG"
                    for i in range(n)), key=sort_key)
    images = []
    for i, f in enumerate(names):
        if i % 997 == 0:
            images.append({"file": f, "failure": "cannot read", "detections": None})
            continue
        dets = sorted(({"category": str(rnd.randint(1, 3)), "conf": round(rnd.random(), 3),
                        "bbox": [round(rnd.random() * 0.6, 4) for _ in range(2)] + [0.2, 0.2]}
                       for _ in range(rnd.choice([0, 0, 1, 2, 3]))), key=lambda d: -d["conf"])
        if detections is not None:
            dets = sorted(dets[:detections] + [_background_box(rnd) for _ in range(detections - len(dets))],
                          key=lambda d: -d["conf"])
        images.append({"file": f, "width": 1920, "height": 1080,
                       "datetime": f"2024:06:{(i // 200) % 28 + 1:02d} {(i // 60) % 24:02d}:{i % 60:02d}:00",
                       "detections": dets, "max_detection_conf": max((d["conf"] for d in dets), default=0.0),
                       "failure": None})
    return results_document(images, ["animal", "person", "vehicle"], "bench", 0.2)


def _background_box(rnd: random.Random) -> Dict:
    """A low-scored box: 0.005-0.15, most near the floor (score ~ floor + 0.145 u^3)."""
    return {"category": str(rnd.randint(1, 3)), "conf": round(0.005 + 0.145 * rnd.random() ** 3, 3),
            "bbox": [round(rnd.random() * 0.8, 4) for _ in range(2)] + [0.1, 0.1]}


# Started between this process and the command timed: Linux counts in a process's peak RSS the memory
# of the process it was forked from (``exec`` records the old address space's high-water mark), so a
# command started straight from this script, which has just made a season of hundreds of MB,
# reported at least this script's size (413 MiB for a compare that peaks at 62 MiB). This small
# process starts the command itself and reports the command's own peak.
_SPAWN = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, s, u = os.wait4(p.pid, 0); "
          "sys.stderr.write(f'\\nPEAK_KB {u.ru_maxrss}\\n'); sys.exit(os.waitstatus_to_exitcode(s))")


def timed(code_root: str, args: List[str], folder: str) -> Dict[str, object]:
    """One command with ``code_root``'s package, in its own process: wall seconds and its own peak RSS."""
    env = dict(os.environ, PYTHONPATH=code_root, SSD_DATA_DIR=os.path.join(folder, "data"),
               SSD_MODELS_DIR=os.path.join(code_root, "models"), SSD_PHOTO_ROOTS=folder, SSD_FORCE_CPU="1")
    with tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-c", _SPAWN, sys.executable, *args], cwd=code_root, env=env,
                             stdout=subprocess.DEVNULL, stderr=err)
        p.wait()
        wall = time.perf_counter() - t
        err.seek(0)
        text = err.read()
    if p.returncode:
        raise SystemExit(f"{args[:4]} failed:\n{text[-2000:]}")
    note = [ln for ln in text.splitlines() if ln.startswith("first render")]
    peak_kb = [int(ln.split()[1]) for ln in text.splitlines() if ln.startswith("PEAK_KB ")][-1]
    return {"wall_s": wall, "peak_mib": peak_kb / 1024, "note": note[0] if note else ""}


def commands(folder: str) -> Dict[str, List[str]]:
    r = os.path.join(folder, "season.json")
    return {"summary": ["-m", "ssd", "results", "summary", r],
            "sweep": ["-m", "ssd", "results", "summary", r, "--sweep"],
            "merge": ["-m", "ssd", "results", "merge", os.path.join(folder, "s0.json"), os.path.join(folder, "s1.json"),
                      "-o", os.path.join(folder, "merged.json")],
            "camtrap-dp": ["-m", "ssd", "results", "export", r, "--format", "camtrap-dp", "--out",
                           os.path.join(folder, "dp"), "--latitude", "1", "--longitude", "2"],
            "page": ["-c", PAGE, r]}


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        subprocess.run(["cp", src, dst], check=True)


def _write_season(folder: str, doc: Dict, detections: Optional[int]) -> None:
    """season.json (many boxes: compact, as indented it is over 1 GB) and its two shards s0, s1."""
    with open(os.path.join(folder, "season.json"), "w") as fh:
        json.dump(doc, fh, **({"indent": 1} if detections is None else {"separators": (",", ":")}))
    for k in range(2):
        with open(os.path.join(folder, f"s{k}.json"), "w") as fh:
            json.dump({**doc, "images": doc["images"][k::2]}, fh)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--baseline", metavar="ROOT", help="another checkout, timed alternately with this one")
    ap.add_argument("--detections", type=int, metavar="N",
                    help="boxes per entry, mostly low-scored, as a detector writes down to 0.005 (default: 0-3)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", metavar="PATH", help="also copy the season's results file there (for profiling)")
    ap.add_argument("--results", metavar="PATH", help="time this results file (e.g. one --keep wrote) instead of "
                                                      "making one; no shards: not with merge")
    ap.add_argument("--only", nargs="*", help="some of: summary sweep merge camtrap-dp page")
    args = ap.parse_args()
    roots = {"this": ROOT, **({"baseline": os.path.abspath(args.baseline)} if args.baseline else {})}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        if args.results:
            _link_or_copy(args.results, os.path.join(folder, "season.json"))   # the page refuses links out
        else:
            _write_season(folder, season(args.images, detections=args.detections), args.detections)
        if args.keep:
            subprocess.run(["cp", os.path.join(folder, "season.json"), args.keep], check=True)
        what = args.results or f"{args.images} entries"
        print(f"{what} ({os.path.getsize(os.path.join(folder, 'season.json')) / 1e6:.0f} MB)")
        for name, cmd in commands(folder).items():
            if args.only and name not in args.only:
                continue
            for rnd in range(args.rounds):
                for label, root in roots.items():
                    subprocess.run(["rm", "-rf", os.path.join(folder, "dp")], check=True)
                    r = timed(root, cmd, folder)
                    print(f"{name:<11} {label:<9} round {rnd + 1}: {r['wall_s']:6.1f} s {r['peak_mib']:6.0f} MiB  {r['note']}")


if __name__ == "__main__":
    main()
