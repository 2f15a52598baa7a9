"""Learn · Non-maximum suppression step by step: the candidates, then each kept box and what it suppresses.

Read from the bottom: ``main()`` takes the model, image and thresholds, traces NMS, then shows
the counts, one step, and the check against the Detector's own output.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import pandas as pd
import streamlit as st

from app_pages import _learn
from app_pages import _shared as sh
from ssd.base.text import md_escape
from ssd.base.errors import SSDError
from ssd.inference.thresholds import DEFAULT_NMS
from ssd.viz.learn import nms_step_figure
from ssd.viz.nms_steps import NMSTrace, same_detections
from ssd.workspace import Sample


def settings_ui() -> Tuple[str, dict, Sample, float, float]:
    """``(model path, its meta, image, score floor, NMS threshold)``; stops the page without a model."""
    path, meta, sample = _learn.model_and_sample(*st.columns(2), "learn_nms")
    s1, s2 = st.columns(2)
    floor = s1.slider("Floor: candidates need at least this score", 0.01, 0.9, 0.05, 0.01,
                      persist_state="session", key="learn_nms_floor")
    nms = s2.slider("NMS threshold (IoU)", 0.05, 0.95, DEFAULT_NMS, 0.05, persist_state="session", key="learn_nms_iou")
    return path, meta, sample, floor, nms


def trace_of(path: str, sample: Sample, nms: float, floor: float) -> NMSTrace:
    """The traced NMS (cached); stops the page for a network without multibox heads."""
    try:
        return _learn.trace(path, sample, nms, floor)
    except SSDError as err:
        st.info(md_escape(err))
        st.stop()


def counts_panel(trace: NMSTrace) -> None:
    """Candidates, those entering NMS, those kept; stops the page when no candidate is left."""
    k1, k2, k3 = st.columns(3)
    k1.metric("Candidates above the floor", trace.num_candidates)
    k2.metric("Entering NMS", trace.num_entering, help="MultiBoxDetection keeps the 400 best-scoring candidates.")
    k3.metric("Kept after NMS", len(trace.steps))
    if not trace.steps:
        st.info("No candidate reaches the floor: lower it.")
        st.stop()


def step_ui(trace: NMSTrace, classes: List[str]) -> Tuple[Optional[int], int]:
    """``(class or None for all, step index)``: NMS runs per class, so a class first when there are several."""
    present = sorted({int(c) for c in trace.class_ids})
    class_id = None
    if len(classes) > 1:
        if st.session_state.get("learn_nms_class") not in present:
            st.session_state.pop("learn_nms_class", None)       # a class this image has no box of
        pick = st.selectbox("Class (NMS runs per class)", present, format_func=lambda c: classes[c],
                            persist_state="session", key="learn_nms_class")
        class_id = int(pick)
    steps = trace.steps if class_id is None else trace.steps_of_class(class_id)
    step = 0
    if len(steps) > 1:
        key = f"learn_nms_step::{class_id}"
        if not isinstance(st.session_state.get(key), int) or not 1 <= st.session_state[key] <= len(steps):
            st.session_state[key] = 1           # a new image or class, with fewer steps than the one shown before
        step = st.slider("Step", 1, len(steps), persist_state="session", key=key) - 1
    return class_id, step


def step_panel(trace: NMSTrace, sample: Sample, classes: List[str], class_id: Optional[int], step: int) -> None:
    """The step drawn, and the boxes it suppresses with their IoU."""
    steps = trace.steps if class_id is None else trace.steps_of_class(class_id)
    f1, f2 = st.columns([3, 2])
    with f1:
        sh.figure(nms_step_figure(sample.array(), trace, step, classes, class_id))
    with f2:
        cur = steps[step]
        kept_class = md_escape(classes[int(trace.class_ids[cur.kept])])     # a name from the training set
        st.markdown(f"**Step {step + 1} of {len(steps)}**: keeps a **{kept_class}** box "
                    f"scoring {trace.scores[cur.kept]:.3f} and suppresses {len(cur.suppressed)}.")
        if cur.suppressed:
            st.dataframe(pd.DataFrame([{"suppressed box score": round(float(trace.scores[j]), 3),
                                        "IoU with kept": round(iou, 3)} for j, iou in cur.suppressed]),
                         hide_index=True, width="stretch", height=sh.table_height(len(cur.suppressed)))
        st.caption("Green thick: the box kept at this step. Green thin: kept earlier. Red dashed: suppressed now, "
                   "with its IoU. Grey: candidates still waiting.")


def detector_check_panel(path: str, sample: Sample, trace: NMSTrace, nms: float, floor: float) -> None:
    """Whether the kept boxes are exactly what the Detector returns for the same image and settings."""
    final = trace.final()
    ref = _learn.detected(path, sample, nms, floor)  # MXNet's Detector, cached on what it depends on
    same = same_detections(final, ref)
    (st.success if same else st.error)(
        f"The kept boxes ({len(final[0])}) are {'exactly' if same else 'NOT'} what the Detector returns for this "
        f"image at floor {floor:g} and NMS {nms:g} ({len(ref[0])} detection(s)).")


def main() -> None:
    st.title("Non-maximum suppression, step by step")
    st.markdown("The network scores every anchor, so one object gets many overlapping candidate boxes. NMS visits "
                "the candidates by descending score: each box not yet suppressed is kept and suppresses every later "
                "box of the same class that overlaps it by at least the NMS threshold (IoU).")
    path, meta, sample, floor, nms = settings_ui()
    trace = trace_of(path, sample, nms, floor)
    classes = list(meta["classes"])
    counts_panel(trace)
    class_id, step = step_ui(trace, classes)
    step_panel(trace, sample, classes, class_id, step)
    detector_check_panel(path, sample, trace, nms, floor)


main()
