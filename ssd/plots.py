"""Figures shared by the CLI and the app (matplotlib ``Figure`` objects, no pyplot state).

Building ``Figure`` directly (not ``plt.figure``) keeps figures from piling up in pyplot's
global registry inside a long-running Streamlit server.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

from matplotlib.figure import Figure


def pr_curve_figure(result) -> Figure:
    """Precision-recall curve per class from an ``EvalResult``."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(111)
    for name, curve in result.pr_curves.items():
        ap = result.per_class_ap.get(name, float("nan"))
        ax.plot(curve["recall"], curve["precision"], label=f"{name} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_title(f"Precision-recall (mAP {result.map:.3f})")
    if result.pr_curves:
        ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    return fig


def training_curves_figure(history: Sequence[Dict[str, Any]]) -> Figure:
    """Losses, class error / bbox MAE and validation mAP per epoch."""
    fig = Figure(figsize=(10, 3.2))
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    ep = [h["epoch"] for h in history]
    for key in ("loss", "cls_loss", "box_loss"):
        axes[0].plot(ep, [h.get(key) for h in history], marker=".", label=key)
    axes[0].set_title("losses")
    axes[0].legend(fontsize="small")
    axes[1].plot(ep, [h.get("class_err") for h in history], marker=".", label="class err")
    axes[1].plot(ep, [h.get("bbox_mae") for h in history], marker=".", label="bbox MAE")
    axes[1].set_yscale("log")
    axes[1].set_title("class error / bbox MAE")
    axes[1].legend(fontsize="small")
    maps = [h.get("val_map") for h in history]
    if any(m is not None for m in maps):
        axes[2].plot(ep, maps, marker="o", color="tab:green")
        axes[2].set_ylim(0, 1.02)
    axes[2].set_title("validation mAP (VOC07)")
    for ax in axes:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig
