"""What a model folder's ``meta.json`` says it can find, in words for people.

Pages and the ``models`` command show this beside every model, so that nobody is surprised when
the synthetic-Pikachu model calls a face "pikachu"; it reads only the metadata, never weights.
"""
from __future__ import annotations

import os
from typing import Any, Dict

PRETRAINED_KINDS = ("gluoncv-model-zoo", "torchvision")


def _part(meta: Dict[str, Any], key: str) -> Dict[str, Any]:
    """``meta[key]`` when it is an object, else ``{}``: meta.json comes from outside (hand-edited, another
    tool's), and a ``source`` or ``dataset`` written as text must not take a page down."""
    value = meta.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    """A field shown in a label: text as it is, anything else (a list, an object) as nothing."""
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""


def _trained_on(meta: Dict[str, Any]) -> str:
    ds = _part(meta, "dataset")
    path = _text(ds.get("path"))
    folder = os.path.basename(os.path.normpath(str(path))) if path else ""
    if not folder:
        return ""
    synthetic = " (synthetic images)" if "synth" in folder.lower() else ""
    n = _text(ds.get("num_train"))
    return f", trained on {n} images of {folder}{synthetic}" if n else f", trained on {folder}{synthetic}"


def model_knowledge(meta: Dict[str, Any]) -> str:
    """What a model can find, in one line, so nobody is surprised when a face is called a Pikachu.

    ``80 COCO classes (GluonCV's ssd_512_mobilenet1.0_coco, COCO AP 21.7)`` for a pulled detector,
    ``1 class: pikachu, trained on 1000 images of synth-pikachu (synthetic images)`` for a trained one.
    """
    classes = [str(c) for c in meta.get("classes") or []]
    src = _part(meta, "source")
    if src.get("kind") in PRETRAINED_KINDS:
        pub = _part(src, "published")
        score = f", {_text(pub['metric'])} {_text(pub.get('value'))}" if pub.get("metric") else ""
        who = "GluonCV" if src["kind"] == "gluoncv-model-zoo" else "torchvision"
        return f"{len(classes)} {_text(src.get('dataset'))} classes ({who}'s {_text(src.get('name'))}{score})".replace("  ", " ")
    shown = ", ".join(classes[:6]) + (f", … ({len(classes) - 6} more)" if len(classes) > 6 else "")
    head = f"{len(classes)} class{'es' if len(classes) != 1 else ''}: {shown}"
    return head + _trained_on(meta)


def is_pretrained_detector(meta: Dict[str, Any]) -> bool:
    """True for a folder installed by ``pull_model`` (a ready-made real-world detector)."""
    return _part(meta, "source").get("kind") in PRETRAINED_KINDS


def provenance(meta: Dict[str, Any]) -> str:
    """How many classes a model knows and where it came from, short enough for a picker's option:
    ``20 Pascal VOC classes, pulled from GluonCV``, ``3 classes, trained on 120 images of ena24``."""
    n = len(meta.get("classes") or [])
    src = _part(meta, "source")
    if src.get("kind") in PRETRAINED_KINDS:
        who = "GluonCV" if src["kind"] == "gluoncv-model-zoo" else "torchvision"
        return f"{n} {_text(src.get('dataset'))} classes, pulled from {who}".replace("  ", " ")
    return f"{n} class{'es' if n != 1 else ''}" + _trained_on(meta)
