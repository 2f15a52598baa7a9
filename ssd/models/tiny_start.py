"""A TinySSD run that starts from a TinySSD model folder: a researcher adding photos or classes to
their own model keeps what it learned.

Every block's weights (BatchNorm statistics too) and the box predictors are copied; the class
predictors are re-headed by class name (``class_reuse_map``), as the other architectures do: a
class the folder knows keeps its rows for every anchor, background keeps its own, a new class
starts as a fresh run's would (Xavier). The folder's input size and anchors decide the shapes the
weights were learned for, so a run asking for others is refused, naming the values to give.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

from ssd.base.errors import ModelError, SSDError, error_gist
from ssd.models.starting_point import (FOLDER_PARAMS, SCRATCH, copy_class_slots, model_folder_meta,
                                       slot_sources)

ARCH = "tiny"
CLASS_HEAD = "cls_heads."


def tiny_folder(pretrained: Optional[str]) -> Optional[Dict[str, Any]]:
    """The meta.json of the TinySSD folder ``pretrained`` names; None for a start from scratch;
    ``SSDError`` for anything else (a name, a .params file, a folder of another architecture)."""
    p = (pretrained or "").strip()
    if p.lower() in SCRATCH:
        return None
    meta = model_folder_meta(p, ARCH)
    if meta is None:
        raise SSDError(f"--pretrained {pretrained}: tiny (TinySSD) starts from scratch or from a TinySSD model "
                       "folder (meta.json + model.params); to fine-tune a detector, train --model "
                       "ssdlite320_mobilenet_v3_large (or a GluonCV SSD) with --pretrained")
    return meta


def check_same_shapes(cfg, path: str, meta: Dict[str, Any], anchors: Any) -> None:
    """``SSDError`` when the run's input size or anchors (``anchors``: its ``AnchorConfig``) are not the
    folder's: its weights were learned for those feature maps and anchors per cell."""
    size = meta.get("input_size")
    if size != cfg.input_size:
        raise SSDError(f"--pretrained {path} was trained at {size} px and this run asks for {cfg.input_size}: "
                       f"a TinySSD starts only at its own input size (give --input-size {size})")
    saved = meta.get("anchors") or {}
    ours = {"sizes": [list(map(float, s)) for s in anchors.sizes],
            "ratios": [list(map(float, r)) for r in anchors.ratios]}
    theirs = {k: saved.get(k) for k in ours}
    if any(theirs[k] is not None and _groups(theirs[k]) != ours[k] for k in ours):
        raise SSDError(f"--pretrained {path} has anchors sizes {theirs['sizes']}, ratios {theirs['ratios']} and this "
                       f"run asks for sizes {ours['sizes']}, ratios {ours['ratios']}: a TinySSD starts only with its "
                       "own anchors (give its --sizes and --ratios)")


def folder_shapes(meta: Dict[str, Any]) -> Dict[str, Any]:
    """The settings (``input_size``, ``sizes``, ``ratios``) a run starting from the TinySSD folder of
    ``meta`` takes so that ``check_same_shapes`` holds; only those the folder records."""
    saved = meta.get("anchors") if isinstance(meta.get("anchors"), dict) else {}
    shapes = {k: _groups(saved.get(k)) for k in ("sizes", "ratios")}
    size = meta.get("input_size")
    shapes["input_size"] = size if isinstance(size, int) and not isinstance(size, bool) else None
    return {k: v for k, v in shapes.items() if v is not None}


def _groups(value: Any) -> Optional[List[List[float]]]:
    try:
        return [[float(v) for v in g] for g in value]
    except (TypeError, ValueError):
        return None


def start_from_folder(net, ctx, path: str, meta: Dict[str, Any], classes: Sequence[str], load) -> Dict[str, Any]:
    """Copy the folder's weights into ``net``, initialized on ``ctx`` among others (``load(meta)``: the
    folder's network, uninitialized); the ``start`` record for meta.json (weights, parameters copied,
    classes reused)."""
    import mxnet as mx

    net(mx.nd.zeros((1, 3, net.input_size, net.input_size), ctx=ctx))   # the heads' shapes, deferred till now

    old_net = load(meta)
    params = os.path.join(path, FOLDER_PARAMS)
    try:
        old_net.load_parameters(params, ctx=mx.cpu())     # MXNet's array file: no pickle
    except Exception as err:
        raise ModelError(f"--pretrained {path}: its weights do not load into {ARCH} ({error_gist(err)})") from None
    old_classes = [str(c) for c in meta["classes"]]
    sources = slot_sources(classes, old_classes)
    old = old_net._collect_params_with_prefix()
    _check_finite(path, old)
    copied = 0
    for name, p in net._collect_params_with_prefix().items():
        value = old[name].data().asnumpy()
        if name.startswith(CLASS_HEAD):
            scale = int(name[len(CLASS_HEAD):].split(".")[0])
            value = copy_class_slots(p.data().asnumpy(), value, net.anchor_config.anchors_per_cell(scale), sources)
        p.set_data(mx.nd.array(value, dtype="float32"))
        copied += 1
    return {"pretrained": os.path.abspath(path), "weights": os.path.abspath(params), "loaded": copied,
            "reused_classes": {c: old_classes[s - 1] for c, s in zip(classes, sources[1:]) if s > 0}}


def _check_finite(path: str, params: Dict[str, Any]) -> None:
    """``ModelError`` when a weight of the folder is NaN or infinite: a run started from it would train
    to 'loss nan' and save a model that detects nothing."""
    import numpy as np

    for name, p in params.items():
        if not np.isfinite(p.data().asnumpy()).all():
            raise ModelError(f"--pretrained {path}: its weights are not finite (NaN or infinity in {name}); "
                             "start from another folder or from scratch")
