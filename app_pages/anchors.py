"""Anchors: the boxes SSD predicts from, per feature map and cell, and which of them a box trains."""
from __future__ import annotations


import numpy as np
import pandas as pd
import streamlit as st

from app_pages import _shared as sh
from ssd.base.text import md_escape
from ssd.models.anchors import format_groups, parse_groups
from ssd.models.tiny import TINY_RATIOS, TINY_SIZES, tiny_anchor_config
from ssd.models.anchor_set import anchor_coverage, anchor_set, best_anchor_cell, cell_anchor_rows, positive_rows
from ssd.base.errors import SSDError
from ssd.data.images import SUPPORTED_EXTENSIONS, load_image
from ssd.viz.plots import cell_anchors_figure, coverage_figure, positives_figure
from ssd.workspace import data_dir, dataset_choices, dataset_labels, demo_sample_index, gt_boxes_of
from ssd.models.targets import positive_anchors
from ssd.inference.worker import on_worker

st.title("Anchors")
st.markdown("Every cell of every feature map carries a few anchor boxes (TinySSD: *n + m − 1* for n sizes and "
            "m aspect ratios). "
            "Training matches ground-truth boxes to anchors; detection shifts and scores them.")

root, ok, broken, default_path = sh.list_models()

with st.sidebar:
    st.header("Anchor configuration")
    sources = (["Selected model"] if ok else []) + ["Custom"]
    source = st.radio("Anchors of", sources, key="anchors_source", horizontal=True)
    meta = None
    aset = None
    if source == "Selected model":
        path = sh.model_picker("Model", ok, default_path, key="anchors_model")
        meta = next(m.meta for m in ok if m.path == path)
        try:
            aset = sh.model_anchors(path, meta)
        except Exception as err:  # noqa: BLE001 - an odd saved model must not break the page
            st.error(f"The anchors of this model cannot be computed: {err}")
            st.stop()
        st.caption(f"**{md_escape(meta.get('arch'))}** at {aset.input_size}×{aset.input_size}"
                   + (" — GluonCV model-zoo anchors" if aset.kind == "gluoncv" else ""))
        st.caption("Choose *Custom* to edit TinySSD anchors.")
    else:
        st.caption("TinySSD with your own anchor sizes and ratios.")
        input_size = int(st.number_input("Input size (px)", 64, 1024, 256, 8, key="anchors_input"))
        sizes_text = st.text_input("Sizes per feature map (groups separated by ';')",
                                   format_groups(TINY_SIZES), key="anchors_sizes",
                                   help="Fractions of the image side; one group per feature map.")
        ratios_text = st.text_input("Aspect ratios (one group for all maps, or one per map)",
                                    format_groups(TINY_RATIOS[:1]), key="anchors_ratios")
        try:
            sizes, ratios = parse_groups(sizes_text), parse_groups(ratios_text)
            aset = on_worker(anchor_set, tiny_anchor_config(input_size, sizes, ratios), input_size)  # MXNet op
        except (ValueError, SSDError) as err:
            st.error(f"This anchor configuration cannot be used: {err}")
            st.stop()
input_size = aset.input_size

# ---------------------------------------------------------------- counts
m1, m2, m3 = st.columns(3)
m1.metric("Total anchors", aset.total())
m2.metric("Feature maps", aset.num_scales)
m3.metric("Input size", f"{input_size}×{input_size}")
with st.expander("Anchors per feature map", expanded=True):
    st.dataframe(pd.DataFrame(aset.rows), hide_index=True, width="stretch")
    st.caption(f"Total: {' + '.join(str(n) for n in aset.counts())} = **{aset.total()}** anchors. "
               "A map's cell is its stride in input pixels.")

# ---------------------------------------------------------------- image
samples = sh.samples(8, 0, data_dir())
st.subheader("Anchors of one cell")
pick_col, upload_col = st.columns([1, 2])
names = [s.name for s in samples]
demo = demo_sample_index(samples)
sample_name = pick_col.selectbox("Sample image (synthetic, with its ground-truth box)", names, index=demo,
                                 key="anchors_sample")
upload = upload_col.file_uploader("…or your own image (no ground truth)", type=list(SUPPORTED_EXTENSIONS),
                                  key="anchors_upload")
gt_label = None
image = None
if upload is not None:
    try:
        image = np.asarray(load_image(upload.getvalue(), upload.name, draft_to=1024).image)
    except SSDError as err:
        st.error(str(err))
if image is None:
    sample = samples[names.index(sample_name)]
    image, gt_label = sample.array(), sample.label
gt_boxes = gt_label[gt_label[:, 0] >= 0][:, 1:5] if gt_label is not None else None

# default cell: the one holding the anchor that fits the ground truth best
_mid = 1 if aset.num_scales > 1 else 0
best = best_anchor_cell(aset, gt_boxes[0]) if gt_boxes is not None and len(gt_boxes) else (
    _mid, *(v // 2 for v in aset.feature_maps[_mid]))


def _jump_to_best() -> None:
    st.session_state["anchors_scale"] = best[0]
    st.session_state[f"anchors_row::{best[0]}"] = best[1]
    st.session_state[f"anchors_col::{best[0]}"] = best[2]


c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
scale_ids = list(range(aset.num_scales))
if st.session_state.get("anchors_scale") not in scale_ids:
    st.session_state["anchors_scale"] = best[0]
scale = c1.selectbox("Feature map", scale_ids, key="anchors_scale",
                     format_func=lambda i: f"{i}: {aset.feature_maps[i][0]}×{aset.feature_maps[i][1]} "
                                           f"({aset.anchors_per_cell(i)} anchors per cell)")
fh, fw = aset.feature_maps[scale]
default_rc = (best[1], best[2]) if best[0] == scale else (fh // 2, fw // 2)
row_key, col_key = f"anchors_row::{scale}", f"anchors_col::{scale}"
for k, lim, dflt in ((row_key, fh - 1, default_rc[0]), (col_key, fw - 1, default_rc[1])):
    if not isinstance(st.session_state.get(k), int) or not 0 <= st.session_state[k] <= lim:
        st.session_state[k] = dflt
row = int(c2.number_input("Row", 0, fh - 1, key=row_key))
col = int(c3.number_input("Column", 0, fw - 1, key=col_key))
show_centres = c4.checkbox("All cell centres", key="anchors_centres")
if gt_boxes is not None:
    c4.button("Best cell for the box", on_click=_jump_to_best, key="anchors_best")

rows = cell_anchor_rows(aset, scale, row, col, gt_boxes)
ious = [r["IoU"] for r in rows] if gt_boxes is not None and len(gt_boxes) else None
f1, f2 = st.columns([3, 2])
with f1:
    sh.figure(cell_anchors_figure(image, aset, scale, row, col, show_centres, gt_boxes, ious))
with f2:
    st.metric("Anchors in this cell", len(rows))
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"Cell ({row}, {col}) of the {fh}×{fw} map covers {input_size / fw:.0f}×{input_size / fh:.0f} "
               "input pixels around the red dot. A ratio r makes an anchor √r times wider and √r times shorter "
               "than a square of its size (s: fraction of the image side). Anchors are normalized to the square "
               "network input, so on a non-square image they stretch as the image does.")

# ---------------------------------------------------------------- matching
st.subheader("Matching: which anchors learn this box")
if gt_boxes is None or not len(gt_boxes):
    st.info("Pick a synthetic sample to see matching: uploads have no ground-truth box.")
else:
    thr = st.slider("Overlap threshold (IoU) for a positive anchor", 0.1, 0.9, 0.5, 0.05, key="anchors_thr")
    positives = on_worker(positive_anchors, aset, gt_label, thr)   # MXNet's MultiBoxTarget, on the one thread
    g1, g2 = st.columns([3, 2])
    with g1:
        sh.figure(positives_figure(image, aset, positives, gt_boxes))
    with g2:
        st.metric("Positive anchors", len(positives))
        st.dataframe(pd.DataFrame(positive_rows(aset, positives, gt_boxes)), hide_index=True,
                     width="stretch", height=300)
        st.caption("MXNet's MultiBoxTarget (the training target assignment): an anchor is positive when its IoU "
                   "with a box reaches the threshold, and each box also claims its single best anchor. All other "
                   "anchors learn 'background'.")

# ---------------------------------------------------------------- coverage
st.subheader("Coverage of a validation set")
choices = dataset_choices(meta)
which = st.selectbox("Boxes from", list(choices), key="anchors_cov_source")
cov_thr = st.slider("IoU a box's best anchor should reach", 0.1, 0.9, 0.5, 0.05, key="anchors_cov_thr")
try:
    if choices[which] is None:
        labels, split = [s.label for s in sh.samples(32, 0, data_dir())], "val"
    else:
        labels, split = dataset_labels(choices[which])
    gts = gt_boxes_of(labels)
    share, best_ious = anchor_coverage(aset, gts, cov_thr)
    k1, k2 = st.columns([1, 2])
    k1.metric("Boxes covered", f"{share:.0%}", help=f"{len(gts)} boxes of the {split} split")
    k1.caption("A box no anchor overlaps well is only matched through the best-anchor rule and is hard to "
               "learn: adjust sizes and ratios (Custom) until most boxes are covered.")
    with k2:
        sh.figure(coverage_figure(best_ious, cov_thr, f"{which}: {len(gts)} boxes ({split})"))
except SSDError as err:
    st.error(str(err))
