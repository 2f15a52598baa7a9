"""Box labels that stay next to their box, clear of each other and inside the picture.

Why it exists: the Learn and Anchors figures label many boxes that share corners (a cell's nested
anchors, the candidates NMS suppresses around one object). A label at a fixed corner piles onto
its neighbours or is cut by the frame. ``place_labels`` measures each label with the figure's own
renderer and tries the box's corners, outside then inside, then a line further out, until the
label fits; one that cannot fit near its box is left out (the page's table lists every value).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import matplotlib.patheffects as path_effects

from ssd.viz.colour_vision import readable_text_on

Rect = Tuple[float, float, float, float]        # display pixels: x0, y0, x1, y1 (y up)


@dataclass
class BoxLabel:
    """A label for the box ``box`` (data coordinates, x0 y0 x1 y1), on a tag of ``colour``."""

    box: Sequence[float]
    text: str
    colour: str
    text_colour: Optional[str] = None       # None: black or white, whichever is readable on ``colour``
    fontsize: float = 8

    def ink(self):
        """The text's colour: ``text_colour``, or black or white by WCAG contrast with the tag (white on
        orange or light green was below 3:1)."""
        return self.text_colour if self.text_colour is not None else tuple(v / 255 for v in readable_text_on(self.colour))


def halo(linewidth: float, colour: str = "white") -> list:
    """Path effects that outline a line in ``colour``, so a box shows on any background."""
    return [path_effects.Stroke(linewidth=linewidth + 2.0, foreground=colour, alpha=0.85), path_effects.Normal()]


def _renderer(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _candidates(box: Rect, w: float, h: float, frame: Rect, rings: int):
    """Lower-left corners to try for a ``w`` × ``h`` label: outside the box's corners (above first),
    then inside them, then one label height further out each ring; slid sideways into the frame."""
    left, bottom, right, top = box
    for ring in range(rings):
        out = ring * h
        spots = [(left, top + out), (right - w, top + out), (left, bottom - h - out), (right - w, bottom - h - out)]
        if ring == 0:
            spots += [(left, top - h), (right - w, top - h), (left, bottom), (right - w, bottom)]
        for x, y in spots:
            yield min(max(x, frame[0]), frame[2] - w), y


def place_labels(ax, labels: Sequence[BoxLabel], rings: int = 4) -> List[Optional[Rect]]:
    """Draw ``labels`` on ``ax`` in order (earlier ones get the better spots); returns where each
    went (display pixels), ``None`` for one that did not fit. Call after the figure's layout is final
    (``tight_layout``): positions are measured in the figure as it will be saved."""
    fig = ax.figure
    renderer = _renderer(fig)
    fb = ax.get_window_extent(renderer)
    frame = (fb.x0, fb.y0, fb.x1, fb.y1)
    to_display, to_data = ax.transData.transform, ax.transData.inverted().transform
    placed: List[Rect] = []
    out: List[Optional[Rect]] = []
    for lab in labels:
        pad = 1.5 * fig.dpi / 72
        text = ax.text(0, 0, lab.text, fontsize=lab.fontsize, color=lab.ink(), ha="left", va="bottom",
                       bbox=dict(facecolor=lab.colour, edgecolor="none", pad=1.5, alpha=0.9), zorder=6,
                       parse_math=False)       # class names come from a model's metadata: '$' is a '$' 
        ext = text.get_window_extent(renderer)
        w, h = ext.width + 2 * pad, ext.height + 2 * pad
        (ax0, ay0), (ax1, ay1) = to_display([lab.box[:2], lab.box[2:]])
        box = (min(ax0, ax1), min(ay0, ay1), max(ax0, ax1), max(ay0, ay1))
        spot = next(((x, y) for x, y in _candidates(box, w, h, frame, rings)
                     if frame[1] <= y and y + h <= frame[3]
                     and not any(_overlaps((x, y, x + w, y + h), p) for p in placed)), None)
        if spot is None:
            text.remove()
            out.append(None)
            continue
        rect = (spot[0], spot[1], spot[0] + w, spot[1] + h)
        placed.append(rect)
        text.set_position(to_data((spot[0] + pad, spot[1] + pad)))
        out.append(rect)
    return out
