"""Figures shared by the CLI and the app (matplotlib ``Figure`` objects, no pyplot state).

Training curves and precision-recall for runs; anchors of a cell, positive anchors and anchor
coverage for the Anchors page; the SSD diagram and a demo row of detections for the home page.
Building ``Figure`` directly (not ``plt.figure``) keeps figures from piling up in pyplot's
global registry inside a long-running Streamlit server.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from PIL import Image

from ssd.base.figure_lock import under_figure_lock
from ssd.base.text import mpl_escape
from ssd.models.anchor_set import AnchorSet, anchor_index, as_anchor_set
from ssd.models.anchors import cell_centres
from ssd.models.metric_names import named_history
from ssd.viz.drawing import class_colour_hex, draw_detections
from ssd.viz.labels import BoxLabel, halo, place_labels



class _Picture(Protocol):
    """Anything with an ``image()`` (the app's sample images): the figure needs no more of it."""

    def image(self) -> Image.Image: ...


@under_figure_lock
def pr_curve_figure(result) -> Figure:
    """Precision-recall curve per class from an ``EvalResult``."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(111)
    for name, curve in result.pr_curves.items():
        ap = result.per_class_ap.get(name, float("nan"))
        ax.plot(curve["recall"], curve["precision"], label=f"{mpl_escape(name)} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_title(f"Precision-recall (mAP {result.map:.3f})")
    if result.pr_curves:
        ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    return fig


def _losses_ax(ax, history, ep) -> None:
    for key in ("loss", "cls_loss", "box_loss"):
        ax.plot(ep, [h.get(key) for h in history], marker=".", label=key)
    ax.set_title("losses")
    ax.legend(fontsize="small")


def _errors_ax(ax, history, ep) -> None:
    named = named_history(history)
    for key, label in (("class_err", "class err"), ("bbox_mae", "bbox MAE"), ("mined_class_err", "mined class err")):
        values = [h.get(key) for h in named]
        if any(v is not None for v in values):
            ax.plot(ep, [np.nan if v is None else v for v in values], marker=".", label=label)
    ax.set_yscale("log")
    # two lines: on one, the title ran past a 4-inch panel's edge and was cut off
    ax.set_title("class err · bbox MAE · mined class err\n(class err, bbox MAE: as in \"Single Shot Multibox "
                 "Detection\")", fontsize="small")
    if ax.get_legend_handles_labels()[0]:     # a run's first events may carry none of them yet
        ax.legend(fontsize="small")


def _map_ax(ax, history, ep) -> None:
    maps = [h.get("val_map") for h in history]
    if any(m is not None for m in maps):
        ax.plot(ep, maps, marker="o", color="tab:green")
        ax.set_ylim(0, 1.02)
    ax.set_title("validation mAP (VOC07)")


_CURVE_PANELS = (_losses_ax, _errors_ax, _map_ax)


@under_figure_lock
def training_curves_figure(history: Sequence[Dict[str, Any]]) -> Figure:
    """Losses, class error / bbox MAE and validation mAP per epoch, in one row (a report's figure)."""
    fig = Figure(figsize=(10, 3.2))
    ep = [h["epoch"] for h in history]
    for i, panel in enumerate(_CURVE_PANELS):
        ax = fig.add_subplot(1, 3, i + 1)
        panel(ax, history, ep)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig


@under_figure_lock
def training_curve_figures(history: Sequence[Dict[str, Any]], figsize=(4.0, 3.2)) -> List[Figure]:
    """The same three panels as separate figures: side by side on a wide screen, stacked on a phone
    (each at a readable size, where one wide figure would shrink to a third of a phone's width)."""
    ep = [h["epoch"] for h in history]
    figs = []
    for panel in _CURVE_PANELS:
        fig = Figure(figsize=figsize)
        ax = fig.add_subplot(111)
        panel(ax, history, ep)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))      # epochs are whole numbers
        fig.tight_layout()
        figs.append(fig)
    return figs


# --------------------------------------------------------------------------------------------
# anchors (Anchors page)
# --------------------------------------------------------------------------------------------


def _image_axes(fig, image: np.ndarray):
    ax = fig.add_subplot(111)
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _rect(ax, box_px, colour, lw=2.0, ls="-", outline: Optional[str] = None) -> None:
    """A box outline; ``outline`` (a colour) draws a thin halo around it so it shows on any
    background (a blue anchor on blue stripes). Labels go through ``ssd.viz.labels.place_labels``."""
    x0, y0, x1, y1 = box_px
    patch = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=lw, linestyle=ls)
    if outline:
        patch.set_path_effects(halo(lw, outline))
    ax.add_patch(patch)


def _rects(ax, boxes_px: np.ndarray, colour, lw=1.2) -> None:
    """Many box outlines as one collection: thousands of ``_rect`` patches (an image's mined
    negatives with mining off) took seconds to build and draw; one artist takes milliseconds.
    zorder 1, as a patch's: boxes drawn later (the ground truth) stay on top."""
    from matplotlib.collections import PolyCollection

    b = np.asarray(boxes_px, dtype=float).reshape(-1, 4)
    if not len(b):
        return
    verts = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1)
    ax.add_collection(PolyCollection(verts, facecolors="none", edgecolors=colour, linewidths=lw, zorder=1),
                      autolim=False)


# The class colours of the Detect page (their first seven colour-blind safe): anchors of one cell
# (one colour per size or ratio, named on their tags) and PR curves per class.
_ANCHOR_COLOURS = [class_colour_hex(i) for i in range(10)]


@under_figure_lock
def cell_anchors_figure(image: np.ndarray, anchors: AnchorSet, scale: int, row: int, col: int,
                        show_centres: bool = False, gt_boxes: Optional[np.ndarray] = None,
                        ious: Optional[Sequence[float]] = None, figsize=(6.0, 6.0)):
    """The anchors of one cell over ``image`` (TinySSD: n+m-1), each labelled ``s=…, r=…`` as in d2l.

    Anchors are normalized to the square network input, so on a non-square image they are
    stretched exactly as the network stretches the image. ``gt_boxes`` (normalized) are drawn
    dashed; ``ious`` (one per anchor) are added to the labels. Every outline has a white halo and
    the labels are placed clear of each other and of the frame (``place_labels``).
    """
    h, w = image.shape[:2]
    scale_xy = np.array([w, h, w, h], dtype=np.float64)
    anchors = as_anchor_set(anchors)
    boxes = anchors.cell(scale, row, col) * scale_xy
    fig = Figure(figsize=figsize)
    ax = _image_axes(fig, image)
    fh, fw = anchors.feature_maps[scale]
    if show_centres:
        c = cell_centres((fh, fw)) * np.array([w, h])
        ax.scatter(c[:, 0], c[:, 1], s=max(2, 600 / max(fh * fw, 1)), c="white", edgecolors="black",
                   linewidths=0.3, zorder=3)
    labels = []
    for k, (b, label) in enumerate(zip(boxes, anchors.cell_labels[scale])):
        colour = _ANCHOR_COLOURS[k % len(_ANCHOR_COLOURS)]
        _rect(ax, b, colour, lw=2.0, outline="white")
        labels.append(BoxLabel(b, label + (f", IoU {ious[k]:.2f}" if ious is not None else ""), colour))
    for g in (np.asarray(gt_boxes).reshape(-1, 4) if gt_boxes is not None else []):
        _rect(ax, g * scale_xy, "white", lw=2.0, ls="--", outline="black")
        labels.append(BoxLabel(g * scale_xy, "ground truth", "white", "black"))
    ax.plot([(col + 0.5) / fw * w], [(row + 0.5) / fh * h], marker="o", color="red", markersize=5, zorder=4)
    lo = np.minimum(boxes[:, :2].min(axis=0), 0)
    hi = np.maximum(boxes[:, 2:].max(axis=0), [w, h])
    ax.set_xlim(lo[0] - 2, hi[0] + 2)
    ax.set_ylim(hi[1] + 2, lo[1] - 2)
    ax.set_title(f"feature map {scale} ({fh}×{fw}), cell ({row}, {col}): {len(boxes)} anchors", fontsize=10)
    fig.tight_layout()
    place_labels(ax, labels)
    return fig


@under_figure_lock
def positives_figure(image: np.ndarray, anchors: AnchorSet, positives: Sequence[int],
                     gt_boxes: Optional[np.ndarray] = None, figsize=(6.0, 6.0)):
    """The anchors marked positive, coloured by feature map, with the ground truth dashed."""
    h, w = image.shape[:2]
    scale_xy = np.array([w, h, w, h], dtype=np.float64)
    aset = as_anchor_set(anchors)
    fig = Figure(figsize=figsize)
    ax = _image_axes(fig, image)
    if gt_boxes is not None:
        for g in np.asarray(gt_boxes).reshape(-1, 4):
            _rect(ax, g * scale_xy, "white", lw=2.5, ls="--", outline="black")
    used = {}
    for idx in positives:
        s, _, _, _ = anchor_index(aset, int(idx))
        colour = _ANCHOR_COLOURS[s % len(_ANCHOR_COLOURS)]
        used[s] = used.get(s, 0) + 1
        _rect(ax, aset.anchors[int(idx)] * scale_xy, colour, lw=1.5, outline="white")
    handles = [Line2D([0], [0], color=_ANCHOR_COLOURS[s % len(_ANCHOR_COLOURS)], lw=2,
                      label=f"map {s} ({aset.feature_maps[s][0]}×{aset.feature_maps[s][1]}): {n}")
               for s, n in sorted(used.items())]
    handles.append(Line2D([0], [0], color="white", lw=2, ls="--", label="ground truth"))
    leg = ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.85)
    leg.get_frame().set_facecolor("#dddddd")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_title(f"{len(positives)} positive anchor(s) of {aset.total()}", fontsize=10)
    fig.tight_layout()
    return fig


@under_figure_lock
def coverage_figure(best_ious: np.ndarray, threshold: float = 0.5, title: str = "", figsize=(6.0, 3.2)):
    """Histogram of each box's best anchor IoU, with the matching threshold."""
    best = np.asarray(best_ious, dtype=np.float64)
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(111)
    if best.size:
        ax.hist(best, bins=np.linspace(0, 1, 41), color="tab:blue", alpha=0.8)
        share = float(np.mean(best >= threshold))
        ax.axvline(threshold, color="tab:red", ls="--", label=f"IoU {threshold:g}: {share:.0%} of boxes reach it")
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no boxes", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_xlabel("best anchor IoU of each ground-truth box")
    ax.set_ylabel("boxes")
    ax.set_title(title or "anchor coverage", fontsize=10, parse_math=False)   # it names a dataset folder
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# the SSD diagram (home page)
# --------------------------------------------------------------------------------------------


@under_figure_lock
def ssd_diagram_figure(config, input_size: int = 256, num_classes: int = 1,
                       figsize=(11.0, 4.2)):
    """Backbone → multi-scale feature maps → anchors → class + offset predictions → NMS.

    Numbers (map sizes, anchors per cell, totals) come from ``config`` (an ``AnchorSet`` or
    ``AnchorConfig`` of the model shown).
    """
    if isinstance(config, AnchorSet):
        input_size = config.input_size
    fig = Figure(figsize=figsize)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 110)
    ax.set_ylim(0, 46)
    ax.axis("off")
    # input image
    ax.add_patch(Rectangle((1, 13), 14, 14, facecolor="#cfe8ff", edgecolor="#333333"))
    ax.add_patch(Rectangle((5, 16), 6, 8, facecolor="#fad624", edgecolor="#4a2e14"))
    ax.text(8, 10.5, f"image\n{input_size}×{input_size}", ha="center", va="top", fontsize=9)
    _diagram_arrow(ax, 15.5, 20, 19, 20)
    _diagram_box(ax, 19.5, 14, 12, 12, "backbone\n(conv blocks,\ndown-sampling)", "#e0e0e0")
    _diagram_feature_maps(ax, config)
    ax.text(38, 44.5, "multi-scale feature maps: each smaller than the one above; big maps see small objects", fontsize=9, ha="left", va="top")
    # predictions
    _diagram_box(ax, 74.5, 23, 15, 9, f"class scores\n({num_classes} class(es) + background)\nper anchor", "#ffe3c4",
                 fs=8)
    _diagram_box(ax, 74.5, 8, 15, 9, "box offsets\n(Δx, Δy, Δw, Δh)\nper anchor", "#ffe3c4", fs=8)
    ax.text(82, 3, f"{config.total()} anchors in all", ha="center", fontsize=8)
    _diagram_arrow(ax, 90.5, 27, 94, 21)
    _diagram_arrow(ax, 90.5, 12, 94, 19)
    _diagram_box(ax, 94.5, 14, 13, 12, "decode +\nnon-maximum\nsuppression\n→ boxes", "#f2d0f2")
    return fig


def _diagram_box(ax, x, y, w, h, text, colour, fs=9) -> None:
    """A rounded box of the SSD diagram with its text centred."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.4", facecolor=colour, edgecolor="#333333",
                                linewidth=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs, wrap=True)


def _diagram_arrow(ax, x0, y0, x1, y1) -> None:
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, color="#444444",
                                 linewidth=1.2))


def _diagram_feature_maps(ax, config) -> None:
    """The multi-scale feature maps, shrinking down the page, each with its grid and anchor count."""
    prev_bottom = 0.0
    n = config.num_scales
    ys = np.linspace(38, 4, n)
    gap = (34.0 / max(n - 1, 1)) * 0.85
    for i, ((h, w), y) in enumerate(zip(config.feature_maps, ys)):
        side = min(gap, 7.0 * (0.8 ** i) + 1.5)
        x = 38
        grid = min(h, 8)
        ax.add_patch(Rectangle((x, y - side / 2), side, side, facecolor="#d9f2d9", edgecolor="#2c7a2c"))
        for g in range(1, grid):
            ax.plot([x + side * g / grid] * 2, [y - side / 2, y + side / 2], color="#2c7a2c", lw=0.4)
            ax.plot([x, x + side], [y - side / 2 + side * g / grid] * 2, color="#2c7a2c", lw=0.4)
        a = config.anchors_per_cell(i)
        ax.text(x + side + 1.2, y, f"{h}×{w} map · {a} anchors/cell = {h * w * a}", va="center", fontsize=8)
        if i == 0:
            _diagram_arrow(ax, 32, 20, x - 0.5, y)
        else:
            _diagram_arrow(ax, x + 1.5, prev_bottom, x + 1.5, y + side / 2)
        prev_bottom = y - side / 2
        _diagram_arrow(ax, 68, y, 74, 20 + (y - 21) * 0.25)


def demo_pictures(samples: Sequence[_Picture], detections: Sequence[Any], side: int = 512) -> List[Image.Image]:
    """Sample images with their detections drawn, each ``side`` px (the home page's 'what it does'):
    separate pictures, so a page can set them in a row on a wide screen and stack them on a phone."""
    out = []
    for s, det in zip(samples, detections):
        img = s.image()
        out.append(draw_detections(img.resize((side, side), Image.BILINEAR), det, scale=side / img.width,
                                   line_width=3, font_size=22))
    return out


@under_figure_lock
def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes, rendered under the figure lock (safe from any thread)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def ssd_diagram_lines(config, input_size: int = 256, num_classes: int = 1) -> List[str]:
    """The SSD diagram as short lines of text, with the same numbers as ``ssd_diagram_figure``.

    Why: on a phone (390 px) the wide figure shrinks until its labels cannot be read; lines of text
    wrap to any width.
    """
    if isinstance(config, AnchorSet):
        input_size = config.input_size
    lines = [f"image {input_size}×{input_size} → backbone (conv blocks, down-sampling)"]
    for i, (h, w) in enumerate(config.feature_maps):
        a = config.anchors_per_cell(i)
        lines.append(f"feature map {i}: {h}×{w} · {a} anchors/cell = {h * w * a}")
    lines.append(f"per anchor: {num_classes} class score(s) + background, and 4 box offsets (Δx, Δy, Δw, Δh)")
    lines.append(f"{config.total()} anchors in all → decode + non-maximum suppression → boxes")
    return lines
