"""Learn · Losses: smooth L1 and focal loss as d2l plots them, and what the class loss sees on one image.

Read from the bottom: ``main()`` shows the loss shapes, then one image's anchor roles under hard
negative mining.
"""
from __future__ import annotations

from typing import Tuple

import streamlit as st

from app_pages import _learn
from app_pages import _shared as sh
from ssd.base.text import md_escape
from ssd.base.errors import SSDError
from ssd.models.losses import FOCAL_ALPHA
from ssd.viz.learn import anchor_roles_figure, loss_curves, loss_shapes_figures
from ssd.workspace import Sample, gt_boxes_of, model_key


def shapes_panel() -> None:
    """Smooth L1 and focal loss for d2l's parameters and the person's own σ and γ."""
    c1, c2 = st.columns(2)
    sigma = c1.slider("σ of smooth L1 (training uses 1)", 0.2, 10.0, 3.0, 0.1,
                      persist_state="session", key="learn_loss_sigma")
    gamma = c2.slider("γ of focal loss", 0.0, 5.0, 2.0, 0.5, persist_state="session", key="learn_loss_gamma")
    sh.figure_columns(loss_shapes_figures(*loss_curves(sigma, gamma)))
    st.caption("Smooth L1 is quadratic for |x| < 1/σ² and L1 beyond: gentle near the target, robust to outliers. "
               "Focal loss multiplies cross-entropy by (1 − p)^γ, so well-classified anchors (p near 1) stop "
               "dominating; γ = 0 is cross-entropy. Training uses cross-entropy unless started with "
               f"`python -m ssd train --cls-loss focal`, whose focal loss is also weighted by α = {FOCAL_ALPHA:g} "
               "(Dive into Deep Learning's \"Single Shot Multibox Detection\" plots it without α).")


def mining_ui() -> Tuple[str, Sample, float, float]:
    """Model, image, negatives kept per positive, IoU for a positive; stops the page without a model."""
    m1, m2, m3, m4 = st.columns([2, 2, 1, 1])
    path, _, sample = _learn.model_and_sample(m1, m2, "learn_loss")
    ratio = m3.slider("Negatives per positive", 0.0, 10.0, 3.0, 1.0, format="%.0f", persist_state="session",
                      key="learn_loss_ratio",
                      help="0 turns mining off: every negative counts.")
    overlap = m4.slider("IoU for a positive", 0.1, 0.9, 0.5, 0.05, persist_state="session", key="learn_loss_overlap")
    return path, sample, ratio, overlap


def mining_panel() -> None:
    """Positive, kept negative and ignored anchors from the model's own outputs on the image."""
    st.subheader("What the class loss sees on one image")
    st.markdown("Most anchors are background. With hard negative mining, the loss keeps only the negatives the "
                "network gets most wrong, a fixed number per positive anchor; the others are ignored. Which ones "
                "depends on the model's predictions, so the roles come from a model's own outputs (MXNet's "
                "`MultiBoxTarget`, the call training makes).")
    path, sample, ratio, overlap = mining_ui()
    try:
        heads = _learn.heads(path, sample)
    except SSDError as err:
        st.info(md_escape(err))
        st.stop()
    roles = _learn.roles(path, sample, ratio, overlap)
    g1, g2 = st.columns([3, 2])
    with g1:     # drawn once per model, image, ratio and IoU: thousands of anchors at a low IoU
        sh.cached_figure(("roles",) + tuple(model_key(path)) + (sample.name, ratio, overlap),
                         lambda: anchor_roles_figure(sample.array(), heads.anchors, roles, gt_boxes_of([sample.label])))
    with g2:
        st.metric("Positive anchors", len(roles.positives))
        st.metric("Mined negatives (kept)", len(roles.negatives))
        st.metric("Ignored anchors", len(roles.ignored))
        st.caption(f"{roles.total} anchors in all. Positives learn their box's class and offsets; kept negatives "
                   "learn 'background'; ignored anchors add nothing to the class loss. The box loss counts "
                   "positives only.")


def main() -> None:
    st.title("Losses")
    st.markdown("The curves are the training code's own `box_loss` and `class_loss` evaluated on a grid.")
    shapes_panel()
    mining_panel()


main()
