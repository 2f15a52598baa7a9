"""Streamlit-side caches shared by the pages (not a page itself: st.navigation lists the pages).

Only caching and small layout helpers live here; every computation is in ``ssd``.
"""
from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Sequence, Tuple

import streamlit as st

from app_pages import _url
from ssd.base.lru import BytesLRU
from ssd.base.memory import freeze_loaded_data
from ssd.base.text import md_escape, plain_text
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


SERVER_MAX_BATCH = 1    # images per forward in the app: the graph keeps memory for each batch size it ran


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def detector(path: str, stamp: float, precision: Optional[str] = None, engine: str = "auto"):
    """A loaded, warmed Detector per model folder, meta/params mtime, precision and engine.

    ``stamp`` is part of the key so a model retrained in place is reloaded. The Detector
    serializes its forward calls with its own lock, so sessions can share it. Its forwards run
    on one inference thread per server, at most ``SERVER_MAX_BATCH`` images each.
    """
    from ssd.inference.engines import load_detector

    det = load_detector(path, engine, precision, worker=True,   # one inference thread per server
                        ctx=devices().contexts[0] if engine != "onnxruntime" else None)
    det.max_batch = SERVER_MAX_BATCH
    return det


def get_detector(path: str, precision: Optional[str] = None, engine: str = "auto"):
    """The server's Detector for a model folder: "auto" and ``None`` are one Detector, and so are
    "auto" and the precision it picks (two loaded graphs of one model were half the memory a walk
    of the pages left behind)."""
    from ssd.inference.engines import resolved_precision

    precision = resolved_precision(path, engine, precision, ctx=devices().contexts[0])
    return detector(*model_key(path), precision, engine)


ENGINE_HELP = ("auto: the fastest engine this machine runs for this model (ONNX Runtime, on a GPU when "
               "onnxruntime-gpu can use one, else MXNet), with the reason shown. onnxruntime converts the "
               "model to ONNX once (kept in its folder). mxnet: MXNet on the CPU, or on a GPU of compute "
               "capability 5.0–8.6.")


def engine_select(key: str, container=st, choices: Optional[Sequence[str]] = None, url: Optional[str] = None) -> str:
    """The inference engine picker (Detect and Camera traps pages share its choices and help);
    ``choices``: the engines the chosen model allows (``engine_choices``), all by default;
    ``url``: the query parameter that keeps it in the address."""
    from ssd.inference.engines import ENGINES

    choices = list(choices or ENGINES)
    if key in st.session_state and st.session_state[key] not in choices:
        del st.session_state[key]          # e.g. mxnet, then a folder exported as ONNX was picked

    def select() -> str:
        return container.selectbox("Engine", choices, persist_state="session", key=key, help=ENGINE_HELP)

    return select() if url is None else _url.synced(url, key, _url.choice(choices), choices[0], select)


@st.cache_resource(show_spinner="Reading the results…", max_entries=2)
def _results(path: str, stamp: Tuple[int, int]) -> tuple:
    """``(compact records, index)``: the boxes of the images shown are read back when shown
    (``ssd.camtrap.page_results``); parsed whole, a season of 100,000 x 84 boxes held ~4 GB."""
    from ssd.camtrap.page_results import open_compact

    opened = open_compact(path)
    freeze_loaded_data()           # out of the collector's full passes (seconds each at 100,000 entries)
    return opened


@st.cache_resource(show_spinner="Reading the names below the path prefix…", max_entries=2)
def _rebased(path: str, stamp: Tuple[int, int], path_prefix: str) -> tuple:
    from ssd.camtrap.rebase import rebase_results

    doc, index = _results(path, stamp)
    doc = rebase_results(doc, path_prefix)          # entry for entry, in order: the index still fits
    freeze_loaded_data()
    return doc, index


def season_wide(name: str, key: tuple, compute):
    """``compute()``, or its value from this session's last run when ``key`` (results file, its
    version on disk, prefix, filters) is the same: a page turn or a photo opened large reruns the
    page, and recounting a season of 100,000 entries took seconds each time."""
    held = st.session_state.get(name)
    if held is not None and held[0] == key:
        return held[1]
    value = compute()
    st.session_state[name] = (key, value)
    return value


def results_doc(path: str, path_prefix: str = "") -> dict:
    """``results_file``'s document: a compact record per image (no boxes but a suspect's)."""
    return results_file(path, path_prefix)[0]


def results_file(path: str, path_prefix: str = "") -> tuple:
    """``(document, index)``: a results file read and checked once per version on disk (its mtime and size), not on every
    rerun: a season's file (200,000 entries) took seconds to parse and check, and a slider move
    reran that. Shared by reruns and sessions, so the pages only read it: every change (a repeat
    review) is made on a copy and written to a file of its own. ``path_prefix``: the names below it,
    relative (``ssd.camtrap.rebase``), for results written on another machine. The document's
    entries are compact records (``ssd.camtrap.page_results``): ``in_full(doc, index, entries)``
    reads the boxes of those shown, ``whole_doc(doc, index)`` all of them for a download or export."""
    import os

    try:
        st_ = os.stat(path)
        stamp = (st_.st_mtime_ns, st_.st_size)
    except OSError:
        stamp = (0, -1)                  # read_results says why it cannot be read
    return _rebased(path, stamp, path_prefix) if path_prefix else _results(path, stamp)


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
    """Raw detections and display pictures per (model, image bytes, NMS), shared by every session of
    this server; bounded in bytes and entries (DetectionCache's defaults)."""
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


def model_picker(label: str, ok, default_path: Optional[str], key: str, container=st,
                 url: Optional[str] = None) -> Optional[str]:
    """A selectbox over model folders (paths), the default pre-selected; ``url``: the name of the
    query parameter that keeps the choice in the address, as the folder's name (never its path)."""
    if not ok:
        return None
    paths = [m.path for m in ok]
    labels = {m.path: m.label + ("  ★ default" if m.path == default_path else "") for m in ok}
    index = paths.index(default_path) if default_path in paths else 0
    if key in st.session_state and st.session_state[key] not in paths:
        del st.session_state[key]          # the model was deleted or renamed

    def picker() -> str:
        return container.selectbox(label, paths, index=index, format_func=lambda p: plain_text(labels.get(p, p)),
                                   persist_state="session", key=key)

    if url is None:
        return picker()
    return _url.synced(url, key, _url.choice(paths, os.path.basename), paths[index], picker, os.path.basename)


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


FIGURE_DPI = 144       # 6-inch figures come out 864 px wide: sharp in a column, a quarter of st.pyplot's pixels


FIGURE_CACHE_BYTES, FIGURE_CACHE_ENTRIES = 48 * 1024 * 1024, 128


@st.cache_resource
def _figure_cache() -> BytesLRU:
    """Rendered figures (PNG bytes) of this server, by what they show; bounded in bytes and count."""
    return BytesLRU(FIGURE_CACHE_BYTES, FIGURE_CACHE_ENTRIES)


def cached_figure(key: tuple, build: Callable[[], Any]) -> None:
    """Show the figure ``build()`` makes, built and rendered only the first time ``key`` is seen.

    ``key`` must name everything the figure depends on; a rerun that changed something else (another
    panel's slider) then shows the same PNG without drawing it again."""
    from ssd.viz.plots import figure_png

    cache = _figure_cache()
    png = cache.get(key)
    if png is None:
        png = figure_png(build(), dpi=FIGURE_DPI)
        cache.put(key, png, len(png))
    st.image(png, width="stretch")


def cached_figure_columns(key: tuple, build: Callable[[], Sequence]) -> None:
    """``figure_columns`` for figures built together (``build()`` returns them all), drawn and
    rendered only the first time ``key`` is seen: the Train page reruns every 2 s while a job trains,
    on the cores the job trains on, and its curves change once an epoch."""
    from ssd.viz.plots import figure_png

    cache = _figure_cache()
    count = cache.get(key + ("count",))
    pngs = [cache.get(key + (i,)) for i in range(int(count))] if count else []
    if not pngs or any(png is None for png in pngs):
        pngs = [figure_png(fig, dpi=FIGURE_DPI) for fig in build()]
        for i, png in enumerate(pngs):
            cache.put(key + (i,), png, len(png))
        cache.put(key + ("count",), str(len(pngs)).encode(), 1)
    for col, png in zip(st.columns(len(pngs)), pngs):
        col.image(png, width="stretch")


def cache_report(path: str) -> None:
    """Write the server's bounded caches' sizes to ``path`` (JSON), for scripts/bench_memory.py."""
    from ssd.base.atomic import atomic_write_json

    atomic_write_json(path, {"detections and pictures": detection_cache().stats(), "figures": _figure_cache().stats()})


def figure(fig) -> None:
    """Show a matplotlib Figure (built without pyplot, laid out by its builder) and let it go.

    Rendered once at ``FIGURE_DPI`` under the figure lock (matplotlib's text layout is not
    thread-safe across sessions). Not st.pyplot: its 200 dpi and "tight" bounding box (a second
    full draw) made a figure cost about five times as much to render and send."""
    from ssd.viz.plots import figure_png

    st.image(figure_png(fig, dpi=FIGURE_DPI), width="stretch")


def figure_columns(figs: Sequence) -> None:
    """Figures side by side on a wide screen, one under another on a phone (Streamlit stacks
    columns below 640 px), each keeping a readable size instead of shrinking together."""
    for col, fig in zip(st.columns(len(figs)), figs):
        with col:
            figure(fig)


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


def style(*css: str) -> None:
    """Page CSS, all in one element (each element is one more message on every rerun)."""
    st.html("<style>" + "\n".join(css) + "</style>")


def sticky_css(key: str) -> str:
    """Keeps the container ``key`` at the top of the screen (under Streamlit's header) while the
    rest of its block scrolls by; opaque, in the theme's background. Streamlit may wrap the
    container in a layout div: the sticky box must be the outermost one."""
    dark = getattr(getattr(st.context, "theme", None), "type", None) == "dark"
    return (f'[data-testid="stLayoutWrapper"]:has(> .st-key-{key}), .st-key-{key} {{ position: sticky; '
            f'top: 3.75rem; z-index: 99; padding: 0.25rem 0; background-color: {"#0e1117" if dark else "#ffffff"}; }}')


def overlay_css(picture_prefix: str) -> str:
    """Lays the boxes (``picture_with_boxes``) over the picture at the top of each ``picture_prefix*``
    container (Streamlit gives a keyed container the class ``st-key-KEY``), and hides the picture's
    full-screen button (full screen would show it without its boxes)."""
    scope = f'[class*="st-key-{picture_prefix}"]'
    return (f'{scope} {{ position: relative; }}\n'
            f'{scope} [data-testid="stElementContainer"]:has(img.ssd-boxes) {{ position: absolute; top: 0; '
            f'left: 0; width: 100%; pointer-events: none; }}\n'
            f'{scope} [data-testid="stElementToolbar"] {{ display: none; }}')


def picture_with_boxes(jpeg: bytes, svg: str, key: str, caption: str) -> None:
    """A picture and an SVG of boxes over it, in the container ``key`` (``overlay_css`` places them).

    Why two elements: the picture is the same bytes on every rerun, so Streamlit serves the same
    URL and the browser keeps the image; a slider move changes only the SVG, a few hundred bytes.
    The SVG goes in as an image (st.html keeps HTML only), so nothing in it can run or fetch.
    """
    import base64

    with st.container(key=key):
        st.image(jpeg, caption=caption, width="stretch", output_format="JPEG")
        st.html(f'<img class="ssd-boxes" alt="" style="display:block;width:100%" '
                f'src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode("ascii")}">')


ROW_PX = 35        # st.dataframe's row (and header) height


def table_height(rows: int, most: int = 10) -> int:
    """A dataframe's height in pixels that fits ``rows`` rows (at most ``most``, then it scrolls) and
    its header exactly: no blank or half row at the bottom."""
    return (min(rows, most) + 1) * ROW_PX + 2


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
