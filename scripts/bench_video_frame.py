"""How long the browser takes to show one frame of a one-minute clip, by three ways of finding it.

Usage: python scripts/bench_video_frame.py [--seconds 60] [--fps 30] [--width 1280 --height 720]

Writes a clip with OpenCV's writer (MPEG-4 part 2, a keyframe every 12 frames as OpenCV writes
it) in a temporary folder, then reads frames at 10 %, 50 % and 100 % of it:
- ``pos_frames``: the old way, ``CAP_PROP_POS_FRAMES`` (fast, but wrong in a variable-rate clip);
- ``read_frame`` cold: the frame's stamp from the packets (the first look at a file), a seek
  before it and decoding forward to that stamp; ``warm``: the stamps already known;
- ``from_start``: decoding every frame from the start (the fallback where stamps are missing).
Each figure is the best of 3, in the same run, side by side. Name the machine with the figures.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_clip(path: str, seconds: float, fps: float, size) -> int:
    import cv2

    n = int(seconds * fps)
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    rng = np.random.RandomState(0)
    base = rng.randint(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    for i in range(n):
        w.write(np.roll(base, 3 * i, axis=1))
    w.release()
    return n


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def pos_frames(path: str, number: int) -> None:
    import cv2

    cap = cv2.VideoCapture(path)
    cap.set(cv2.CAP_PROP_POS_FRAMES, number)
    cap.read()
    cap.release()


def main() -> None:
    from ssd.camtrap import video

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        n = write_clip(path, a.seconds, a.fps, (a.width, a.height))
        print(f"clip: {n} frames, {a.width}x{a.height} at {a.fps:g} fps, {os.path.getsize(path) / 1e6:.1f} MB")
        print(f"{'frame':>6} {'pos_frames':>11} {'cold':>8} {'warm':>8} {'from_start':>11}  (seconds)")
        for number in (n // 10, n // 2, n - 1):
            def cold():
                video.frame_times.cache_clear()
                video.read_frame(path, number)

            old = best(lambda: pos_frames(path, number))
            c = best(cold)
            warm = best(lambda: video.read_frame(path, number))
            seq = best(lambda: video._frame_by_count(path, number), repeat=1)
            print(f"{number:>6} {old:>11.3f} {c:>8.3f} {warm:>8.3f} {seq:>11.3f}")


if __name__ == "__main__":
    main()
