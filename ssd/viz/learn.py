"""Figures of the Learn pages: what the tutorials teach with static figures, drawn from live numbers.

Every figure takes what the library computed (``MultiBoxPrior`` anchors, ``MultiBoxTarget`` roles,
the training losses, an ``NMSTrace``, VOC matches, an ``EvalResult``) and only draws it. Figures
are matplotlib ``Figure`` objects built without pyplot, as in ``ssd.viz.plots``.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ssd.base.figure_lock import under_figure_lock
from ssd.base.text import mpl_escape
from ssd.models.anchor_set import AnchorSet
from ssd.viz.labels import BoxLabel, place_labels
from ssd.viz.plots import _ANCHOR_COLOURS, _rect, _rects


# How each role is drawn: (colour, line style). Colours that must be told apart stay ΔE00 >= 20 apart
# under simulated colour-blindness, or differ in line style too (tests/test_colour_access.py):
# FP is dotted and ground truth dashed, so TP / FP / FN do not rest on colour alone.
ROLE_STYLES: Dict[str, Tuple[str, str]] = {
    "positive": ("lime", "-"), "mined negative": ("tab:red", "-"), "ignored": ("#bbbbbb", "none"),
    "kept": ("lime", "-"), "suppressed": ("tab:red", "--"), "waiting": ("#999999", "-"),
    "TP": ("lime", "-"), "FP": ("tab:red", ":"), "FN": ("magenta", "--"), "found": ("white", "--"),
}
PR_LINE_STYLES = ["-", "--", "-.", ":"]      # one per class, after its colour: a second cue in the legend


def _image_ax(ax, image: np.ndarray) -> None:
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    h, w = image.shape[:2]
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)


def _px(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.array([w, h, w, h], dtype=np.float64)


@under_figure_lock
def multiscale_figures(image: np.ndarray, scales: Sequence, figsize=(4.2, 4.6)) -> List[Figure]:
    """d2l's multiscale figure, one panel per feature map (``ScaleAnchors``): every anchor of the map
    over ``image``, with the map's cell centres. Separate figures, so a page can put them side by
    side on a wide screen and one under another on a phone, each at a readable size."""
    return [_multiscale_panel(image, sc, figsize) for sc in scales]


def _multiscale_panel(image: np.ndarray, sc, figsize) -> Figure:
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(111)
    _image_ax(ax, image)
    scale_xy = _px(image)
    for k in range(sc.per_cell):
        for b in sc.boxes[:, :, k].reshape(-1, 4):
            _rect(ax, b * scale_xy, _ANCHOR_COLOURS[k % len(_ANCHOR_COLOURS)], lw=1.5, outline="white")
    centres = (np.arange(sc.cells) + 0.5) / sc.cells
    cx, cy = np.meshgrid(centres * image.shape[1], centres * image.shape[0])
    ax.scatter(cx.ravel(), cy.ravel(), s=12, c="red", edgecolors="white", linewidths=0.5, zorder=3)
    ax.set_title(f"{sc.cells}×{sc.cells} map, size {', '.join(f'{s:g}' for s in sc.sizes)}: "
                 f"{sc.per_cell}/cell, {sc.total()} anchors", fontsize=10)
    if len(sc.sizes) == 1:       # one size: each colour is one ratio
        handles = [Line2D([0], [0], color=_ANCHOR_COLOURS[k % len(_ANCHOR_COLOURS)], lw=2, label=f"ratio {r:g}")
                   for k, r in enumerate(sc.ratios)]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07 if len(sc.sizes) == 1 else 0, 1, 1))
    return fig


def loss_curves(sigma: float, gamma: float) -> Tuple[np.ndarray, Dict[str, np.ndarray], np.ndarray,
                                                      Dict[str, np.ndarray]]:
    """``(x, box curves, p, class curves)`` for ``loss_shapes_figures``: smooth L1 for d2l's σ (10, 1,
    0.5) and L1 against the offset error, focal loss for its γ (0, 1, 5) and cross-entropy against
    p(true class), each the training code's own loss; the person's own σ and γ join them, marked ◀.
    """
    from ssd.models.loss_shapes import box_loss_curve, class_loss_curve

    x = np.linspace(-2, 2, 201)
    p = np.linspace(0.01, 0.99, 99)
    sigmas = sorted({10.0, 1.0, 0.5, float(sigma)}, reverse=True)
    gammas = sorted({0.0, 1.0, 5.0, float(gamma)})
    box = {f"smooth L1, σ={s:g}" + (" ◀" if s == sigma else ""): box_loss_curve(x, "smooth_l1", s) for s in sigmas}
    box["L1"] = box_loss_curve(x, "l1")
    cls = {f"focal, γ={g:g}" + (" ◀" if g == gamma else ""): class_loss_curve(p, "focal", g) for g in gammas}
    cls["cross-entropy"] = class_loss_curve(p, "ce")
    return x, box, p, cls


@under_figure_lock
def loss_shapes_figures(x: np.ndarray, box_curves: Mapping[str, np.ndarray], p: np.ndarray,
                        cls_curves: Mapping[str, np.ndarray], figsize=(5.5, 3.8)) -> Tuple[Figure, Figure]:
    """Box losses against the offset error, and class losses against p(true class), as d2l plots them.

    Two figures, not one of two panels: side by side they make the same picture on a wide screen,
    and on a phone each can take the screen's width (one 11-inch figure shrank its labels to ~4 px)."""
    box_fig = _curves_figure(x, box_curves, "L1", figsize, "box loss: smooth L1 for several σ, and L1",
                             "offset error x (prediction − target)")
    cls_fig = _curves_figure(p, cls_curves, "cross", figsize, "class loss: focal for several γ, and cross-entropy",
                             "p: probability given to the true class")
    return box_fig, cls_fig


def _curves_figure(x: np.ndarray, curves: Mapping[str, np.ndarray], dashed: str, figsize, title: str,
                   xlabel: str) -> Figure:
    """One loss panel: a curve per entry, the reference curve (label starting ``dashed``) dashed."""
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(111)
    for label, y in curves.items():
        ax.plot(x, y, label=label, ls="--" if label.startswith(dashed) else "-")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@under_figure_lock
def anchor_roles_figure(image: np.ndarray, anchors, roles, gt_boxes: Optional[np.ndarray] = None,
                        figsize=(6.5, 6.5)) -> Figure:
    """Positive anchors (green), mined negatives (red) and the ignored rest (grey centre dots).

    ``anchors``: an ``AnchorSet`` or the ``(N, 4)`` normalized anchors the roles index."""
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(111)
    _image_ax(ax, image)
    scale_xy = _px(image)
    boxes = anchors.anchors if isinstance(anchors, AnchorSet) else np.asarray(anchors).reshape(-1, 4)
    if len(roles.ignored):
        c = (boxes[roles.ignored, :2] + boxes[roles.ignored, 2:]) / 2 * scale_xy[:2]
        ax.scatter(c[:, 0], c[:, 1], s=1.5, c=ROLE_STYLES["ignored"][0], alpha=0.5, zorder=2)
    _rects(ax, boxes[np.asarray(roles.negatives, dtype=int)] * scale_xy, ROLE_STYLES["mined negative"][0], lw=1.2)
    _rects(ax, boxes[np.asarray(roles.positives, dtype=int)] * scale_xy, ROLE_STYLES["positive"][0], lw=2.0)
    if gt_boxes is not None:
        for g in np.asarray(gt_boxes).reshape(-1, 4):
            _rect(ax, g * scale_xy, "white", lw=2.0, ls="--")
    handles = [Line2D([0], [0], color=ROLE_STYLES["positive"][0], lw=2, label=f"positive: {len(roles.positives)}"),
               Line2D([0], [0], color=ROLE_STYLES["mined negative"][0], lw=2,
                      label=f"mined negative: {len(roles.negatives)}"),
               Line2D([0], [0], color=ROLE_STYLES["ignored"][0], marker="o", lw=0,
                      label=f"ignored: {len(roles.ignored)}"),
               Line2D([0], [0], color="white", lw=2, ls="--", label="ground truth")]
    leg = ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.85)
    leg.get_frame().set_facecolor("#dddddd")
    ax.set_title(f"what the class loss sees: {len(roles.positives) + len(roles.negatives)} of "
                 f"{roles.total} anchors", fontsize=10)
    fig.tight_layout()
    return fig


@under_figure_lock
def nms_step_figure(image: np.ndarray, trace, step: int, classes: Sequence[str], class_id: Optional[int] = None,
                    figsize=(6.5, 6.5)) -> Figure:
    """NMS at ``step`` (index into the class's steps): boxes kept before it (green, thin), the box it
    keeps (green, thick), the boxes it suppresses (red dashed, with IoU), the rest still waiting (grey).

    Each IoU label sits at its own box, highest IoU first; one with no room near its box is left
    out (the page's table lists them all)."""
    steps = trace.steps if class_id is None else trace.steps_of_class(class_id)
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(111)
    _image_ax(ax, image)
    scale_xy = _px(image)
    if not steps:
        ax.set_title("no candidate above the floor", fontsize=10)
        fig.tight_layout()
        return fig
    step = max(0, min(int(step), len(steps) - 1))
    cur = steps[step]
    done = {s.kept for s in steps[:step]} | {j for s in steps[:step] for j, _ in s.suppressed}
    gone_now = {j for j, _ in cur.suppressed}
    for i in range(len(trace.scores)):
        if (class_id is None or trace.class_ids[i] == class_id) and i not in done | gone_now | {cur.kept}:
            _rect(ax, trace.boxes[i] * scale_xy, ROLE_STYLES["waiting"][0], lw=0.6)
    for s in steps[:step]:
        _rect(ax, trace.boxes[s.kept] * scale_xy, "lime", lw=1.2)
    k = cur.kept
    labels = [BoxLabel(trace.boxes[k] * scale_xy, f"kept: {classes[int(trace.class_ids[k])]} {trace.scores[k]:.2f}",
                       "lime")]
    for j, iou in sorted(cur.suppressed[:30], key=lambda s: -s[1]):
        _rect(ax, trace.boxes[j] * scale_xy, ROLE_STYLES["suppressed"][0], lw=1.2, ls=ROLE_STYLES["suppressed"][1])
        labels.append(BoxLabel(trace.boxes[j] * scale_xy, f"IoU {iou:.2f}", "tab:red", fontsize=7))
    _rect(ax, trace.boxes[k] * scale_xy, "lime", lw=3.0, outline="black")
    ax.set_title(f"step {step + 1}/{len(steps)}: keeps 1, suppresses {len(cur.suppressed)} "
                 f"(IoU ≥ {trace.nms_threshold:g})", fontsize=10)
    fig.tight_layout()
    place_labels(ax, labels, rings=2)
    return fig


@under_figure_lock
def image_eval_figure(image: np.ndarray, det_boxes: np.ndarray, det_labels: Sequence[str], match,
                      gt_boxes: np.ndarray, figsize=(6.5, 6.5)) -> Figure:
    """Ground truth (white dashed; magenta when missed: FN) and detections (green TP solid, red FP
    dotted); pixels."""
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(111)
    _image_ax(ax, image)
    labels = []
    for g, found in zip(np.asarray(gt_boxes).reshape(-1, 4), match.gt_found):
        colour, ls = ROLE_STYLES["found" if found else "FN"]
        _rect(ax, g, colour, lw=2.0, ls=ls, outline="black")
        if not found:
            labels.append(BoxLabel(g, "FN (missed)", colour))
    for b, label, tp, iou in zip(np.asarray(det_boxes).reshape(-1, 4), det_labels, match.det_tp, match.det_iou):
        colour, ls = ROLE_STYLES["TP" if tp else "FP"]
        _rect(ax, b, colour, lw=2.0, ls=ls, outline="black" if tp else "white")
        labels.append(BoxLabel(b, f"{'TP' if tp else 'FP'} {label} IoU {iou:.2f}", colour, fontsize=7))
    ax.set_title(f"TP {match.tp} · FP {match.fp} · FN {match.fn}  ({len(match.gt_found)} objects)", fontsize=10)
    fig.tight_layout()
    place_labels(ax, labels)
    return fig


@under_figure_lock
def pr_operating_figure(result, points: Dict[str, Dict[str, float]], confidence: float,
                        figsize=(6.5, 4.5)) -> Figure:
    """The split's PR curve per class (``EvalResult``) with the operating point at ``confidence``."""
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(111)
    for k, (name, curve) in enumerate(result.pr_curves.items()):
        colour = _ANCHOR_COLOURS[k % len(_ANCHOR_COLOURS)]
        ap = result.per_class_ap.get(name, float("nan"))
        ax.plot(curve["recall"], curve["precision"], color=colour, ls=PR_LINE_STYLES[k % len(PR_LINE_STYLES)],
                label=f"{mpl_escape(name)} (AP {ap:.3f})")
        pt = points.get(name)
        if pt and pt["detections"]:
            ax.plot([pt["recall"]], [pt["precision"]], marker="o", markersize=9, color=colour,
                    markeredgecolor="black", zorder=4)
            ax.annotate(f"conf ≥ {confidence:.2f}", (pt["recall"], pt["precision"]), textcoords="offset points",
                        xytext=(6, -14), fontsize=8)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"precision-recall of the split (mAP {result.map:.3f}); dot: this confidence", fontsize=10)
    if result.pr_curves:
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
