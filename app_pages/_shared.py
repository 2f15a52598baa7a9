"""Streamlit-side caches shared by the pages (not a page itself: st.navigation lists the pages).

Only caching and small layout helpers live here; every computation is in ``ssd``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import streamlit as st

from ssd.base.text import md_escape
from ssd.models.anchor_set import AnchorSet
from ssd.models.registry import anchors_for_meta
from ssd.inference.batch import DetectionCache
from ssd.workspace import Sample, model_key, models_dir, sample_images


@st.cache_resource(show_spinner="Looking for a usable GPU…")
def devices():
    """``select_devices()`` once per server: it probes each GPU with a real convolution."""
    from ssd.base.device import select_devices

    return select_devices()


@st.cache_resource(show_spinner=False)
def training_precision():
    """``(precision, reason)`` that training's "auto" arithmetic picks on this server's devices
    (once per server: it reads the CPU's flags)."""
    from ssd.models.training_graph import resolve_precision

    return resolve_precision("auto", devices().contexts)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def detector(path: str, stamp: float, precision: Optional[str] = None, engine: str = "auto"):
    """A loaded, warmed Detector per model folder, meta/params mtime, precision and engine.

    ``stamp`` is part of the key so a model retrained in place is reloaded. The Detector
    serializes its forward calls with its own lock, so sessions can share it.
    """
    from ssd.inference.engines import load_detector

    return load_detector(path, engine, precision, worker=True,   # one inference thread per server
                         ctx=devices().contexts[0] if engine != "onnxruntime" else None)


def get_detector(path: str, precision: Optional[str] = None, engine: str = "auto"):
    return detector(*model_key(path), precision, engine)


ENGINE_HELP = ("auto: the fastest engine this machine runs for this model (ONNX Runtime, on a GPU when "
               "onnxruntime-gpu can use one, else MXNet), with the reason shown. onnxruntime converts the "
               "model to ONNX once (kept in its folder). mxnet: MXNet on the CPU, or on a GPU of compute "
               "capability 5.0–8.6.")


def engine_select(key: str, container=st) -> str:
    """The inference engine picker (Detect and Camera traps pages share its choices and help)."""
    from ssd.inference.engines import ENGINES

    return container.selectbox("Engine", ENGINES, key=key, help=ENGINE_HELP)


@st.cache_resource(show_spinner="Computing the model's anchors…", max_entries=16)
def _model_anchors(path: str, stamp: float, meta_json: str):
    import json

    return anchors_for_meta(json.loads(meta_json))


def model_anchors(path: str, meta) -> "AnchorSet":
    """Every anchor of a saved model (TinySSD or GluonCV zoo), cached per folder and mtime."""
    import json

    return _model_anchors(*model_key(path), json.dumps(meta, sort_keys=True, default=str))


@st.cache_resource
def detection_cache() -> DetectionCache:
    """Raw detections per (model, image bytes, NMS), shared by every session of this server."""
    return DetectionCache()


@st.cache_resource(show_spinner="Rendering sample images…")
def samples(n: int, seed: int, root: str) -> List[Sample]:
    return sample_images(n, seed, root)


def list_models():
    """Usable and broken models of the models folder: listed on every rerun (cheap), so a model
    trained a minute ago appears without restarting the app."""
    from ssd.store import default_model, list_models as _list

    root = models_dir()
    ok, broken = _list(root)
    default = default_model(root)
    return root, ok, broken, (default.path if default else None)


def model_picker(label: str, ok, default_path: Optional[str], key: str, container=st) -> Optional[str]:
    """A selectbox over model folders (paths), the default pre-selected."""
    if not ok:
        return None
    paths = [m.path for m in ok]
    labels = {m.path: m.label + ("  ★ default" if m.path == default_path else "") for m in ok}
    index = paths.index(default_path) if default_path in paths else 0
    if key in st.session_state and st.session_state[key] not in paths:
        del st.session_state[key]          # the model was deleted or renamed
    return container.selectbox(label, paths, index=index, format_func=lambda p: labels.get(p, p), key=key)


def show_broken(broken, container=st) -> None:
    if broken:
        with container.expander(f"{len(broken)} model folder(s) cannot be used"):
            for b in broken:
                st.markdown(f"- **{md_escape(b.name)}**: {md_escape(b.error)}")


def no_model_help() -> None:
    st.warning(
        f"No trained model in `{models_dir()}` yet. Train one on the **Train** page, or from a "
        "terminal:\n\n```\npython -m ssd data synth --out data/synthetic-pikachu\n"
        "python -m ssd train --data data/synthetic-pikachu --out models/tiny-pikachu --default\n```\n\n"
        "Or download a real-world detector (COCO's 80 classes) on the **Detect** page, or with "
        "`python -m ssd models pull ssd300_vgg16_coco` (`python -m ssd models pull --list` shows them all).")


def figure(fig, **kwargs) -> None:
    """Show a matplotlib Figure (built without pyplot) and let it go; rendered under the figure
    lock, since matplotlib's text layout is not thread-safe across sessions."""
    from ssd.base.figure_lock import FIGURE_LOCK

    with FIGURE_LOCK:
        st.pyplot(fig, clear_figure=False, **kwargs)


def responsive_figure(fig, lines: Sequence[str], name: str, narrow_px: int = 640) -> None:
    """A wide figure on a wide screen, its text version on a narrow one (a 390 px phone).

    CSS chooses (a media query, no script): the figure's PNG and the escaped lines are both in the
    page and one of them is hidden, so nothing shrinks below reading size.
    """
    import base64
    import html
    import io

    from ssd.base.figure_lock import FIGURE_LOCK

    buf = io.BytesIO()
    with FIGURE_LOCK:
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    text = html.escape("\n".join(lines))
    st.html(f"""<style>
.{name}-wide {{ display: block; width: 100%; height: auto; }}
.{name}-narrow {{ display: none; white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 0.85rem; }}
@media (max-width: {int(narrow_px)}px) {{ .{name}-wide {{ display: none; }} .{name}-narrow {{ display: block; }} }}
</style>
<img class="{name}-wide" alt="{html.escape(lines[0] if lines else name)}" src="data:image/png;base64,{png}">
<div class="{name}-narrow">{text}</div>""")


def image_bytes_name(uploaded) -> Tuple[str, bytes]:
    return uploaded.name, uploaded.getvalue()


def training_metrics_explained(history, container=st) -> None:
    """The last epoch's class err, bbox MAE (as the d2l book's "Single Shot Multibox Detection"
    defines them) and mined class err, each with one line saying what it measures; old histories
    show their class err as the mined one."""
    from ssd.models.metric_names import METRIC_NOTES, named_record

    if not history:
        return
    last = named_record(history[-1])
    values = {"class err": last.get("class_err"), "bbox MAE": last.get("bbox_mae"),
              "mined class err": last.get("mined_class_err")}
    cols = container.columns(len(values))
    for col, (name, value) in zip(cols, values.items()):
        col.metric(name, "n/a" if value is None else f"{value:.2e}", help=METRIC_NOTES[name])
    container.caption("  \n".join(f"**{name}**: {note}" for name, note in METRIC_NOTES.items()))
