"""The threshold explorer's figure: detections per class and state changes across thresholds.

Drawn from the dict ``ssd.camtrap.sweep.threshold_sweep`` returns (this layer does not import it):
left, images (solid) and episodes (dashed) with detections per class; right, how many images and
episodes would change between "empty" and "detections" against the threshold in use (marked).
"""
from __future__ import annotations

from typing import Any, Dict

from matplotlib.figure import Figure

from ssd.base.figure_lock import under_figure_lock
from ssd.base.text import mpl_escape


@under_figure_lock
def sweep_figure(sweep: Dict[str, Any]) -> Figure:
    """Two panels over ``sweep["thresholds"]``: per-class counts, and changes against now."""
    ts = sweep["thresholds"]
    fig = Figure(figsize=(10, 3.4))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for k, name in enumerate(sweep["per_class_images"]):
        line, = left.plot(ts, sweep["per_class_images"][name], marker=".", label=f"{mpl_escape(name)}: images")
        left.plot(ts, sweep["per_class_episodes"][name], ls="--", color=line.get_color(),
                  label=f"{mpl_escape(name)}: episodes")
    left.set_xlabel("threshold")
    left.set_ylabel("with detections")
    left.set_title("Images and episodes with detections")
    left.legend(fontsize="small")
    right.plot(ts, sweep["images_changed"], marker=".", label="images")
    right.plot(ts, sweep["episodes_changed"], marker=".", ls="--", label="episodes")
    for ax in (left, right):
        ax.axvline(sweep["current"], color="grey", lw=1, ls=":")
    right.set_xlabel("threshold")
    right.set_ylabel("change state against now")
    right.set_title(f"Flips between empty and detections (now {sweep['current']:g})")
    right.legend(fontsize="small")
    fig.tight_layout()
    return fig
