"""Learn · Multiscale anchors: d2l's 4×4, 2×2, 1×1 figure, and any architecture's per-layer anchor table.

Read from the bottom: ``main()`` shows the d2l figure with its controls, then one network's
anchors per layer.
"""
from __future__ import annotations

from typing import List, Tuple

import pandas as pd
import streamlit as st

from app_pages import _learn
from app_pages import _shared as sh
from ssd.base.text import md_escape
from ssd.base.errors import SSDError
from ssd.models.anchors import format_groups
from ssd.models.multiscale import (D2L_MAPS, D2L_RATIOS, D2L_SIZES, count_formula, layer_table, multiscale_anchors,
                                   parse_ratios)
from ssd.models.registry import anchors_for_meta, architectures, recipe_for
from ssd.viz.learn import multiscale_figures


@st.cache_resource(show_spinner="Computing the architecture's anchors…", max_entries=16)
def _anchors(arch: str, size: int):
    return anchors_for_meta({"arch": arch, "classes": ["object"], "input_size": size})


def d2l_ui() -> Tuple[List[float], str]:
    """One anchor size per map (4×4, 2×2, 1×1) and the aspect ratios, as text."""
    c1, c2, c3, c4 = st.columns(4)
    sizes = [c.slider(f"Anchor size on the {n}×{n} map", 0.05, 1.0, float(s), 0.05,
                      persist_state="session", key=f"learn_ms_size{n}")
             for c, n, s in zip((c1, c2, c3), D2L_MAPS, D2L_SIZES)]
    return sizes, c4.text_input("Aspect ratios", format_groups([D2L_RATIOS]),
                                persist_state="session", key="learn_ms_ratios")


def d2l_panel() -> None:
    """The d2l chapter's figure: each map's anchors on a sample; stops the page on unusable ratios."""
    sample = _learn.sample_picker("learn_ms_sample")
    sizes, ratios_text = d2l_ui()
    try:
        ratios = parse_ratios(ratios_text)
        scales = multiscale_anchors(D2L_MAPS, [[s] for s in sizes], ratios)
    except (ValueError, SSDError) as err:
        st.error(f"These anchors cannot be made: {md_escape(err)}")
        st.stop()
    sh.figure_columns(multiscale_figures(sample.array(), scales))
    st.caption("Red dots: cell centres. Each cell carries one anchor per ratio (one size here); a size is a fraction "
               "of the image side. Dive into Deep Learning's \"Multiscale Object Detection\" section uses sizes "
               "0.15, 0.4 and 0.8.")


def network_ui() -> Tuple[str, int]:
    """An architecture (SSD300 first) and its input size."""
    names = list(architectures())
    a1, a2 = st.columns([2, 1])
    arch = a1.selectbox("Architecture", names, index=names.index("ssd_300_vgg16_atrous")
                        if "ssd_300_vgg16_atrous" in names else 0, persist_state="session", key="learn_ms_arch")
    default_size = recipe_for(arch).native_size
    size = int(a2.number_input("Input size (px)", 64, 1024, default_size, 8,
                               persist_state="session", key=f"learn_ms_input::{arch}"))
    return arch, size


def network_panel() -> None:
    """Every predicting layer's share of a whole network's anchors; stops the page on a bad size."""
    st.subheader("Anchors per layer of a whole network")
    arch, size = network_ui()
    try:
        aset = _anchors(arch, size)
    except (SSDError, ValueError) as err:
        st.error(f"{arch} cannot take a {size}×{size} input: {md_escape(err)}")
        st.stop()
    t1, t2 = st.columns([1, 2])
    t1.metric("Anchors in all", aset.total())
    t1.caption(count_formula(aset))
    t2.dataframe(pd.DataFrame(layer_table(aset)), hide_index=True, width="stretch")
    st.caption("Each predicting layer contributes (feature-map cells) × (anchors per cell); the network predicts a "
               "class score vector and four offsets for every one of them.")


def main() -> None:
    st.title("Multiscale anchors")
    st.markdown("SSD predicts from several feature maps. A coarse map has few cells, so its anchors can be large "
                "and see large objects; a fine map has many small anchors for small objects. The anchors below "
                "come from MXNet's `MultiBoxPrior`, the operator the networks use.")
    d2l_panel()
    network_panel()


main()
