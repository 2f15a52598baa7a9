"""Home: what SSD Studio is, links to the pages, how SSD sees an image (drawn for the default
model), that model on three samples, and the environment.

Read from the bottom: ``main()`` calls one function per panel.
"""
from __future__ import annotations

import os
from typing import Optional

import streamlit as st

from app_pages import _shared as sh
from ssd.base.text import md_escape
from ssd.inference.batch import detect_images
from ssd.inference.thresholds import DEFAULT_NMS, SHOWN_THRESHOLD
from ssd.models.anchor_set import AnchorSet, anchor_set
from ssd.models.tiny import tiny_anchor_config
from ssd.store import library_versions
from ssd.viz.plots import demo_pictures, ssd_diagram_figure, ssd_diagram_lines
from ssd.workspace import data_dir, demo_sample_order, model_key


def links_panel() -> None:
    """Where to start, one link a line: a line never cuts a label short, at any width."""
    st.page_link("app_pages/detect.py", label="**Detect** objects in your images", icon=":material/image_search:")
    st.page_link("app_pages/camera_traps.py", label="**Camera traps**: process a whole season's folder",
                 icon=":material/photo_camera:")
    st.page_link("app_pages/train.py", label="**Train** a model on a dataset", icon=":material/model_training:")
    st.page_link("app_pages/anchors.py", label="**Anchors**: see what the network matches", icon=":material/anchor:")


def diagram_anchors(default_path: Optional[str], meta: Optional[dict]) -> AnchorSet:
    """The default model's anchors, or TinySSD's when there is no model (or an odd one)."""
    try:
        return sh.model_anchors(default_path, meta) if meta else anchor_set(tiny_anchor_config(), 256)
    except Exception:  # an odd saved model must not break the home page: explain with TinySSD's
        return anchor_set(tiny_anchor_config(), 256)


def diagram_panel(default_path: Optional[str], meta: Optional[dict]) -> None:
    """The default model's network drawn (as text on a phone: once, the figure or its text, never both),
    and the five steps it takes."""
    st.subheader("How SSD sees an image")
    cfg = diagram_anchors(default_path, meta)
    input_size = cfg.input_size
    n_classes = len((meta or {}).get("classes", ["pikachu"]))
    sh.responsive_figure(ssd_diagram_figure(cfg, input_size, n_classes), ssd_diagram_lines(cfg, input_size, n_classes),
                         "ssd-diagram")
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


def demo_panel(default_path: Optional[str]) -> None:
    """The default model on three synthetic samples (at most five boxes each)."""
    pool = sh.samples(8, 0, data_dir())
    samples = [pool[i] for i in demo_sample_order(pool)[:3]]
    if not default_path:
        return
    try:
        det = sh.get_detector(default_path)
        results = detect_images(det, [(s.name, s.data) for s in samples], DEFAULT_NMS, sh.detection_cache(),
                                key=model_key(default_path))
        shown = [r.raw.filter(SHOWN_THRESHOLD, max_detections=5) if r.ok else None for r in results]
        st.caption(f"The default model **{os.path.basename(default_path)}** on three synthetic samples "
                   f"(confidence ≥ {SHOWN_THRESHOLD:g}):")
        for col, picture in zip(st.columns(3), demo_pictures(samples, shown)):
            col.image(picture, output_format="JPEG", width="stretch")
    except Exception as err:  # shown, not raised: the environment panel below still helps
        st.error(f"The default model could not run: {md_escape(err)}")


def detection_line(default_path: Optional[str]) -> str:
    """Which engine, precision and device detect with the default model (the cached Detector)."""
    if not default_path:
        return "no model yet"
    try:
        return md_escape(sh.get_detector(default_path).describe())
    except Exception as err:  # noqa: BLE001 - the demo panel above already shows the error
        return md_escape(f"the default model does not load ({err})")


def real_world_offer(ok) -> None:
    """Real detectors the user can download, live sources first (shown until one is installed)."""
    from app_pages._pretrained import offer_markdown
    from ssd.models.knowledge import is_pretrained_detector

    if any(is_pretrained_detector(m.meta) for m in ok):
        return
    st.markdown("**Real-world detectors** (COCO's 80 classes: people, animals, vehicles), one download each "
                "on the **Detect** page or with `python -m ssd models pull NAME`:")
    st.markdown(offer_markdown())


def environment_panel(root: str, ok, broken, default_path: Optional[str]) -> None:
    """Versions, device and folders; the models available (or how to get one)."""
    st.subheader("Environment")
    dev = sh.devices()
    e1, e2 = st.columns(2)
    with e1:
        versions = library_versions()
        st.markdown(f"- **MXNet** {versions['mxnet']}, GluonCV {versions['gluoncv']}, Streamlit {st.__version__}\n"
                    f"- **Device** (training): {dev.summary()}\n"
                    f"- **Detection**: {detection_line(default_path)}\n"
                    f"- **Models folder**: `{root}`\n- **Data folder**: `{data_dir()}`")
        if dev.gpu_errors:
            with st.expander("GPU probe errors"):
                st.code("\n".join(dev.gpu_errors))
    with e2:
        real_world_offer(ok)
        if ok:
            st.markdown("**Models available**")
            st.markdown("\n".join(f"- {md_escape(m.label)}" + (" ★ default" if m.path == default_path else "")
                                   for m in ok))
        else:
            sh.no_model_help()
        sh.show_broken(broken)


def main() -> None:
    st.title("SSD Studio")
    st.markdown(
        "Find objects in pictures with a **Single Shot MultiBox Detector** (SSD), train your own, "
        "and look inside at the *anchor boxes* it reasons with. Everything runs on this computer; "
        "no upload leaves it and no network is needed.")
    root, ok, broken, default_path = sh.list_models()
    links_panel()
    meta = next((m.meta for m in ok if m.path == default_path), None)
    diagram_panel(default_path, meta)
    demo_panel(default_path)
    environment_panel(root, ok, broken, default_path)


main()
