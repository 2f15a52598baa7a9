"""Detect: pick a model, drop images, move sliders. The network runs once per image and NMS setting;
the confidence slider, class filter and count limit only filter cached results."""
from __future__ import annotations

import json
import os

import pandas as pd
import streamlit as st

from app_pages import _shared as sh
from app_pages._pretrained import pretrained_panel
from ssd.base.text import md_escape
from ssd.inference.batch import class_counts, detect_images, detection_rows, render_batch, results_for_export, timed
from ssd.inference.thresholds import DEFAULT_NMS, SHOWN_THRESHOLD
from ssd.inference.engines import precision_choices
from ssd.viz.drawing import annotated_name, annotated_png, annotated_zip
from ssd.base.errors import SSDError
from ssd.data.images import SUPPORTED_EXTENSIONS
from ssd.camtrap.categories import MEGADETECTOR_CLASSES, categorize_results, supports_megadetector
from ssd.camtrap.results import megadetector_json, results_csv
from ssd.store import is_pretrained_detector, model_knowledge
from ssd.workspace import data_dir, demo_sample_order, model_key

st.title("Detect")
root, ok, broken, default_path = sh.list_models()
if not any(is_pretrained_detector(m.meta) for m in ok):
    pretrained_panel(root, "detect_model", expanded=not ok)
if not ok:
    sh.no_model_help()
    sh.show_broken(broken)
    st.stop()

with st.sidebar:
    st.header("Settings")
    model_path = sh.model_picker("Model", ok, default_path, key="detect_model")
    engine = sh.engine_select("detect_engine")
    precision = st.selectbox("Precision", precision_choices(model_path, engine), key="detect_precision",
                             help="auto: INT8 when the model's own evaluation showed it as accurate (within "
                                  "0.01 mAP) and faster, else fp32. INT8 appears once `python -m ssd quantize` "
                                  "has made it.")
    try:
        det = sh.get_detector(model_path, precision, engine)
    except SSDError as err:
        st.error(str(err))
        st.stop()
    st.text(f"Knows {model_knowledge(det.meta)}",  # plain text: class names come from the model folder
            help="What this model can find. A detector only knows the classes it was trained on: anything "
                 "else in a photo is either missed or called one of them.")
    megadetector = supports_megadetector(det.classes) and st.toggle(
        "MegaDetector categories", False, key="detect_megadetector",
        help="Map the classes to animal / person / vehicle (others dropped), merging overlapping boxes of one "
             "category; the JSON then uses MegaDetector's ids 1 / 2 / 3, as Timelapse expects.")
    labels = MEGADETECTOR_CLASSES if megadetector else det.classes
    threshold = st.slider("Confidence threshold", 0.01, 1.0, SHOWN_THRESHOLD, 0.01, key="detect_threshold",
                          help="Boxes scoring below this are hidden. Moving it does not run the network again.")
    nms = st.slider("NMS IoU threshold", 0.05, 0.95, DEFAULT_NMS, 0.05, key="detect_nms",
                    help="Of two boxes of the same class overlapping more than this, only the better stays. "
                         "Changing it runs the network again (once per image and value).")
    st.caption(f"Running: {det.precision_note}; engine {det.engine} {det.engine_version} on {det.device}"
               + (f" ({det.engine_note})" if det.engine_note else ""))
    classes = st.multiselect("Classes", labels, default=labels, key=f"detect_classes::{model_path}::{megadetector}")
    max_det = st.number_input("Max detections per image", 1, 1000, 100, 1, key="detect_max")
    sh.show_broken(broken)

uploads = st.file_uploader("Images", type=list(SUPPORTED_EXTENSIONS), accept_multiple_files=True,
                           key="detect_upload", help="JPEG, PNG, BMP, WebP or TIFF; several at once are fine.")
if uploads:
    items = [(u.name, u.getvalue()) for u in uploads]
else:
    pool = sh.samples(12, 0, data_dir())
    items = [(pool[i].name, pool[i].data) for i in sorted(demo_sample_order(pool)[:6])]
    st.info("No upload yet, so here are six images from the synthetic Pikachu validation set. "
            "Drop your own images above.", icon=":material/photo_library:")

calls_before = det.forward_calls
with st.spinner(f"Detecting in {len(items)} image(s)…"):
    results = detect_images(det, items, nms, sh.detection_cache(), key=model_key(model_path) + (det.precision, det.engine))
results = categorize_results(results, "megadetector" if megadetector else "none")
rendered, render_ms = timed(render_batch, results, threshold, classes, int(max_det))
st.session_state["detect_stats"] = {
    "forward_calls": det.forward_calls, "new_forward_calls": det.forward_calls - calls_before,
    "network_images": sum(r.ran_network for r in results), "render_ms": render_ms,
    "shown": sum(len(r.shown) for r in rendered)}

for r in results:
    if not r.ok:
        st.error(md_escape(r.error if r.name in (r.error or "") else f"{r.name}: {r.error}"),
                 icon=":material/broken_image:")

if rendered:
    counts = class_counts(rendered, labels)
    net_ms = [r.item.raw.timings_ms.get("total", 0.0) for r in rendered]
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Images", f"{len(rendered)} of {len(results)}")
    m2.metric("Detections shown", sum(counts.values()))
    m3.metric("Detection time per image", f"{sum(net_ms) / len(net_ms):.0f} ms",
              help="This image's decode, plus resize + network + NMS (its share of the batch it ran in), "
                   "measured when the image was first detected.")
    new = st.session_state["detect_stats"]["network_images"]
    m4.metric("This update", f"{render_ms:.0f} ms",
              help=f"{new} image(s) went through the network now; the rest came from the cache.")

    tab_images, tab_table, tab_export = st.tabs(["Images", "Table", "Download"])
    with tab_images:
        cols = st.columns(2 if len(rendered) > 1 else 1)
        for i, r in enumerate(rendered):
            w, h = r.item.raw.image_size
            note = "cached" if not r.item.ran_network else "new"
            cols[i % len(cols)].image(
                r.picture, output_format="JPEG" if max(w, h) > 600 else "PNG",
                caption=f"{r.item.name} — {w}×{h}px — {len(r.shown)} detection(s) — "
                        f"{r.item.raw.timings_ms.get('total', 0):.0f} ms ({note})")
    with tab_table:
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
    with tab_export:
        export = megadetector_json(results_for_export(results), labels, os.path.basename(model_path), threshold,
                                   inference=det.engine_info())
        e1, e2, e3 = st.columns(3)
        originals = {name: data for name, data in items}

        def make_png(r=rendered[0]) -> bytes:
            from ssd.data.images import load_image
            return annotated_png(load_image(originals[r.item.name], r.item.name).image, r.shown)

        def make_zip() -> bytes:
            from ssd.data.images import load_image
            return annotated_zip([(r.item.name, load_image(originals[r.item.name], r.item.name).image, r.shown)
                                      for r in rendered])

        if len(rendered) == 1:
            e1.download_button("Annotated image (PNG)", make_png, annotated_name(rendered[0].item.name),
                               "image/png", key="dl_png", on_click="ignore")
        else:
            e1.download_button(f"Annotated images (ZIP of {len(rendered)} PNG)", make_zip, "detections.zip",
                               "application/zip", key="dl_zip", on_click="ignore")
        e2.download_button("Detections (MegaDetector JSON)",
                           json.dumps(export, indent=1),
                           "detections.json", "application/json", key="dl_json", on_click="ignore")
        e3.download_button("Detections (CSV)", results_csv(export), "detections.csv", "text/csv",
                           key="dl_csv", on_click="ignore")
        st.caption("Annotated images are drawn at full resolution when you download them; the JSON follows the "
                   "MegaDetector batch format (boxes normalized x, y, width, height) that camera-trap tools read. "
                   "The JSON and CSV hold every image and every detection down to a score of 0.005, not only "
                   "what the slider shows, so other tools can choose their own threshold.")
elif results:
    st.warning("None of the files could be used; see the messages above.")
