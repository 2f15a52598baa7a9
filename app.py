"""SSD Studio: ``streamlit run app.py``.

Pages only lay out widgets; every computation is a call into the ``ssd`` library.
Configuration: ``SSD_MODELS_DIR`` (default ``models/``) and ``SSD_DATA_DIR`` (default ``data/``).
"""
from __future__ import annotations

import os
import sys

import streamlit as st

_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# The icon ships with the app: a ":material/…:" page icon makes the browser fetch it from a font CDN.
PAGE_ICON = os.path.join(_ROOT, "app_assets", "icon.png")
st.set_page_config(page_title="SSD Studio", page_icon=PAGE_ICON, layout="wide")


def home() -> None:

    from app_pages import _shared as sh
    from ssd.base.text import md_escape
    from ssd.models.tiny import tiny_anchor_config
    from ssd.models.anchor_set import anchor_set
    from ssd.inference.batch import detect_images
    from ssd.viz.plots import demo_detection_figure, ssd_diagram_figure, ssd_diagram_lines
    from ssd.workspace import data_dir, demo_sample_order, model_key

    st.title("SSD Studio")
    st.markdown(
        "Find objects in pictures with a **Single Shot MultiBox Detector** (SSD), train your own, "
        "and look inside at the *anchor boxes* it reasons with. Everything runs on this computer; "
        "no upload leaves it and no network is needed.")

    root, ok, broken, default_path = sh.list_models()
    c1, c2, c3 = st.columns(3)
    c1.page_link("app_pages/detect.py", label="**Detect** objects in your images", icon=":material/image_search:")
    c2.page_link("app_pages/train.py", label="**Train** a model on a dataset", icon=":material/model_training:")
    c3.page_link("app_pages/anchors.py", label="**Anchors**: see what the network matches", icon=":material/anchor:")

    st.subheader("How SSD sees an image")
    meta = next((m.meta for m in ok if m.path == default_path), None)
    try:
        cfg = sh.model_anchors(default_path, meta) if meta else anchor_set(tiny_anchor_config(), 256)
    except Exception:  # an odd saved model must not break the home page: explain with TinySSD's
        cfg = anchor_set(tiny_anchor_config(), 256)
    input_size = cfg.input_size
    n_classes = len((meta or {}).get("classes", ["pikachu"]))
    sh.responsive_figure(ssd_diagram_figure(cfg, input_size, n_classes), ssd_diagram_lines(cfg, input_size, n_classes),
                         "ssd-diagram")
    with st.expander("The diagram as text (easier to read on a phone)"):
        st.text("\n".join(ssd_diagram_lines(cfg, input_size, n_classes)))
    st.markdown(
        f"""
1. **Backbone.** Convolution blocks turn the {input_size}×{input_size} image into feature maps, halving
   their size at each stage.
2. **Multi-scale feature maps.** SSD predicts from *several* of those maps: the large early maps
   ({cfg.feature_maps[0][0]}×{cfg.feature_maps[0][1]}) see small objects, the small late ones see large objects.
3. **Anchors.** Every cell of every map carries a few *anchor boxes* of set sizes and aspect ratios
   ({cfg.total()} in all here). Open the **Anchors** page to see them.
4. **Predictions.** For every anchor, one small convolution predicts a score per class (plus
   "background") and another predicts how to shift and stretch the anchor to fit the object.
5. **Non-maximum suppression.** Overlapping boxes of the same object are reduced to the best one;
   what remains above your confidence threshold is the detection.
""")

    pool = sh.samples(8, 0, data_dir())
    samples = [pool[i] for i in demo_sample_order(pool)[:3]]
    det = None
    if default_path:
        try:
            det = sh.get_detector(default_path)
            results = detect_images(det, [(s.name, s.data) for s in samples], 0.45, sh.detection_cache(),
                                    key=model_key(default_path))
            shown = [r.raw.filter(0.5, max_detections=5) if r.ok else None for r in results]
            st.caption(f"The default model **{os.path.basename(default_path)}** on three synthetic samples "
                       "(confidence ≥ 0.5):")
            sh.figure(demo_detection_figure(samples, shown))
        except Exception as err:  # shown, not raised: the environment panel below still helps
            st.error(f"The default model could not run: {err}")

    st.subheader("Environment")
    dev = sh.devices()
    e1, e2 = st.columns(2)
    with e1:
        from ssd.store import library_versions

        versions = library_versions()
        st.markdown(f"- **MXNet** {versions['mxnet']}, GluonCV {versions['gluoncv']}, Streamlit {st.__version__}\n"
                    f"- **Device** (training): {dev.summary()}\n"
                    f"- **Detection**: {md_escape(det.describe()) if det is not None else 'no model loaded'}\n"
                    f"- **Models folder**: `{root}`\n- **Data folder**: `{data_dir()}`")
        if dev.gpu_errors:
            with st.expander("GPU probe errors"):
                st.code("\n".join(dev.gpu_errors))
    with e2:
        if ok:
            st.markdown("**Models available**")
            st.markdown("\n".join(f"- {md_escape(m.label)}" + (" ★ default" if m.path == default_path else "")
                                   for m in ok))
        else:
            sh.no_model_help()
        sh.show_broken(broken)


pg = st.navigation({"": [
    st.Page(home, title="Home", icon=":material/home:", default=True),
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
