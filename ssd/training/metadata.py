"""The metadata a training run writes beside its weights (``meta.json``)."""
from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any, Dict, List, Optional

from ssd.data.preprocess import MEAN, STD
from ssd.store import library_versions


def build_meta(cfg, plan, classes: List[str], splits, device: str,
               class_mapping: Optional[list] = None) -> Dict[str, Any]:
    """Everything a later reader needs to rebuild and judge the model.

    The architecture's own sections (``anchors``, and e.g. ``zoo``) come from its training plan.
    """
    meta = {
        "arch": cfg.arch, "classes": list(classes), "class_mapping": class_mapping,
        "input_size": cfg.input_size, "anchors": {},
        "normalize": {"mean": list(MEAN), "std": list(STD)},
        "dataset": {"path": os.path.abspath(cfg.data), "kind": splits.kind,
                    "num_train": len(splits.train), "num_val": len(splits.val) if splits.val is not None else 0,
                    "skipped": dict(splits.skipped), "synthetic": synthetic_origin(cfg.data)},
        "training": {"args": asdict(cfg), "command": cfg.command, "device": device,
                     "arithmetic": plan.arithmetic()},
        "default": bool(cfg.default),
        "status": "training",
        "metrics": {"history": [], "best": {}},
        "versions": library_versions(),
    }
    meta.update(plan.meta_fields())
    return meta


def synthetic_origin(folder: str) -> Optional[Dict[str, object]]:
    """How a synthetic set folder was drawn (generator, seed, size, counts), for a model's meta.json:
    with it, the model's own images can be drawn again when the folder is gone (``quantize``)."""
    from ssd.base.json_file import read_json_file
    from ssd.base.meta_schema import MAX_META_BYTES
    from ssd.data.synthetic import GENERATOR

    try:
        info = read_json_file(os.path.join(folder, "dataset.json"), MAX_META_BYTES)
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("generator") != GENERATOR or not isinstance(info.get("seed"), int):
        return None
    return {k: info[k] for k in ("generator", "seed", "size", "num_train", "num_val") if k in info}


def start_note(meta: Dict[str, Any], classes: List[str]) -> Optional[str]:
    """The console's line on a fine-tuning start: which classes kept a detector's weights by name and
    which start untrained. Without it the reuse was seen only in meta.json, and a species list that
    matches none of COCO's names looked like a fine-tune of every class."""
    start = meta.get("start") or meta.get("zoo") or {}
    reused = start.get("reused_classes")
    if not start.get("pretrained") or not isinstance(reused, dict):
        return None                    # from scratch, or a backbone only: no class had weights to keep
    kept = [c if reused[c] == c else f"{c} (from {reused[c]})" for c in classes if c in reused]
    fresh = [c for c in classes if c not in reused]
    line = f"starting from {start['pretrained']}: " + (f"classes reused by name: {', '.join(kept)}" if kept
                                                       else "no class reused by name")
    return line + (f"; new: {', '.join(fresh)}" if fresh else "")
