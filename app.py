"""SSD Studio: ``streamlit run app.py``.

This file only lists the pages (``app_pages/``, one file each, ``main()`` at its bottom); pages only
lay out widgets, and every computation is a call into the ``ssd`` library.
Configuration: ``SSD_MODELS_DIR`` (default ``models/``) and ``SSD_DATA_DIR`` (default ``data/``).
"""
from __future__ import annotations

import os
import sys

import streamlit as st

_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from ssd.base.engine import configure_once  # noqa: E402
from ssd.base.memory import freeze_after_imports, limit_malloc_arenas, release_free_memory  # noqa: E402

configure_once("app")     # before any page imports MXNet: its engine, and oneDNN's AMX where Linux grants it

limit_malloc_arenas(2)    # each rerun is a new thread: without this, each could keep its own arena resident

# The icon ships with the app: a ":material/…:" page icon makes the browser fetch it from a font CDN.
PAGE_ICON = os.path.join(_ROOT, "app_assets", "icon.png")
st.set_page_config(page_title="SSD Studio", page_icon=PAGE_ICON, layout="wide")


pg = st.navigation({"": [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/detect.py", title="Detect", icon=":material/image_search:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/anchors.py", title="Anchors", icon=":material/anchor:"),
    st.Page("app_pages/camera_traps.py", title="Camera traps", icon=":material/photo_camera:"),
], "Learn": [
    st.Page("app_pages/learn_anchors.py", title="Multiscale anchors", icon=":material/grid_on:"),
    st.Page("app_pages/learn_losses.py", title="Losses", icon=":material/show_chart:"),
    st.Page("app_pages/learn_nms.py", title="NMS step by step", icon=":material/filter_alt:"),
    st.Page("app_pages/learn_eval.py", title="Evaluation on one image", icon=":material/fact_check:"),
]})
pg.run()
freeze_after_imports()    # the libraries out of the garbage collector's full passes (130-240 ms each)
release_free_memory()     # what this run freed (decoded uploads, figures) leaves the process

if os.environ.get("SSD_MEMORY_REPORT"):      # scripts/bench_memory.py: the bounded caches' sizes after each run
    from app_pages._shared import cache_report

    cache_report(os.environ["SSD_MEMORY_REPORT"])
