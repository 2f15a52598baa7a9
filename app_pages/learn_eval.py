"""Learn · Evaluation on one image: TP, FP and FN at a confidence and IoU, and where that sits on the PR curve."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import _learn
from app_pages import _shared as sh
from ssd.base.errors import SSDError
from ssd.inference.thresholds import DEFAULT_NMS, EVAL_FLOOR
from ssd.viz.image_eval import counts_table, match_detections, operating_point
from ssd.viz.learn import image_eval_figure, pr_operating_figure
from ssd.workspace import dataset_choices, folder_stamp, model_key

st.title("Evaluation on one image")
st.markdown("A detection is a **true positive** when it overlaps a not-yet-claimed object of its class by at least "
            "the IoU threshold (higher scores claim first), otherwise a **false positive**; an object no detection "
            "claims is a **false negative**. This is the VOC rule the mAP below uses.")

c1, c2 = st.columns(2)
with c1:
    path, meta = _learn.model_choice("learn_eval_model")
if path is None:
    st.stop()
choices = dataset_choices(meta)
which = c2.selectbox("Images from", list(choices), key="learn_eval_source")
folder = choices[which]
limit = int(c2.number_input("Images of the split to evaluate", 4, 500, 32, 4, key="learn_eval_limit"))
s1, s2, s3 = st.columns(3)
confidence = s1.slider("Confidence", 0.01, 0.99, 0.5, 0.01, key="learn_eval_conf")
iou = s2.slider("IoU threshold", 0.1, 0.9, 0.5, 0.05, key="learn_eval_iou")
stamp = folder_stamp(folder) if folder else 0.0
try:
    split = _learn.split_detections(*model_key(path), folder, stamp, limit, DEFAULT_NMS, EVAL_FLOOR)
except SSDError as err:
    st.error(str(err))
    st.stop()
if not split.detections:
    st.warning("This split has no image that could be read.")
    st.stop()
index = int(s3.number_input("Image", 1, len(split.detections), 1, key="learn_eval_index")) - 1
ds = _learn.split_of(folder, stamp, tuple(split.classes))
image = ds[split.indices[index]][0]
ids, scores, boxes = split.detections[index]
gcls, gboxes = split.ground_truth[index]
keep = scores >= confidence
match = match_detections(ids[keep], scores[keep], boxes[keep], gcls, gboxes, iou)
f1, f2 = st.columns([3, 2])
with f1:
    labels = [f"{split.classes[int(c)]} {s:.2f}" for c, s in zip(ids[keep], scores[keep])]
    sh.figure(image_eval_figure(image, boxes[keep], labels, match, gboxes))
with f2:
    m1, m2, m3 = st.columns(3)
    m1.metric("TP", match.tp)
    m2.metric("FP", match.fp)
    m3.metric("FN", match.fn)
    st.caption(f"{int(keep.sum())} detection(s) shown = TP + FP; {len(gcls)} object(s) = TP + FN.")
    rows = counts_table(match, ids[keep], split.classes)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

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
