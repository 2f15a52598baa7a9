"""Time the Losses page's anchor-roles figure with mining off (5,435 mined negatives, 9 positives):
boxes as one collection per role (``_rects``, what the page draws) against a patch per box (``_rect``,
the baseline it replaced), side by side in one run, built and rendered at the app's 144 dpi.

    .venv/bin/python scripts/bench_roles_figure.py
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from matplotlib.figure import Figure  # noqa: E402

from ssd.viz.plots import _rect, _rects, figure_png  # noqa: E402


def _cpu() -> str:
    """The CPU's model name and family (AMD family 26 is Zen 5, 25 Zen 3/4)."""
    fields = {}
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return f"{fields.get('model name', 'unknown CPU')} (family {fields.get('cpu family', '?')})"


def _draw(boxes: np.ndarray, one_collection: bool) -> float:
    t0 = time.perf_counter()
    fig = Figure(figsize=(6.5, 6.5))
    ax = fig.add_subplot(111)
    ax.imshow(np.zeros((256, 256, 3), np.uint8))
    if one_collection:
        _rects(ax, boxes[9:], "tab:red", lw=1.2)
        _rects(ax, boxes[:9], "lime", lw=2.0)
    else:
        for b in boxes[9:]:
            _rect(ax, b, "tab:red", lw=1.2)
        for b in boxes[:9]:
            _rect(ax, b, "lime", lw=2.0)
    figure_png(fig, dpi=144)
    return (time.perf_counter() - t0) * 1000


def main(repeats: int = 3) -> None:
    xy = np.random.default_rng(0).uniform(0, 200, (5444, 2))
    boxes = np.hstack([xy, xy + 30])
    patch = [_draw(boxes, False) for _ in range(repeats)]
    coll = [_draw(boxes, True) for _ in range(repeats)]
    print(f"{_cpu()}, {os.cpu_count()} cores: a patch per box {min(patch):.0f} ms, one collection per role "
          f"{min(coll):.0f} ms (best of {repeats}): {min(patch) / min(coll):.1f}x")


if __name__ == "__main__":
    main()
