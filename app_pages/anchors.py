"""Anchors: the boxes SSD predicts from, per feature map and cell, and which of them a box trains.

Read from the bottom: ``main()`` takes the anchors from the sidebar, then shows their counts, one
cell's anchors on an image, the matching of its box, and the coverage of a validation set.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import _shared as sh
from app_pages import _url
from ssd.base.text import md_escape, plain_text
from ssd.models.anchors import format_groups, parse_groups
from ssd.models.tiny import TINY_RATIOS, TINY_SIZES, book_anchors_note, tiny_anchor_config
from ssd.models.anchor_set import (AnchorSet, anchor_coverage, anchor_set, cell_anchor_rows, positive_rows,
                                   start_cell)
from ssd.base.errors import SSDError
from ssd.data.images import SUPPORTED_EXTENSIONS, load_image
from ssd.viz.plots import cell_anchors_figure, coverage_figure, positives_figure
from ssd.workspace import data_dir, dataset_choices, dataset_labels, demo_sample_index, gt_boxes_of, model_key
from ssd.models.targets import positive_anchors
from ssd.inference.batch import image_digest
from ssd.inference.worker import on_worker

Cell = Tuple[int, int, int]     # (feature map, row, column)
FROM_0 = ("Counted from 0, as the tutorials' arrays are: the MXNet Gluon tutorial's \"row 21, column 21\" "
          "(its boxes[20, 20]) is row 20, column 20 here.")
Key = tuple                     # names a set of anchors or an image, for the caches below
DEFAULT_INPUT, DEFAULT_SIZES, DEFAULT_RATIOS = 256, format_groups(TINY_SIZES), format_groups(TINY_RATIOS[:1])
DEFAULT_IOU = 0.5               # the matching and coverage thresholds' start (MultiBoxTarget's own default)
SOURCE_NAMES = {"Selected model": "model", "Custom": "custom"}     # in the address


def _groups_from_link(which: str) -> _url.Parse:
    """Sizes or ratios from a link: numbers TinySSD can take (rewritten as the page writes them,
    so nothing else of the link's text reaches the page), or None."""
    def parse(text: str) -> Optional[str]:
        groups = parse_groups(text)
        try:
            tiny_anchor_config(DEFAULT_INPUT, **{which: groups})
        except (ValueError, SSDError):
            return None
        return format_groups(groups)
    return parse


@st.cache_resource(show_spinner=False, max_entries=8)
def _custom_anchors(input_size: int, sizes_text: str, ratios_text: str) -> AnchorSet:
    """TinySSD anchors for typed sizes and ratios (MXNet's MultiBoxPrior, on the inference thread)."""
    return on_worker(anchor_set, tiny_anchor_config(input_size, parse_groups(sizes_text), parse_groups(ratios_text)),
                     input_size)


@st.cache_data(show_spinner=False, max_entries=32)
def _positives(anchors_key: Key, image_key: Key, thr: float, _aset: AnchorSet, _label: np.ndarray) -> np.ndarray:
    """MultiBoxTarget's positive anchors for an image's box (one MXNet call; cached by what it depends on)."""
    return on_worker(positive_anchors, _aset, _label, thr)


@st.cache_data(show_spinner=False, max_entries=16)
def _coverage(anchors_key: Key, source: str, thr: float, _aset: AnchorSet, _gts) -> Tuple[float, np.ndarray]:
    return anchor_coverage(_aset, _gts, thr)


def model_anchors_ui(ok, default_path: Optional[str]) -> Tuple[AnchorSet, dict, Key]:
    """A saved model's anchors, meta and cache key; stops the page if they cannot be computed."""
    path = sh.model_picker("Model", ok, default_path, key="anchors_model", url="model")
    meta = next(m.meta for m in ok if m.path == path)
    try:
        aset = sh.model_anchors(path, meta)
    except Exception as err:  # noqa: BLE001 - an odd saved model must not break the page
        st.error(f"The anchors of this model cannot be computed: {md_escape(err)}")
        st.stop()
    st.caption(f"**{md_escape(meta.get('arch'))}** at {aset.input_size}×{aset.input_size}"
               + (" — GluonCV model-zoo anchors" if aset.kind == "gluoncv" else ""))
    # the note holds numbers only (read as floats from meta.json), so it is Markdown as it stands
    st.caption(book_anchors_note(meta) or "Choose *Custom* to edit TinySSD anchors.")
    return aset, meta, ("model",) + tuple(model_key(path))


def custom_anchors_ui() -> Tuple[AnchorSet, Key]:
    """TinySSD with the sizes and ratios typed in, and their cache key; stops the page if they cannot be used."""
    st.caption("TinySSD with your own anchor sizes and ratios.")
    input_size = int(_url.synced("size", "anchors_input", _url.integer(64, 1024, 8), DEFAULT_INPUT, lambda: st.number_input(
        "Input size (px)", 64, 1024, DEFAULT_INPUT, 8, persist_state="session", key="anchors_input")))
    sizes_text = _url.synced("sizes", "anchors_sizes", _groups_from_link("sizes"), DEFAULT_SIZES, lambda: st.text_input(
        "Sizes per feature map (groups separated by ';')", DEFAULT_SIZES, persist_state="session", key="anchors_sizes",
        help="Fractions of the image side; one group per feature map. The tutorials' "
             "list notation works too: [[0.2, 0.272], [0.37, 0.447], …]."))
    ratios_text = _url.synced("ratios", "anchors_ratios", _groups_from_link("ratios"), DEFAULT_RATIOS, lambda: st.text_input(
        "Aspect ratios (one group for all maps, or one per map)", DEFAULT_RATIOS, persist_state="session",
        key="anchors_ratios", help="As the sizes: '1, 2, 0.5', or the book's [[1, 2, 0.5]] * 5."))
    try:
        return _custom_anchors(input_size, sizes_text, ratios_text), ("custom", input_size, sizes_text, ratios_text)
    except (ValueError, SSDError) as err:
        st.error(f"This anchor configuration cannot be used: {md_escape(err)}")
        st.stop()


def anchors_ui() -> Tuple[AnchorSet, Optional[dict], Key]:
    """The sidebar: a saved model's anchors or custom TinySSD ones; ``(anchors, the model's meta or None,
    their cache key)``."""
    _, ok, _, default_path = sh.list_models()
    with st.sidebar:
        st.header("Anchor configuration")
        sources = (["Selected model"] if ok else []) + ["Custom"]
        source = _url.synced("src", "anchors_source", _url.choice(sources, SOURCE_NAMES.get), sources[0],
                             lambda: st.radio("Anchors of", sources, persist_state="session", key="anchors_source",
                                              horizontal=True), SOURCE_NAMES.get)
        if source == "Selected model":
            return model_anchors_ui(ok, default_path)
        aset, key = custom_anchors_ui()
        return aset, None, key


def counts_panel(aset: AnchorSet) -> None:
    input_size = aset.input_size
    m1, m2, m3 = st.columns(3)
    m1.metric("Total anchors", aset.total())
    m2.metric("Feature maps", aset.num_scales)
    m3.metric("Input size", f"{input_size}×{input_size}")
    with st.expander("Anchors per feature map", expanded=True):
        st.dataframe(pd.DataFrame(aset.rows), hide_index=True, width="stretch")
        st.caption(f"Total: {' + '.join(str(n) for n in aset.counts())} = **{aset.total()}** anchors. "
                   "A map's cell is its stride in input pixels.")


def image_ui() -> Tuple[np.ndarray, Optional[np.ndarray], Key]:
    """``(image, its label or None, its cache key)``: a synthetic sample with its box, or an upload without one."""
    samples = sh.samples(8, 0, data_dir())
    pick_col, upload_col = st.columns([1, 2])
    names = [s.name for s in samples]
    first = demo_sample_index(samples)
    sample_name = _url.synced("sample", "anchors_sample", _url.choice(names), names[first], lambda: pick_col.selectbox(
        "Sample image (synthetic, with its ground-truth box)", names, index=first, persist_state="session",
        key="anchors_sample"))
    upload = upload_col.file_uploader("…or your own image (no ground truth)", type=list(SUPPORTED_EXTENSIONS),
                                      key="anchors_upload")
    if upload is not None:
        data = upload.getvalue()
        try:
            return np.asarray(load_image(data, upload.name, draft_to=1024).image), None, ("upload", image_digest(data))
        except SSDError as err:
            st.error(md_escape(err))        # the message names the upload: its name is text, not Markdown
    sample = samples[names.index(sample_name)]
    return sample.array(), sample.label, ("sample", sample.name)


def _jump_to(best: Cell) -> None:
    st.session_state["anchors_scale"] = best[0]
    st.session_state[f"anchors_row::{best[0]}"] = best[1]
    st.session_state[f"anchors_col::{best[0]}"] = best[2]


def cell_ui(aset: AnchorSet, gt_boxes: Optional[np.ndarray]) -> Tuple[Cell, bool]:
    """Feature map, row and column (opening on the box's best cell), and the centres toggle."""
    best = start_cell(aset, gt_boxes)
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
    scale_ids = list(range(aset.num_scales))
    _url.from_link("map", "anchors_scale", _url.choice(scale_ids))
    if st.session_state.get("anchors_scale") not in scale_ids:
        st.session_state["anchors_scale"] = best[0]
    scale = c1.selectbox("Feature map", scale_ids, persist_state="session", key="anchors_scale",
                         format_func=lambda i: f"{i}: {aset.feature_maps[i][0]}×{aset.feature_maps[i][1]} "
                                               f"({aset.anchors_per_cell(i)} anchors per cell)")
    _url.to_link("map", scale, best[0])
    fh, fw = aset.feature_maps[scale]
    default_rc = (best[1], best[2]) if best[0] == scale else (fh // 2, fw // 2)
    row_key, col_key = f"anchors_row::{scale}", f"anchors_col::{scale}"
    for name, k, lim, dflt in (("row", row_key, fh - 1, default_rc[0]), ("col", col_key, fw - 1, default_rc[1])):
        _url.from_link(name, k, _url.integer(0, lim))
        if not isinstance(st.session_state.get(k), int) or not 0 <= st.session_state[k] <= lim:
            st.session_state[k] = dflt          # a new map, or one smaller than the cell shown before
    row = int(c2.number_input("Row", 0, fh - 1, persist_state="session", key=row_key, help=FROM_0))
    col = int(c3.number_input("Column", 0, fw - 1, persist_state="session", key=col_key, help=FROM_0))
    _url.to_link("row", row, default_rc[0])
    _url.to_link("col", col, default_rc[1])
    show_centres = _url.synced("centres", "anchors_centres", _url.flag, False, lambda: c4.checkbox(
        "All cell centres", persist_state="session", key="anchors_centres"))
    if gt_boxes is not None:
        c4.button("Best cell for the box", on_click=_jump_to, args=(best,), key="anchors_best")
    return (scale, row, col), show_centres


def cell_panel(aset: AnchorSet, image: np.ndarray, gt_boxes: Optional[np.ndarray], cell: Cell,
               show_centres: bool, keys: Tuple[Key, Key]) -> None:
    """One cell's anchors drawn on the image, with their sizes and IoU with the box."""
    scale, row, col = cell
    fh, fw = aset.feature_maps[scale]
    rows = cell_anchor_rows(aset, scale, row, col, gt_boxes)
    ious = [r["IoU"] for r in rows] if gt_boxes is not None and len(gt_boxes) else None
    f1, f2 = st.columns([3, 2])
    with f1:
        sh.cached_figure(("cell",) + keys + (cell, show_centres),
                         lambda: cell_anchors_figure(image, aset, scale, row, col, show_centres, gt_boxes, ious))
    with f2:
        st.metric("Anchors in this cell", len(rows))
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        st.caption(f"Cell ({row}, {col}) of the {fh}×{fw} map covers {aset.input_size / fw:.0f}×"
                   f"{aset.input_size / fh:.0f} input pixels around the red dot. A ratio r makes an anchor √r "
                   "times wider and √r times shorter than a square of its size (s: fraction of the image side). "
                   "Anchors are normalized to the square network input, so on a non-square image they stretch "
                   "as the image does.")


def matching_panel(aset: AnchorSet, image: np.ndarray, gt_label: Optional[np.ndarray],
                   gt_boxes: Optional[np.ndarray], keys: Tuple[Key, Key]) -> None:
    """The anchors MultiBoxTarget makes positive for the box, at an IoU threshold."""
    st.subheader("Matching: which anchors learn this box")
    if gt_boxes is None or not len(gt_boxes):
        st.info("Pick a synthetic sample to see matching: uploads have no ground-truth box.")
        return
    thr = _url.synced("iou", "anchors_thr", _url.number(0.1, 0.9, 0.05), DEFAULT_IOU, lambda: st.slider(
        "Overlap threshold (IoU) for a positive anchor", 0.1, 0.9, DEFAULT_IOU, 0.05, persist_state="session",
        key="anchors_thr"))
    positives = _positives(*keys, thr, aset, gt_label)
    g1, g2 = st.columns([3, 2])
    with g1:
        sh.cached_figure(("positives",) + keys + (thr,), lambda: positives_figure(image, aset, positives, gt_boxes))
    with g2:
        st.metric("Positive anchors", len(positives))
        rows = positive_rows(aset, positives, gt_boxes)
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=sh.table_height(len(rows)))
        st.caption("MXNet's MultiBoxTarget (the training target assignment): an anchor is positive when its IoU "
                   "with a box exceeds the threshold, and each box also claims its single best anchor. All other "
                   "anchors learn 'background'.")


def coverage_panel(aset: AnchorSet, meta: Optional[dict], anchors_key: Key) -> None:
    """The share of a dataset's boxes some anchor overlaps well, and the spread of their best IoU."""
    st.subheader("Coverage of a validation set")
    choices = dataset_choices(meta)
    names = list(choices)
    which = _url.synced("cover", "anchors_cov_source", _url.choice(names), names[0], lambda: st.selectbox(
        "Boxes from", names, persist_state="session", key="anchors_cov_source", format_func=plain_text))
    cov_thr = _url.synced("cover_iou", "anchors_cov_thr", _url.number(0.1, 0.9, 0.05), DEFAULT_IOU, lambda: st.slider(
        "IoU a box's best anchor should reach", 0.1, 0.9, DEFAULT_IOU, 0.05, persist_state="session",
        key="anchors_cov_thr"))
    try:
        if choices[which] is None:
            labels, split = [s.label for s in sh.samples(32, 0, data_dir())], "val"
        else:
            labels, split = dataset_labels(choices[which])
        gts = gt_boxes_of(labels)
        share, best_ious = _coverage(anchors_key, str(choices[which]), cov_thr, aset, gts)
        k1, k2 = st.columns([1, 2])
        k1.metric("Boxes covered", f"{share:.0%}", help=f"{len(gts)} boxes of the {split} split")
        k1.caption("A box no anchor overlaps well is only matched through the best-anchor rule and is hard to "
                   "learn: adjust sizes and ratios (Custom) until most boxes are covered.")
        with k2:
            sh.cached_figure(("coverage", anchors_key, str(choices[which]), cov_thr),
                             lambda: coverage_figure(best_ious, cov_thr, f"{which}: {len(gts)} boxes ({split})"))
    except SSDError as err:
        st.error(md_escape(err))


def main() -> None:
    _url.page_opened("anchors")
    st.title("Anchors")
    st.markdown("Every cell of every feature map carries a few anchor boxes: *n + m − 1* for n sizes and m aspect "
                "ratios, as MXNet's `MultiBoxPrior` makes them in Dive into Deep Learning's \"Single Shot Multibox "
                "Detection\" (TinySSD, the *Custom* anchors) and the MXNet Gluon tutorial \"Object Detection Using "
                "Convolutional Neural Networks\". "
                "Training matches ground-truth boxes to anchors; detection shifts and scores them.")
    aset, meta, anchors_key = anchors_ui()
    counts_panel(aset)
    st.subheader("Anchors of one cell")
    image, gt_label, image_key = image_ui()
    gt_boxes = gt_boxes_of([gt_label]) if gt_label is not None else None
    cell, show_centres = cell_ui(aset, gt_boxes)
    cell_panel(aset, image, gt_boxes, cell, show_centres, (anchors_key, image_key))
    matching_panel(aset, image, gt_label, gt_boxes, (anchors_key, image_key))
    coverage_panel(aset, meta, anchors_key)


main()
