"""Detect: pick a model, drop images, move sliders. The network runs once per image and NMS setting;
the confidence slider, class filter and count limit only filter cached results.

Read from the bottom: ``main()`` lays out the sidebar settings, the images, then the results
(metrics, and the Images / Table / Download views); each group is one function.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple

import pandas as pd
import streamlit as st

from app_pages import _shared as sh
from app_pages import _url
from app_pages._pretrained import pretrained_panel
from ssd.base.text import md_escape, plain_text
from ssd.inference.batch import (DetectedImage, RenderedImage, annotated_download, class_counts, detect_images,
                                 detection_rows, mean_detection_ms, render_batch, results_for_export, timed)
from ssd.inference.thresholds import DEFAULT_NMS, MAX_DETECTIONS, RESULTS_FLOOR, SHOWN_THRESHOLD
from ssd.inference.engines import engine_choices, precision_choices
from ssd.viz.drawing import annotated_name, boxes_summary
from ssd.base.errors import SSDError
from ssd.data.images import FORMATS_TEXT, SUPPORTED_EXTENSIONS
from ssd.camtrap.categories import MEGADETECTOR_CLASSES, categorize_results, supports_megadetector
from ssd.camtrap.results import megadetector_json, results_csv
from ssd.models.knowledge import is_pretrained_detector, model_knowledge
from ssd.workspace import data_dir, demo_sample_order, model_key

Items = List[Tuple[str, bytes]]


class Settings(NamedTuple):
    """What the person chose: the model (loaded, from the sidebar) and how its detections are shown
    (the view controls above the results)."""

    model_path: str
    detector: Any
    megadetector: bool
    labels: List[str]
    threshold: float
    nms: float
    classes: List[str]
    max_detections: int


class ModelChoice(NamedTuple):
    """The sidebar's part of the settings: set once, not moved while looking at the result."""

    model_path: str
    detector: Any
    megadetector: bool
    labels: List[str]
    max_detections: int


def models_ui() -> Tuple[list, list, str]:
    """``(usable models, broken ones, the default's path)``; the ready-made detectors' panel when
    none is pulled yet; stops the page with help when there is no model at all."""
    root, ok, broken, default_path = sh.list_models()
    if not any(is_pretrained_detector(m.meta) for m in ok):
        pretrained_panel(root, "detect_model", expanded=not ok)
    if not ok:
        sh.no_model_help()
        sh.show_broken(broken)
        st.stop()
    return ok, broken, default_path


def model_ui(ok, default_path: str) -> Tuple[str, Any]:
    """Model, engine and precision: ``(model path, its loaded Detector)``, or why it cannot load
    (then ``model_settings_ui`` stops the page, the uploads kept)."""
    model_path = sh.model_picker("Model", ok, default_path, key="detect_model", url="model")
    engine = sh.engine_select("detect_engine", choices=engine_choices(model_path), url="engine")
    precisions = precision_choices(model_path, engine)
    precision = _url.synced("precision", "detect_precision", _url.choice(precisions), precisions[0], lambda: st.selectbox(
        "Precision", precisions, key="detect_precision", persist_state="session",
        help="auto: INT8 when the model's own evaluation showed it as accurate (within "
             "0.01 mAP) and faster, else fp32. INT8 appears once `python -m ssd quantize` has made it."))
    try:
        det = sh.get_detector(model_path, precision, engine)
    except SSDError as err:     # said once, above the uploads (visible on a phone, where the sidebar is shut)
        return model_path, md_escape(f"Engine {engine}, precision {precision} cannot run this model: "
                                     f"{str(err).rstrip('.')}. Choose another engine or precision in the sidebar.")
    st.text(plain_text(f"Knows {model_knowledge(det.meta)}"),  # plain text: class names come from the model folder
            help="What this model can find. A detector only knows the classes it was trained on: anything "
                 "else in a photo is either missed or called one of them.")
    st.caption(md_escape(det.summary()), help=md_escape(f"Running: {det.describe()}"))
    return model_path, det


def model_settings_ui(ok, broken, default_path: str) -> ModelChoice:
    """The sidebar: model, engine, precision, MegaDetector categories, count limit; a model that
    does not load stops the page here (after the uploads, so they are kept), saying why."""
    with st.sidebar:
        st.header("Settings")
        model_path, det = model_ui(ok, default_path)
        if isinstance(det, str):
            sh.show_broken(broken)
    if isinstance(det, str):
        st.error(det, icon=":material/error:")
        st.stop()       # the view's settings, not drawn this run, are kept (persist_state) for the next
    with st.sidebar:
        megadetector = supports_megadetector(det.classes) and _url.synced("md", "detect_megadetector", _url.flag,
                                                                          False, lambda: st.toggle(
            "MegaDetector categories", False, key="detect_megadetector", persist_state="session",
            help="Map the classes to animal / person / vehicle (others dropped), merging overlapping boxes of one "
                 "category; the JSON then uses MegaDetector's ids 1 / 2 / 3, as Timelapse expects."))
        max_det = _url.synced("max", "detect_max", _url.integer(1, 1000), MAX_DETECTIONS, lambda: st.number_input(
            "Max detections per image", 1, 1000, MAX_DETECTIONS, 1, key="detect_max", persist_state="session"))
        sh.show_broken(broken)
    labels = MEGADETECTOR_CLASSES if megadetector else det.classes
    return ModelChoice(model_path, det, megadetector, list(labels), int(max_det))


def view_ui(m: ModelChoice) -> Settings:
    """Confidence, NMS and classes, above the results: the controls a person moves while looking at
    the boxes. The confidence slider stays at the top of the screen while the results scroll (on a
    phone too), so it is never more than a glance away from the pictures."""
    with st.container(key="detect_view"):
        threshold = _url.synced("conf", "detect_threshold", _url.number(0.01, 1.0, 0.01), SHOWN_THRESHOLD,
                                lambda: st.slider(
            "Confidence threshold", 0.01, 1.0, SHOWN_THRESHOLD, 0.01, key="detect_threshold", persist_state="session",
            help="Boxes scoring below this are hidden. Moving it does not run the network again."))
    c1, c2 = st.columns([2, 3])
    nms = _url.synced("nms", "detect_nms", _url.number(0.05, 0.95, 0.05), DEFAULT_NMS, lambda: c1.slider(
        "NMS IoU threshold", 0.05, 0.95, DEFAULT_NMS, 0.05, key="detect_nms", persist_state="session",
        help="Of two boxes of the same class overlapping more than this, only the better stays. "
             "Changing it runs the network again (once per image and value)."))
    classes = c2.multiselect("Classes", m.labels, default=m.labels, format_func=plain_text,
                             key=f"detect_classes::{m.model_path}::{m.megadetector}", persist_state="session")
    return Settings(m.model_path, m.detector, m.megadetector, m.labels, threshold, nms, classes, m.max_detections)


# The last uploads, for a return to the page: Streamlit empties a file uploader that a run did not draw
# (it has no persist_state), so a look at another page lost the person's images. Kept up to a size.
KEPT_UPLOADS = "detect_kept_uploads"
KEEP_UPLOADS_BYTES = 200 * 2**20


def _uploads_changed() -> None:
    """The person changed the uploader: emptied by hand, it means "back to the samples", not "the
    images from before" (a return to the page empties it without calling this)."""
    if not st.session_state.get("detect_upload"):
        st.session_state.pop(KEPT_UPLOADS, None)


def _keep_uploads(items: Items) -> None:
    if sum(len(data) for _, data in items) <= KEEP_UPLOADS_BYTES:
        st.session_state[KEPT_UPLOADS] = items
    else:
        st.session_state.pop(KEPT_UPLOADS, None)


def kept_uploads_ui() -> Items:
    """The images uploaded before the person left the page, with a way to forget them; none if none."""
    kept = st.session_state.get(KEPT_UPLOADS) or []
    if kept:
        c1, c2 = st.columns([4, 1])
        c1.info(f"Your {len(kept)} image(s) from before you left this page. Dropping new images replaces them.",
                icon=":material/history:")
        if c2.button("Forget them", key="detect_forget_uploads"):
            st.session_state.pop(KEPT_UPLOADS, None)
            return []
    return list(kept)


def images_ui() -> Items:
    """``(name, bytes)`` of the uploads (those of before a visit to another page when the uploader
    came back empty), or six synthetic samples until there is one."""
    uploads = st.file_uploader("Images", type=list(SUPPORTED_EXTENSIONS), accept_multiple_files=True,
                               key="detect_upload", on_change=_uploads_changed,
                               help=f"{FORMATS_TEXT} (a GIF's first frame); several at once are fine.")
    if uploads:
        items = [(u.name, u.getvalue()) for u in uploads]
        _keep_uploads(items)
        return items
    kept = kept_uploads_ui()
    if kept:
        return kept
    pool = sh.samples(12, 0, data_dir())
    st.info("No upload yet, so here are six images from the synthetic Pikachu validation set. "
            "Drop your own images above.", icon=":material/photo_library:")
    return [(pool[i].name, pool[i].data) for i in sorted(demo_sample_order(pool)[:6])]


def detect(s: Settings, items: Items) -> Tuple[List[DetectedImage], List[RenderedImage], float]:
    """``(results, shown, ms to filter and draw)``: the network only for images not yet cached.
    Records what ran in ``detect_stats`` (tests read it to prove a slider move runs no network)."""
    det = s.detector
    calls_before = det.forward_calls
    with st.spinner(f"Detecting in {len(items)} image(s)…"):
        results = detect_images(det, items, s.nms, sh.detection_cache(),
                                key=model_key(s.model_path) + (det.precision, det.engine))
    results = categorize_results(results, "megadetector" if s.megadetector else "none")
    rendered, render_ms = timed(render_batch, results, s.threshold, s.classes, s.max_detections)
    st.session_state["detect_stats"] = {
        "forward_calls": det.forward_calls, "new_forward_calls": det.forward_calls - calls_before,
        "network_images": sum(r.ran_network for r in results), "render_ms": render_ms,
        "shown": sum(len(r.shown) for r in rendered)}
    return results, rendered, render_ms


def errors_panel(results: Sequence[DetectedImage]) -> None:
    for r in results:
        if not r.ok:
            st.error(md_escape(r.message), icon=":material/broken_image:")


def metrics_panel(results: Sequence[DetectedImage], rendered: Sequence[RenderedImage], counts: Dict[str, int],
                  render_ms: float) -> None:
    """Images used, detections shown, time per image, and what this rerun cost."""
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Images", f"{len(rendered)} of {len(results)}")
    m2.metric("Detections shown", sum(counts.values()))
    m3.metric("Detection time per image", f"{mean_detection_ms(rendered):.0f} ms",
              help="This image's decode, plus resize + network + NMS (its share of the batch it ran in), "
                   "measured when the image was first detected.")
    new = st.session_state["detect_stats"]["network_images"]
    m4.metric("This update", f"{render_ms:.0f} ms",
              help=f"{new} image(s) went through the network now; the rest came from the cache.")


def images_view(rendered: Sequence[RenderedImage]) -> None:
    """Each picture (the same file on every slider move, so the browser keeps it) under its boxes (SVG);
    the caption is Markdown, so the upload's name is escaped."""
    cols = st.columns(2 if len(rendered) > 1 else 1)
    for i, r in enumerate(rendered):
        w, h = r.item.raw.image_size
        note = "cached" if not r.item.ran_network else "new"
        with cols[i % len(cols)]:
            sh.picture_with_boxes(
                r.item.display, r.svg, f"detect_pic_{i}",
                caption=f"{md_escape(r.item.name)} — {w}×{h}px — {md_escape(boxes_summary(r.shown))} — "
                        f"{r.item.raw.timings_ms.get('total', 0):.0f} ms ({note})")


def table_view(rendered: Sequence[RenderedImage], counts: Dict[str, int]) -> None:
    """Every shown detection, and the count per class over the batch."""
    rows = detection_rows(rendered)
    c1, c2 = st.columns([3, 1])
    with c1:
        st.markdown("**Detections** (boxes in original image pixels)")
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        else:
            st.caption("Nothing above the threshold; lower the confidence slider.")
    with c2:
        st.markdown("**Per class, whole batch**")
        st.dataframe(pd.DataFrame({"class": list(counts), "count": list(counts.values())}),
                     hide_index=True, width="stretch")


def download_view(s: Settings, items: Items, results: Sequence[DetectedImage],
                 rendered: Sequence[RenderedImage]) -> None:
    """Annotated image(s), and every detection as MegaDetector JSON and CSV, each made when clicked."""
    e1, e2, e3 = st.columns(3)

    def make_annotated() -> bytes:
        return annotated_download(rendered, items)

    def export() -> dict:
        return megadetector_json(results_for_export(results), s.labels, os.path.basename(s.model_path), s.threshold,
                                 inference=s.detector.engine_info())

    if len(rendered) == 1:
        e1.download_button("Annotated image (PNG)", make_annotated, annotated_name(rendered[0].item.name),
                           "image/png", key="dl_png", on_click="ignore")
    else:
        e1.download_button(f"Annotated images (ZIP of {len(rendered)} PNG)", make_annotated, "detections.zip",
                           "application/zip", key="dl_zip", on_click="ignore")
    e2.download_button("Detections (MegaDetector JSON)", lambda: json.dumps(export(), indent=1),
                       "detections.json", "application/json", key="dl_json", on_click="ignore")
    e3.download_button("Detections (CSV)", lambda: results_csv(export()), "detections.csv", "text/csv",
                       key="dl_csv", on_click="ignore")
    st.caption("Annotated images are drawn at full resolution when you download them; the JSON follows the "
               "MegaDetector batch format (boxes normalized x, y, width, height) that camera-trap tools read. "
               f"The JSON and CSV hold every image and every detection down to a score of {RESULTS_FLOOR:g}, not only "
               "what the slider shows, so other tools can choose their own threshold.")


VIEWS = ("Images", "Table", "Download")


def results_panel(s: Settings, items: Items, results: Sequence[DetectedImage],
                  rendered: Sequence[RenderedImage], render_ms: float) -> None:
    """The metrics, then the Images, Table or Download view; only the chosen view is built (a slider
    move with the pictures open sends the pictures' boxes, not a table or an export). A segmented
    control, not ``st.tabs``: tabs keep no state across a page switch (no persist_state), so a person
    who opened the Table came back to the Images."""
    counts = class_counts(rendered, s.labels)
    metrics_panel(results, rendered, counts, render_ms)
    view = _url.synced("view", "detect_tab", _url.choice(VIEWS, str.lower), VIEWS[0], lambda: st.segmented_control(
        "View", VIEWS, default=VIEWS[0], required=True, key="detect_tab", persist_state="session",
        label_visibility="collapsed"), str.lower)
    if view == "Table":
        table_view(rendered, counts)
    elif view == "Download":
        download_view(s, items, results, rendered)
    else:
        images_view(rendered)


@st.fragment
def results_view(m: ModelChoice, items: Items) -> None:
    """The view controls and everything they change. A fragment: moving a control reruns only this
    (not the sidebar, the model list or the uploads), and the network runs only for images not yet
    detected at this NMS setting."""
    sh.style(sh.sticky_css("detect_view"), sh.overlay_css("detect_pic_"))
    settings = view_ui(m)
    results, rendered, render_ms = detect(settings, items)
    errors_panel(results)
    if rendered:
        results_panel(settings, items, results, rendered, render_ms)
    elif results:
        st.warning("None of the files could be used; see the messages above.")


def main() -> None:
    _url.page_opened("detect")
    st.title("Detect")
    ok, broken, default_path = models_ui()
    items = images_ui()     # before the model: a model or engine that cannot run must not drop the uploads
    model = model_settings_ui(ok, broken, default_path)
    results_view(model, items)


main()
