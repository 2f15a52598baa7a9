"""The Detect page's "ready-made detectors" panel: pretrained SSDs, live sources first, one button each.

Not a page (``st.navigation`` lists the pages). The pull itself is ``ssd.store.pull_model``, the
same call as ``python -m ssd models pull NAME``; this module only lays out the list, shows the
download's progress and selects the model when it lands.
"""
from __future__ import annotations

import time

import streamlit as st

from ssd.base.errors import SSDError, error_gist
from ssd.base.text import md_escape
from ssd.models.pretrained import LiveDetector, pretrained_detectors
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
        st.error(md_escape(err), icon=":material/cloud_off:")
        return
    except OSError as err:      # the models folder cannot take it (full disk, no permission)
        bar.empty()
        st.error(md_escape(f"{name} could not be installed in {root}: {error_gist(err)}"), icon=":material/error:")
        return
    bar.progress(1.0, text=f"{name} installed")
    st.session_state[select_key] = result.path
    st.session_state["pretrained_pulled"] = name
    st.rerun()


def pretrained_panel(root: str, select_key: str, expanded: bool = True) -> None:
    """Pullable detectors with a "Download" button each: the live sources' first (torchvision's,
    converted exactly), then GluonCV's, whose store is gone (they need a mirror or ~/.mxnet/models)."""
    entries = pretrained_detectors()
    live = [d for d in entries if isinstance(d, LiveDetector)]
    with st.expander("Real-world detectors pretrained on COCO (80 classes) or Pascal VOC (20)",
                     expanded=expanded, icon=":material/download:"):
        st.caption("Animals (bird, cat, dog, horse, sheep, cow, elephant, bear, zebra, giraffe), people and "
                   "vehicles, ready to use. One download each (hash checked); speed is per image on a 2-core "
                   "CPU at the model's native size.")
        st.markdown("**From torchvision** (download.pytorch.org, BSD-3-Clause), converted exactly:")
        for d in live:
            _row(root, d, select_key)
        st.markdown("**From GluonCV's model store** (Apache-2.0): unreachable since February 2024; these "
                    "work with a mirror (`MXNET_GLUON_REPO`) or the files already in `~/.mxnet/models`.")
        for d in entries:
            if d not in live:
                _row(root, d, select_key)


def _row(root: str, d, select_key: str) -> None:
    """One detector: two columns, not five, so the button keeps room for its whole label, and on a
    phone the detector reads as its name, its facts and its button."""
    c1, c2 = st.columns([5, 2], vertical_alignment="center")
    c1.markdown(f"**{md_escape(d.name)}**  \n{len(d.classes())} {md_escape(d.dataset)} classes · "
                f"{md_escape(d.metric)} {md_escape(d.published)} · {d.params_mb:.0f} MB · ~{d.cpu_s:.2f} s/image")
    if c2.button("Download", key=f"pull::{d.name}", icon=":material/download:", width="stretch"):
        _pull(root, d.name, select_key)


def offer_markdown() -> str:
    """The pullable detectors in a few Markdown lines for the Home page: live sources first."""
    lines = []
    for d in pretrained_detectors():
        live = isinstance(d, LiveDetector)
        where = d.source if live else "GluonCV's store, gone since February 2024: needs a mirror or ~/.mxnet/models"
        lines.append(f"- `{d.name}`: {d.dataset} {d.metric} {d.published}, ~{d.cpu_s:.2f} s/image ({where})")
    return "\n".join(lines)
