"""Learn · Evaluation on one image: TP, FP and FN at a confidence and IoU, and where that sits on the PR curve.

Read from the bottom: ``main()`` takes the model, split and thresholds, detects once on the split,
then shows one image's matches and the whole split's precision-recall curves.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import pandas as pd
import streamlit as st

from app_pages import _learn
from app_pages import _shared as sh
from ssd.base.text import md_escape, plain_text
from ssd.base.errors import SSDError
from ssd.inference.thresholds import DEFAULT_NMS, EVAL_FLOOR
from ssd.viz.image_eval import SplitDetections, image_eval, operating_point, start_image
from ssd.viz.learn import image_eval_figure, pr_operating_figure
from ssd.workspace import SCENES, dataset_choices, folder_stamp, model_key


def source_ui() -> Tuple[str, Optional[str], int]:
    """``(model path, dataset folder or None for the synthetic samples, images to evaluate)``;
    stops the page without a model."""
    c1, c2 = st.columns(2)
    with c1:
        path, meta = _learn.model_choice("learn_eval_model")
    if path is None:
        st.stop()
    choices = dataset_choices(meta, scenes=True)
    which = c2.selectbox("Images from", list(choices),
                         persist_state="session", key="learn_eval_source", format_func=plain_text)
    limit = int(c2.number_input("Images of the split to evaluate", 4, 500, 32, 4,
                                persist_state="session", key="learn_eval_limit"))
    return path, choices[which], limit


def thresholds_ui() -> Tuple[float, float, Any]:
    """``(confidence, IoU threshold, the column the image picker goes in)``."""
    s1, s2, s3 = st.columns(3)
    confidence = s1.slider("Confidence", 0.01, 0.99, 0.5, 0.01, persist_state="session", key="learn_eval_conf")
    iou = s2.slider("IoU threshold", 0.1, 0.9, 0.5, 0.05, persist_state="session", key="learn_eval_iou")
    return confidence, iou, s3


def image_ui(col, split: SplitDetections, source: tuple, confidence: float, iou: float) -> int:
    """The image picker, opening (for each model and split) on an image that shows as many of TP, FP
    and FN as the split has (``start_image``) rather than on whichever came first."""
    opened = st.session_state.get("learn_eval_opened")
    if opened != source or not 1 <= st.session_state.get("learn_eval_index", 0) <= len(split.detections):
        st.session_state["learn_eval_index"] = start_image(split, confidence, iou) + 1
        st.session_state["learn_eval_opened"] = source
    return int(col.number_input("Image", 1, len(split.detections), persist_state="session", key="learn_eval_index")) - 1


def split_detections(path: str, folder: Optional[str], stamp: float, limit: int) -> SplitDetections:
    """Every candidate on the split's first ``limit`` images (cached); stops the page when none."""
    try:
        split = _learn.split_detections(*model_key(path), folder, stamp, limit, DEFAULT_NMS, EVAL_FLOOR)
    except SSDError as err:
        st.error(md_escape(err))
        st.stop()
    if not split.detections:
        st.warning("This split has no image that could be read.")
        st.stop()
    return split


def image_panel(path: str, split: SplitDetections, folder: Optional[str], stamp: float, index: int,
                confidence: float, iou: float) -> None:
    """One image with its TP / FP / FN drawn and counted."""
    ds = _learn.split_of(folder, stamp, tuple(split.classes), _learn.held_out(sh.get_detector(path).meta))
    image = ds[split.indices[index]][0]
    ev = image_eval(split, index, confidence, iou)
    f1, f2 = st.columns([3, 2])
    with f1:
        sh.figure(image_eval_figure(image, ev.boxes, ev.labels, ev.match, ev.gt_boxes))
    with f2:
        m1, m2, m3 = st.columns(3)
        m1.metric("TP", ev.match.tp)
        m2.metric("FP", ev.match.fp)
        m3.metric("FN", ev.match.fn)
        st.caption(f"{len(ev.class_ids)} detection(s) shown = TP + FP; {len(ev.match.gt_classes)} object(s) = TP + FN.")
        rows = ev.counts(split.classes)
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def split_panel(path: str, folder: Optional[str], stamp: float, limit: int, split: SplitDetections,
                confidence: float, iou: float) -> None:
    """The split's mAP and PR curves, with the point the confidence picks on each."""
    st.subheader("The whole split")
    result = _learn.split_evaluation(*model_key(path), folder, stamp, limit, DEFAULT_NMS, EVAL_FLOOR, iou)
    points = operating_point(split, confidence, iou)
    p1, p2 = st.columns([3, 2])
    with p1:
        sh.figure(pr_operating_figure(result, points, confidence))
    with p2:
        st.metric("mAP (VOC07, 11-point)", f"{result.map:.3f}", help=f"{result.num_images} images, {result.num_boxes} boxes")
        st.dataframe(pd.DataFrame([{"class": c, "AP": None if ap != ap else round(ap, 4),
                                    "precision @ conf": round(points[c]["precision"], 3),
                                    "recall @ conf": round(points[c]["recall"], 3)}
                                   for c, ap in result.per_class_ap.items()]), hide_index=True, width="stretch")
        st.caption("AP integrates precision over recall for every confidence (candidates down to "
                   f"{EVAL_FLOOR:g}); the dot is the single point your confidence picks on that curve.")


def main() -> None:
    st.title("Evaluation on one image")
    st.markdown("A detection is a **true positive** when it overlaps a not-yet-claimed object of its class by at "
                "least the IoU threshold (higher scores claim first), otherwise a **false positive**; an object no "
                "detection claims is a **false negative**. This is the VOC rule the mAP below uses.")
    path, folder, limit = source_ui()
    confidence, iou, image_col = thresholds_ui()
    stamp = folder_stamp(folder) if folder and folder != SCENES else 0.0
    split = split_detections(path, folder, stamp, limit)
    index = image_ui(image_col, split, (path, folder, limit), confidence, iou)
    image_panel(path, split, folder, stamp, index, confidence, iou)
    split_panel(path, folder, stamp, limit, split, confidence, iou)


main()
