"""Dataset summary: what is in a dataset, what was skipped, and the shape of its boxes.

Before training, a person needs to know whether the data is what they think: how many images
each split has, how boxes are spread over classes (ENA24 is very imbalanced), how many images
are empty (legitimate negatives in camera-trap data), and what the loader had to drop. Box
size and aspect-ratio statistics tell whether the anchor sizes/ratios cover the objects.

Everything here uses ``labels()`` only, so summarizing never decodes an image. Widths and
heights are normalized, i.e. as the network sees them after the image is squashed to a
square; aspect ratios (w/h) are therefore the ratios anchors must match.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ssd.base.figure_lock import under_figure_lock
from ssd.base.text import terminal_safe
from ssd.data.dataset import DatasetSplits, DetectionDataset

_PERCENTILES = (5, 25, 50, 75, 95)


def _split_items(splits: DatasetSplits) -> List[Tuple[str, DetectionDataset]]:
    items = [("train", splits.train)]
    if splits.val is not None:
        items.append(("val", splits.val))
    if splits.test is not None and splits.test is not splits.val:
        items.append(("test", splits.test))
    return items


def _labels(ds: DetectionDataset, classes: List[str]) -> List[np.ndarray]:
    """``ds``'s labels with the set's class indices; a split with a class list of its own (Roboflow's
    ``test/``) is translated by name, and a class the set lacks becomes -1 (counted as unknown)."""
    labs = [np.asarray(l, dtype=np.float32).reshape(-1, 5) for l in ds.labels()]
    own = list(getattr(ds, "classes", None) or classes)
    if own == list(classes):
        return labs
    index = {c: i for i, c in enumerate(classes)}
    table = np.array([index.get(c, -1) for c in own] or [-1], np.float32)
    for lab in labs:
        lab[:, 0] = table[np.clip(lab[:, 0].astype(int), 0, len(table) - 1)]
    return labs


def _stats(values: np.ndarray) -> Dict[str, float]:
    if values.size == 0:
        return {"count": 0}
    out: Dict[str, float] = {"count": int(values.size), "min": float(values.min()), "mean": float(values.mean()),
                             "max": float(values.max())}
    for p, v in zip(_PERCENTILES, np.percentile(values, _PERCENTILES)):
        out[f"p{p}"] = float(v)
    return out


def box_arrays(splits: DatasetSplits) -> Dict[str, Dict[str, np.ndarray]]:
    """Per split: normalized ``width``, ``height`` and ``cls`` of every box (for stats and plots)."""
    out: Dict[str, Dict[str, np.ndarray]] = {}
    for name, ds in _split_items(splits):
        labs = _labels(ds, splits.classes)
        allb = np.concatenate(labs, axis=0) if labs else np.zeros((0, 5), np.float32)
        out[name] = {"width": allb[:, 3] - allb[:, 1], "height": allb[:, 4] - allb[:, 2],
                     "cls": allb[:, 0].astype(int)}
    return out


def summarize(splits: DatasetSplits) -> Dict[str, Any]:
    """A JSON-able summary of ``splits`` (no image is decoded).

    Keys: ``kind``, ``root``, ``classes``, ``images`` / ``boxes`` / ``images_without_boxes``
    (``{"train", "val", "total"}``), ``boxes_per_class`` (``{name: {"train", "val", "total"}}``,
    classes in index order), ``skipped`` (reason -> count, as the loader reported), and
    ``box_stats`` with ``width``, ``height``, ``aspect_ratio`` (w/h) and ``scale``
    (sqrt(w·h), the quantity anchor *sizes* are compared with): count, min, mean, max and
    percentiles 5/25/50/75/95.
    """
    classes = list(splits.classes)
    images: Dict[str, int] = {}
    boxes: Dict[str, int] = {}
    empty: Dict[str, int] = {}
    per_class: Dict[str, Dict[str, int]] = {c: {} for c in classes}
    widths, heights = [], []
    unknown = 0
    for name, ds in _split_items(splits):
        labs = _labels(ds, classes)
        images[name] = len(labs)
        boxes[name] = int(sum(l.shape[0] for l in labs))
        empty[name] = int(sum(l.shape[0] == 0 for l in labs))
        cls = np.concatenate([l[:, 0] for l in labs]).astype(int) if labs else np.zeros(0, int)
        counts = np.bincount(cls[(cls >= 0) & (cls < len(classes))], minlength=len(classes))
        unknown += int(((cls < 0) | (cls >= len(classes))).sum())
        for i, c in enumerate(classes):
            per_class[c][name] = per_class[c].get(name, 0) + int(counts[i])
        for l in labs:
            widths.append(l[:, 3] - l[:, 1])
            heights.append(l[:, 4] - l[:, 2])
    for d in (images, boxes, empty):
        d["total"] = sum(d.values())
    for c in classes:
        per_class[c]["total"] = sum(per_class[c].values())
    w = np.concatenate(widths) if widths else np.zeros(0, np.float32)
    h = np.concatenate(heights) if heights else np.zeros(0, np.float32)
    ok = (w > 0) & (h > 0)
    summary: Dict[str, Any] = {
        "kind": splits.kind,
        "root": splits.root,
        "classes": classes,
        "images": images,
        "boxes": boxes,
        "images_without_boxes": empty,
        "boxes_per_class": per_class,
        "skipped": dict(sorted(splits.skipped.items())),
        "box_stats": {
            "width": _stats(w),
            "height": _stats(h),
            "aspect_ratio": _stats(w[ok] / h[ok]),
            "scale": _stats(np.sqrt(w[ok] * h[ok])),
        },
    }
    if unknown:
        summary["boxes_with_unknown_class"] = unknown
    mapping = getattr(splits, "class_mapping", None)
    if mapping:
        summary["class_mapping"] = [dict(m) for m in mapping]
    return summary


def format_summary(summary: Dict[str, Any]) -> str:
    """A plain-text table of ``summarize``'s result, for the terminal."""
    splits = [s for s in ("train", "val") if s in summary["images"]]
    lines = [f"{summary['kind']} dataset at {summary['root']}", ""]
    head = ["", *splits, "total"]
    rows = [["images", *[summary["images"][s] for s in splits], summary["images"]["total"]],
            ["  without boxes", *[summary["images_without_boxes"][s] for s in splits],
             summary["images_without_boxes"]["total"]],
            ["boxes", *[summary["boxes"][s] for s in splits], summary["boxes"]["total"]]]
    lines += _table(head, rows)
    lines += ["", f"boxes per class ({len(summary['classes'])} classes)"]
    ids = {m["name"]: m["id"] for m in summary.get("class_mapping", [])}
    crow = []
    for i, c in enumerate(summary["classes"]):
        suffix = f" (id {ids[c]})" if c in ids and ids[c] != i else ""
        label = f"{i:>2} {c}" + ("" if c.endswith(suffix) else suffix)
        crow.append([label, *[summary["boxes_per_class"][c].get(s, 0) for s in splits],
                     summary["boxes_per_class"][c]["total"]])
    lines += _table(["class", *splits, "total"], crow)
    if summary["skipped"]:
        lines += ["", "skipped / adjusted by the loader"]
        lines += _table(["reason", "count"], [[k, v] for k, v in summary["skipped"].items()])
    else:
        lines += ["", "nothing skipped"]
    st = summary["box_stats"]
    lines += ["", "box shape (normalized to the square network input)"]
    srows = []
    for k in ("width", "height", "aspect_ratio", "scale"):
        s = st[k]
        if s.get("count", 0) == 0:
            srows.append([k, "-", "-", "-", "-", "-"])
        else:
            srows.append([k, *[f"{s[p]:.3f}" for p in ("min", "p5", "p50", "p95", "max")]])
    lines += _table(["", "min", "p5", "median", "p95", "max"], srows)
    return "\n".join(lines)


def _table(head: Sequence[Any], rows: Sequence[Sequence[Any]]) -> List[str]:
    """Aligned rows; each cell escaped (``terminal_safe``) before it is measured: a class name from a
    stranger's JSON with a line break or an escape sequence stays in its row and column."""
    cells = [[terminal_safe(c) for c in head]] + [[terminal_safe(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]

    def fmt(r: Sequence[str]) -> str:
        # First column (names) left-aligned, numbers right-aligned.
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip()

    out = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    out += [fmt(r) for r in cells[1:]]
    return out


@under_figure_lock
def plot_box_stats(splits: DatasetSplits, figsize: Tuple[float, float] = (13.0, 4.0)):
    """Figure with three panels for choosing anchors: width vs height, aspect ratio, scale.

    Builds a ``matplotlib.figure.Figure`` directly on an Agg canvas (no ``pyplot``): nothing
    is registered globally, so a Streamlit server or a test cannot leak figures, and the
    caller owns the object (``fig.savefig(...)`` or ``st.pyplot(fig)``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    ax_wh, ax_ar, ax_sc = fig.subplots(1, 3)
    data = box_arrays(splits)
    colors = {"train": "tab:blue", "val": "tab:orange"}
    any_box = False
    all_ar, all_sc = {}, {}
    for name, d in data.items():
        w, h = d["width"], d["height"]
        ok = (w > 0) & (h > 0)
        if not ok.any():
            continue
        any_box = True
        ax_wh.scatter(w[ok], h[ok], s=6, alpha=0.5, color=colors.get(name), label=f"{name} ({int(ok.sum())})")
        all_ar[name] = np.log2(w[ok] / h[ok])
        all_sc[name] = np.sqrt(w[ok] * h[ok])
    if any_box:
        ar_bins = np.linspace(-3, 3, 37)
        sc_bins = np.linspace(0, 1, 41)
        for name in all_ar:
            ax_ar.hist(np.clip(all_ar[name], -3, 3), bins=ar_bins, alpha=0.6, color=colors.get(name), label=name)
            ax_sc.hist(np.clip(all_sc[name], 0, 1), bins=sc_bins, alpha=0.6, color=colors.get(name), label=name)
        ax_wh.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="ratio 1")
        ax_wh.legend(fontsize=8)
        ax_ar.legend(fontsize=8)
        for r in (0.5, 1.0, 2.0):  # TinySSD's default anchor ratios
            ax_ar.axvline(np.log2(r), color="grey", lw=0.8, ls=":")
    else:
        for ax in (ax_wh, ax_ar, ax_sc):
            ax.text(0.5, 0.5, "no boxes", ha="center", va="center", transform=ax.transAxes)
    ax_wh.set(xlim=(0, 1), ylim=(0, 1), xlabel="box width (normalized)", ylabel="box height (normalized)",
              title="box sizes")
    ax_ar.set(xlabel="aspect ratio w/h (log2; dotted: 1/2, 1, 2)", ylabel="boxes", title="aspect ratios")
    ax_sc.set(xlabel="scale sqrt(w·h) (compare with anchor sizes)", ylabel="boxes", title="box scale")
    fig.suptitle(f"{splits.kind}: {os.path.basename(os.path.normpath(splits.root)) or splits.root}")
    return fig
