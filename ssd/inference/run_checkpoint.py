"""A batch run's checkpoint: what is done so far, rewritten atomically, checked before resuming.

Why: a season takes hours; a power cut or Ctrl-C half-way must not cost the finished half. The
file holds the finished ``images`` entries exactly as they will appear in the results, plus the
settings that decide them (model, classes, NMS, floor, shard, path base), so ``--resume`` can
refuse a checkpoint made with other settings instead of mixing two runs.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Union

from ssd.base.atomic import atomic_path
from ssd.inference.megadetector import ResultsError

CHECKPOINT_VERSION = 1


def default_checkpoint_path(out_json: str) -> str:
    """Beside the output: ``season.json`` → ``season.checkpoint.json``."""
    root, _ = os.path.splitext(out_json)
    return root + ".checkpoint.json"


def save_checkpoint(path: str, settings: Dict[str, Any], images: Iterable[Union[str, Dict[str, Any]]]) -> None:
    """Rewrite the checkpoint atomically (a kill at any moment leaves the old or the new file).

    ``images``: entries, or entries already as compact JSON text (what a batch run keeps).
    """
    write_json_with_images(path, {"ssd_batch_checkpoint": CHECKPOINT_VERSION, "settings": settings}, images)


def write_json_with_images(path: str, head: Dict[str, Any], images: Iterable[Union[str, Dict[str, Any]]]) -> None:
    """Write ``head`` plus an ``images`` list atomically, streaming the entries (no giant string)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(head, indent=1)[:-1].rstrip() + (",\n" if head else "\n") + ' "images": [')
        for i, im in enumerate(images):
            fh.write(("\n  " if i == 0 else ",\n  ") + (im if isinstance(im, str) else compact(im)))
        fh.write("\n ]\n}\n")


def compact(entry: Dict[str, Any]) -> str:
    """One entry as compact JSON text: a tenth of the memory of the dict it came from."""
    return json.dumps(entry, separators=(",", ":"))


def load_checkpoint(path: str, settings: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The done entries of a checkpoint made with the same ``settings`` (``ResultsError`` if not)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise ResultsError(f"checkpoint '{path}' cannot be read ({err}); delete it to start over") from None
    if not isinstance(doc, dict) or doc.get("ssd_batch_checkpoint") != CHECKPOINT_VERSION \
            or not isinstance(doc.get("images"), list):
        raise ResultsError(f"'{path}' is not a batch checkpoint of this version; delete it to start over")
    old = doc.get("settings") or {}
    differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
    if differ:
        detail = "; ".join(f"{k}: {old.get(k)!r} then, {settings.get(k)!r} now" for k in differ)
        raise ResultsError(f"checkpoint '{path}' was made with other settings ({detail}); "
                           "run with the same options, or delete it to start over")
    return doc["images"]
