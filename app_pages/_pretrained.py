"""The Detect page's "ready-made detectors" panel: GluonCV's pretrained SSDs, one button each.

Not a page (``st.navigation`` lists the pages). The pull itself is ``ssd.store.pull_model``, the
same call as ``python -m ssd models pull NAME``; this module only lays out the list, shows the
download's progress and selects the model when it lands.
"""
from __future__ import annotations

import time

import streamlit as st

from ssd.base.errors import SSDError
from ssd.base.text import md_escape
from ssd.models.pretrained import pretrained_detectors
from ssd.store import pull_model


def _progress_bar(label: str):
    """A ``progress(done, total)`` callback drawing an ``st.progress`` bar, at most ~5 updates a second."""
    bar = st.progress(0.0, text=f"{label}: connecting…")
    last = [0.0]

    def update(done: int, total) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and not (total and done >= total):
            return
        last[0] = now
        if total:
            bar.progress(min(1.0, done / total), text=f"{label}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        else:
            bar.progress(0.0, text=f"{label}: {done / 1e6:.1f} MB")

    return bar, update


def _pull(root: str, name: str, select_key: str) -> None:
    """Download and install ``name``, then select it in the model picker and rerun the page."""
    bar, update = _progress_bar(f"Downloading {name}")
    try:
        result = pull_model(name, root, progress=update)
    except SSDError as err:
        bar.empty()
        st.error(str(err), icon=":material/cloud_off:")
        return
    bar.progress(1.0, text=f"{name} installed")
    st.session_state[select_key] = result.path
    st.session_state["pretrained_pulled"] = name
    st.rerun()


def pretrained_panel(root: str, select_key: str, expanded: bool = True) -> None:
    """A list of pullable detectors with a "Download" button each (needs internet, or the weights in
    GluonCV's store, ``~/.mxnet/models``)."""
    with st.expander("Real-world detectors: GluonCV's SSDs pretrained on COCO (80 classes) or Pascal VOC (20)",
                     expanded=expanded, icon=":material/download:"):
        st.caption("Animals (bird, cat, dog, horse, sheep, cow, elephant, bear, zebra, giraffe), people and "
                   "vehicles, ready to use. One download each (SHA-1 checked, Apache-2.0 weights); speed is "
                   "per image on a 2-core CPU at the model's native size.")
        for d in pretrained_detectors():
            # two columns, not five: the button keeps room for its whole label, and on a phone each
            # detector reads as its name, its facts and its button
            c1, c2 = st.columns([5, 2], vertical_alignment="center")
            c1.markdown(f"**{md_escape(d.name)}**  \n{len(d.classes())} {md_escape(d.dataset)} classes · "
                        f"{md_escape(d.metric)} {md_escape(d.published)} · {d.params_mb:.0f} MB · "
                        f"~{d.cpu_s:.2f} s/image")
            if c2.button("Download", key=f"pull::{d.name}", icon=":material/download:", width="stretch"):
                _pull(root, d.name, select_key)
