"""What every architecture's fine-tuning shares: which old classes start which new ones, and
reading a model folder given as ``--pretrained``.

A detector trained on COCO already knows bird, cat, dog, horse and bear; fine-tuning it to
camera-trap classes (``Domestic Cat``, ``American Black Bear``) should start those classes from
the weights that know them. ``class_reuse_map`` says which; each recipe copies the weights its
own way (GluonCV's ``reset_class``, SSDlite's slot copy).
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ssd.base.errors import ModelError

_SYNONYMS = {"human": "person", "people": "person", "man": "person", "woman": "person",
             "motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch", "tvmonitor": "tv"}
FOLDER_PARAMS = "model.params"
SCRATCH = ("", "none", "scratch")      # --pretrained values that mean no starting point
FOLDER_META = "meta.json"
_START_FIELDS = ("arch", "classes", "input_size", "anchors")   # meta.json fields a start reads


def _norm_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


def class_reuse_map(new_classes: Sequence[str], old_classes: Sequence[str]) -> Dict[str, str]:
    """``{new: old}`` for classes the pretrained detector already knows.

    A name matches when equal ignoring case, spaces/underscores; else when its last word is an
    old class (``Domestic Cat`` → ``cat``, ``American Black Bear`` → ``bear``); else through a
    few synonyms (``Human`` → ``person``). Two new classes may start from the same old one.
    """
    old = {_norm_name(o): o for o in old_classes}
    out: Dict[str, str] = {}
    for n in new_classes:
        k = _norm_name(n)
        hit = old.get(k)
        if hit is None and " " in k:
            hit = old.get(k.split(" ")[-1])
        if hit is None:
            syn = _SYNONYMS.get(k) or _SYNONYMS.get(k.split(" ")[-1] if k else "")
            if syn:
                hit = old.get(syn)
        if hit is not None:
            out[n] = hit
    return out


def read_folder_meta(path: str) -> Optional[Dict[str, Any]]:
    """The meta.json of the model folder ``path`` (one holding meta.json and model.params), else None
    when ``path`` is no model folder; ``ModelError`` when its meta.json is unreadable or lists no classes."""
    meta_path = os.path.join(path, FOLDER_META)
    if not (os.path.isdir(path) and os.path.isfile(meta_path) and os.path.isfile(os.path.join(path, FOLDER_PARAMS))):
        return None
    from ssd.base.json_file import read_json_file
    from ssd.base.meta_schema import MAX_META_BYTES, meta_problems

    try:
        meta = read_json_file(meta_path, MAX_META_BYTES)
    except (OSError, ValueError) as err:
        raise ModelError(f"--pretrained {path}: {meta_path} is not readable JSON ({err})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("classes"), list):
        raise ModelError(f"--pretrained {path}: {meta_path} has no class list")
    if not isinstance(meta.get("arch"), str):
        raise ModelError(f"--pretrained {path}: {meta_path} names no architecture")
    # What a start reads of the folder (its classes, input size, anchors), checked once by the schema:
    # an empty class list or a "64" input size used to fail deep in training, or loop on advice.
    problems = meta_problems({k: meta[k] for k in _START_FIELDS if k in meta})
    if problems:
        raise ModelError(f"--pretrained {path}: {meta_path}: {'; '.join(problems)}")
    return meta


def model_folder_meta(path: str, arch: str) -> Optional[Dict[str, Any]]:
    """The meta.json of a model folder of architecture ``arch`` (a pulled detector, or one we
    trained), else None when ``path`` is no model folder. A folder of another architecture is
    refused: its weights cannot start this one."""
    meta = read_folder_meta(path)
    if meta is not None and meta["arch"] != arch:
        raise ModelError(f"--pretrained {path} is a {meta['arch']!r} model; it cannot start a {arch} "
                         f"(train with --model {meta['arch']}, or choose another starting point)")
    return meta


def slot_sources(classes: Sequence[str], old: Sequence[str]) -> List[int]:
    """For background and each new class, the old class slot whose weights it starts from (-1: none)."""
    reuse = class_reuse_map(classes, old)
    index = {c: i for i, c in enumerate(old)}
    return [0] + [index[reuse[c]] + 1 if c in reuse else -1 for c in classes]


def copy_class_slots(new: np.ndarray, old: np.ndarray, anchors: int, sources: Sequence[int]) -> np.ndarray:
    """``new`` with each anchor's slot j taken from ``old``'s slot ``sources[j]`` where there is one.

    A class predictor's rows (weights, or biases) are laid out anchor by anchor, each anchor's
    slots together (background first): a reused class is copied for every anchor."""
    out = new.reshape((anchors, -1) + new.shape[1:]).copy()
    src = old.reshape((anchors, -1) + old.shape[1:])
    for j, s in enumerate(sources):
        if s >= 0:
            out[:, j] = src[:, s]
    return out.reshape(new.shape)


def run_record(run_dir: str) -> Dict[str, Any]:
    """The meta.json the run in ``run_dir`` wrote when it started, {} when there is none readable.

    On a resume the starting point is this record, never a folder to read again: the checkpoint
    brings every weight, and the folder may since have been moved, deleted or changed."""
    from ssd.base.json_file import read_json_file
    from ssd.base.meta_schema import MAX_META_BYTES

    try:
        meta = read_json_file(os.path.join(run_dir, FOLDER_META), MAX_META_BYTES)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def recorded_start(run_dir: str, pretrained: Optional[str], fallback: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The ``start`` record of the run in ``run_dir`` that a resume keeps; for a run written before it
    was recorded, ``fallback`` or where ``pretrained`` points (None for scratch)."""
    start = run_record(run_dir).get("start")
    if isinstance(start, dict) and "pretrained" in start:
        return dict(start)
    p = (pretrained or "").strip()
    return dict(fallback) if fallback is not None else {"pretrained": None if p.lower() in SCRATCH
                                                        else os.path.abspath(p)}
