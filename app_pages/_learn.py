"""Caches and pickers shared by the Learn pages (not a page: st.navigation lists the pages).

Heavy work (a forward pass, a split's detections, an evaluation) is cached on its parameters so
the sliders that only redraw stay instant. Every computation is a library call.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import streamlit as st

from app_pages import _shared as sh
from ssd.base.text import md_escape
from ssd.workspace import SCENES, Sample, data_dir, dataset_choices, demo_sample_index, model_key, sample_scenes


def samples() -> List[Sample]:
    """The synthetic validation samples the Anchors page uses (with their ground truth)."""
    return sh.samples(8, 0, data_dir())


@st.cache_resource(show_spinner="Composing synthetic scenes…")
def _scenes(root: str) -> List[Sample]:
    return sample_scenes(16, 0, root)


def scenes() -> List[Sample]:
    """Sixteen scenes of four synthetic samples each (the Evaluation page's default images)."""
    return _scenes(data_dir())


def sample_picker(key: str, container=st) -> Sample:
    """A selectbox over the synthetic samples, the demo sample pre-selected."""
    pool = samples()
    names = [s.name for s in pool]
    name = container.selectbox("Image (synthetic, with its ground truth)", names,
                               index=demo_sample_index(pool), persist_state="session", key=key)
    return pool[names.index(name)]


def model_choice(key: str, container=st) -> Tuple[Optional[str], Optional[dict]]:
    """The model picker over the models folder; (None, None) with a hint when there is none."""
    _, ok, broken, default_path = sh.list_models()
    if not ok:
        sh.no_model_help()
        sh.show_broken(broken)
        return None, None
    path = sh.model_picker("Model", ok, default_path, key=key, container=container)
    return path, next(m.meta for m in ok if m.path == path)


def model_and_sample(model_col, sample_col, key: str) -> Tuple[str, dict, Sample]:
    """The model picker (``KEY_model``) in one column, the sample picker (``KEY_sample``) in another;
    stops the page, with the no-model help, when there is no model."""
    with model_col:
        path, meta = model_choice(f"{key}_model")
    if path is None:
        st.stop()
    with sample_col:
        sample = sample_picker(f"{key}_sample")
    return path, meta, sample


@st.cache_resource(show_spinner="Running the network once…", max_entries=16)
def _heads(path: str, stamp: float, sample_name: str, png: bytes):
    from ssd.viz.heads import multibox_heads

    # the Learn pages show MXNet's operators, as the tutorials run them
    return multibox_heads(sh.get_detector(path, None, "mxnet"), np.asarray(_decode(png)))


def _decode(png: bytes):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def heads(path: str, sample: Sample):
    """The model's raw head outputs on a sample (``SSDError`` for nets without multibox heads)."""
    return _heads(*model_key(path), sample.name, sample.data)


@st.cache_resource(show_spinner="Assigning the anchors…", max_entries=32)
def _roles(path: str, stamp: float, sample_name: str, png: bytes, ratio: float, overlap: float, _label: np.ndarray):
    from ssd.models.mining import anchor_roles

    h = _heads(path, stamp, sample_name, png)
    return anchor_roles(h.anchors, _label, h.cls_preds, ratio, overlap)


def roles(path: str, sample: Sample, ratio: float, overlap: float):
    """Each anchor's role in the class loss on the sample (cached: moving the loss curves' σ or γ
    must not assign the anchors again)."""
    return _roles(*model_key(path), sample.name, sample.data, float(ratio), float(overlap), sample.label)


@st.cache_resource(show_spinner="Tracing NMS…", max_entries=32)
def _trace(path: str, stamp: float, sample_name: str, png: bytes, nms: float, floor: float):
    from ssd.viz.nms_steps import nms_trace

    h = _heads(path, stamp, sample_name, png)
    return nms_trace(h.anchors, h.cls_preds, h.box_preds, nms, floor)


def trace(path: str, sample: Sample, nms: float, floor: float):
    return _trace(*model_key(path), sample.name, sample.data, float(nms), float(floor))


@st.cache_resource(show_spinner="Running the Detector…", max_entries=32)
def _detected(path: str, stamp: float, sample_name: str, png: bytes, nms: float, floor: float):
    h = _heads(path, stamp, sample_name, png)
    return sh.get_detector(path, None, "mxnet").predict_arrays(h.image[None], nms=nms, floor=floor)[0]


def detected(path: str, sample: Sample, nms: float, floor: float):
    """The MXNet Detector's own output on the sample's network input (cached: stepping through NMS
    only redraws, it must not run the network again)."""
    return _detected(*model_key(path), sample.name, sample.data, float(nms), float(floor))


def held_out(meta: dict) -> Tuple[Tuple[str, float], ...]:
    """The model's own validation draw (``held_out_split``) as a cache key: a COCO Camera Traps set
    opened with the default seed and share showed training images as "validation" to a model
    trained with others, as ``eval`` did before it asked the model."""
    from ssd.inference.evaluation import held_out_split

    return tuple(sorted(held_out_split(meta).items()))


@st.cache_resource(show_spinner="Opening the dataset…", max_entries=4)
def split_of(folder: Optional[str], stamp: float, classes: Tuple[str, ...],
             draw: Tuple[Tuple[str, float], ...] = ()):
    """The validation split (train when there is none) of a folder, drawn as ``draw`` says
    (``held_out``), or the synthetic samples or scenes."""
    from ssd.data.dataset import InMemoryDataset, open_dataset

    if folder is None or folder == SCENES:
        pool = sh.samples(32, 0, data_dir()) if folder is None else scenes()
        return InMemoryDataset([s.array() for s in pool], [s.label for s in pool], list(classes), "synthetic")
    splits = open_dataset(folder, **dict(draw))
    return splits.val if splits.val is not None and len(splits.val) else splits.train


@st.cache_resource(show_spinner="Detecting on the split…", max_entries=8)
def split_detections(path: str, stamp: float, folder: Optional[str], folder_stamp: float, limit: int,
                     nms: float, floor: float):
    from ssd.viz.image_eval import split_detections as detect_split

    det = sh.get_detector(path)
    return detect_split(det, split_of(folder, folder_stamp, tuple(det.classes), held_out(det.meta)), limit, nms, floor)


@st.cache_resource(show_spinner="Evaluating the split (VOC07)…", max_entries=8)
def split_evaluation(path: str, stamp: float, folder: Optional[str], folder_stamp: float, limit: int,
                     nms: float, floor: float, iou: float):
    from ssd.inference.evaluation import evaluate

    det = sh.get_detector(path)
    return evaluate(det, split_of(folder, folder_stamp, tuple(det.classes), held_out(det.meta)), nms=nms, floor=floor,
                    iou_thresh=iou, limit=limit)


@st.cache_resource(show_spinner="Measuring the training metrics…", max_entries=8)
def _measured(path: str, stamp: float, folder: Optional[str], folder_stamp: float, limit: int):
    from ssd.viz.tutorial_metrics import measure_train_metrics

    det = sh.get_detector(path)
    return measure_train_metrics(det, split_of(folder, folder_stamp, tuple(det.classes), held_out(det.meta)), limit)


def measure_metrics_panel(path: str, meta: dict, history) -> None:
    """For a history without the d2l book's class err (saved before it existed): measure it now, on demand."""
    from ssd.models.metric_names import named_record
    from ssd.workspace import folder_stamp

    if not history or named_record(history[-1]).get("class_err") is not None:
        return
    choices = dataset_choices(meta)
    label = next(iter(choices))
    folder = choices[label]
    key = f"train_measure::{path}"
    shown = md_escape(label)            # names a dataset folder: text, not Markdown (a button label renders it)
    if st.button(f"Measure class err, bbox MAE and mined class err now (32 images of {shown})", key=key) \
            or st.session_state.get(key + "::done"):
        st.session_state[key + "::done"] = True
        try:
            m = _measured(*model_key(path), folder, folder_stamp(folder) if folder else 0.0, 32)
        except Exception as err:  # noqa: BLE001 - a GluonCV model or an unreadable dataset: say so, keep the page
            st.info(f"Cannot measure: {md_escape(err)}")
            return
        cols = st.columns(3)
        for col, (name, k) in zip(cols, (("class err", "class_err"), ("bbox MAE", "bbox_mae"),
                                         ("mined class err", "mined_class_err"))):
            col.metric(f"{name} (measured)", f"{m[k]:.2e}")
        st.caption(f"The model's outputs on {m['images']} images of {shown}, through the "
                   "training loss graph with 3:1 hard negative mining (no training step, no augmentation).")
