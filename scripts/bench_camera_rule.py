"""Episode assignment with the camera rule against the immediate-folder rule it replaced, side by
side in one process (prints figures; not a test).

The camera rule is asked for every entry (``cameras.CameraRule.camera_of``, cached per folder
name); the baseline is the old ``posixpath.dirname`` per entry. A season of ``--entries`` entries
in ``site/camNNN/YYYY-MM-DD/100RECNX`` folders (200 cameras × 30 days by default), each timed
run best of ``--repeat``.

Usage: .venv/bin/python scripts/bench_camera_rule.py [--entries 200000] [--cameras 200] [--days 30]
"""
from __future__ import annotations

import argparse
import os
import posixpath
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ssd.camtrap.cameras import CameraRule  # noqa: E402
from ssd.camtrap.episodes import EpisodeFinder  # noqa: E402


def _season(n: int, cameras: int, days: int):
    out = []
    for k in range(n):
        cam, day = k % cameras, (k // cameras) % days
        out.append((f"site{cam % 10}/cam{cam:03d}/2024-05-{day + 1:02d}/100RECNX/IMG_{k:06d}.JPG",
                    f"2024:05:{day + 1:02d} {(k // 7) % 24:02d}:{(k // 3) % 60:02d}:{k % 60:02d}"))
    return out


def _time(entries, camera) -> float:
    t0 = time.perf_counter()
    finder = EpisodeFinder(CameraRule())
    if camera is not None:
        finder._camera = camera                       # the baseline: the old rule, nothing else changed
    for f, t in entries:
        finder.add(f, t)
    finder.ids(120.0)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--cameras", type=int, default=200)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    entries = _season(a.entries, a.cameras, a.days)
    old = lambda f: posixpath.dirname(str(f).replace("\\", "/"))   # noqa: E731
    base, new = [], []
    for _ in range(a.repeat):                         # interleaved, so load on the machine hits both alike
        base.append(_time(entries, old))
        new.append(_time(entries, None))
    b, n = min(base), min(new)
    print(f"{a.entries} entries, {a.cameras} cameras × {a.days} day folders")
    print(f"immediate folder (before): {b:.3f} s   camera rule (now): {n:.3f} s   ratio {n / b:.2f}")


if __name__ == "__main__":
    main()
