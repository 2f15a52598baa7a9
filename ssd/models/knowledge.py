"""What a model folder's ``meta.json`` says it can find, in words for people.

Pages and the ``models`` command show this beside every model, so that nobody is surprised when
the synthetic-Pikachu model calls a face "pikachu"; it reads only the metadata, never weights.
"""
from __future__ import annotations

import os
from typing import Any, Dict

PRETRAINED_KINDS = ("gluoncv-model-zoo", "torchvision")


def _trained_on(meta: Dict[str, Any]) -> str:
    ds = meta.get("dataset") or {}
    folder = os.path.basename(os.path.normpath(str(ds.get("path") or ""))) if ds.get("path") else ""
    if not folder:
        return ""
    synthetic = " (synthetic images)" if "synth" in folder.lower() else ""
    n = ds.get("num_train")
    return f", trained on {n} images of {folder}{synthetic}" if n else f", trained on {folder}{synthetic}"


def model_knowledge(meta: Dict[str, Any]) -> str:
    """What a model can find, in one line, so nobody is surprised when a face is called a Pikachu.

    ``80 COCO classes (GluonCV's ssd_512_mobilenet1.0_coco, COCO AP 21.7)`` for a pulled detector,
    ``1 class: pikachu, trained on 1000 images of synth-pikachu (synthetic images)`` for a trained one.
    """
    classes = [str(c) for c in meta.get("classes") or []]
    src = meta.get("source") or {}
    if src.get("kind") in PRETRAINED_KINDS:
        pub = src.get("published") or {}
        score = f", {pub['metric']} {pub['value']}" if pub.get("metric") else ""
        who = "GluonCV" if src["kind"] == "gluoncv-model-zoo" else "torchvision"
        return f"{len(classes)} {src.get('dataset', '')} classes ({who}'s {src.get('name')}{score})".replace("  ", " ")
    shown = ", ".join(classes[:6]) + (f", … ({len(classes) - 6} more)" if len(classes) > 6 else "")
    head = f"{len(classes)} class{'es' if len(classes) != 1 else ''}: {shown}"
    return head + _trained_on(meta)


def is_pretrained_detector(meta: Dict[str, Any]) -> bool:
    """True for a folder installed by ``pull_model`` (a ready-made real-world detector)."""
    return (meta.get("source") or {}).get("kind") in PRETRAINED_KINDS


def provenance(meta: Dict[str, Any]) -> str:
    """How many classes a model knows and where it came from, short enough for a picker's option:
    ``20 Pascal VOC classes, pulled from GluonCV``, ``3 classes, trained on 120 images of ena24``."""
    n = len(meta.get("classes") or [])
    src = meta.get("source") or {}
    if src.get("kind") in PRETRAINED_KINDS:
        who = "GluonCV" if src["kind"] == "gluoncv-model-zoo" else "torchvision"
        return f"{n} {src.get('dataset', '')} classes, pulled from {who}".replace("  ", " ")
    return f"{n} class{'es' if n != 1 else ''}" + _trained_on(meta)
