"""The Camera traps page's "Episode gap" and "Camera folder" of an open results file: its
episodes seen at another gap or camera level (as Timelapse lets one pick the gap when viewing).

Only widgets here: the regrouping is ``ssd.camtrap.episodes.regrouped``, ``regroup_episodes``
(the CLI's ``results summary|sort|export --episode-gap --camera-depth``) on a copy, so the file
read once per version and shared by every rerun and session is never changed, nor the file on
disk. The copy is cached per (file version, path prefix, gap, rule): a slider move reuses it.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import streamlit as st

from app_pages import _shared as sh
from ssd.base.memory import freeze_loaded_data
from ssd.camtrap.cameras import CAMERA_DEPTH_CHOICES, CameraRule, depth_of, describe_depth, file_camera_rule
from ssd.camtrap.episodes import file_gap, regrouped

MIN_GAP, MAX_GAP = 1.0, 86400.0        # Timelapse offers 1 s to 30 min; a day groups visits per day
GAP_KEY, DEPTH_KEY, FOR_KEY = "ct_rg_gap", "ct_rg_depth", "ct_rg_file"


@st.cache_resource(show_spinner="Grouping the episodes again…", max_entries=2)
def _regrouped(path: str, stamp: Tuple[int, int], path_prefix: str, gap: float, depth: Optional[int]) -> dict:
    """Shared like the document it copies (``sh.results_doc``, also keyed by the file's version):
    never changed by its readers."""
    doc = regrouped(sh.results_doc(path, path_prefix), gap, CameraRule(depth))
    freeze_loaded_data()              # held like the file: out of the collector's full passes
    return doc


def _defaults(doc: Dict[str, Any], source: tuple) -> None:
    """The file's own gap and rule, set when another file (or version of its settings) is opened."""
    ss = st.session_state
    if ss.get(FOR_KEY) != source:
        ss[FOR_KEY] = source
        ss[GAP_KEY] = min(MAX_GAP, max(MIN_GAP, file_gap(doc)))
        ss[DEPTH_KEY] = file_camera_rule(doc).recorded()


def episode_controls(doc: Dict[str, Any], results_path: str, path_prefix: str,
                     stamp: Tuple[int, int]) -> Dict[str, Any]:
    """The two controls, defaulting to what the file records; the document to show: ``doc`` itself
    at the file's own settings, else its regrouped copy."""
    recorded_gap, recorded = file_gap(doc), file_camera_rule(doc)
    _defaults(doc, (results_path, path_prefix, recorded_gap, recorded.depth))
    choices = list(CAMERA_DEPTH_CHOICES)
    for choice in (recorded.recorded(), st.session_state.get(DEPTH_KEY)):
        if choice not in choices:           # a depth the file records beyond the usual ones
            choices.append(choice)
    g1, g2 = st.columns([1, 2.4])       # the longest camera rule whole at 1280 px, sidebar open
    gap = float(g1.number_input("Episode gap (s)", MIN_GAP, MAX_GAP, step=10.0, key=GAP_KEY, persist_state="session",
                                help="Frames of one camera at most this far apart form one episode. The file is "
                                     "not changed: counts, episode rows, sorting and exports use this grouping."))
    depth = depth_of(g2.selectbox("Camera folder", choices, format_func=describe_depth, key=DEPTH_KEY,
                         persist_state="session",
                         help="Which folder is one camera, for episodes and Camtrap DP deployments. Automatic: "
                              "site/cam/2024-05-01/100RECNX is camera site/cam."))
    if gap == recorded_gap and CameraRule(depth) == recorded:
        st.caption(f"As the file records: a gap of {recorded_gap:g} s, camera folder {recorded.describe()}.")
        return doc
    st.caption(f"Regrouped for this view and its downloads; the file records a gap of {recorded_gap:g} s, "
               f"camera folder {recorded.describe()}, and is not changed.")
    return _regrouped(results_path, stamp, path_prefix, gap, depth)
