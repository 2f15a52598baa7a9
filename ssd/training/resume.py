"""What ``train --resume`` keeps of the run it continues: every setting a person leaves out.

Why: ``--model`` left out meant tiny and every unset option the architecture's default, so
resuming an SSDlite run, or a tiny run started with ``--lr 0.05 --input-size 128``, was refused as
"other settings" until each option was typed again as at the start. The checkpoint records what
decides the weights (``TrainConfig.fixed_settings``); an option left out takes the recorded value,
and one given is compared with it as before (a differing value is refused by the checkpoint).
"""
from __future__ import annotations

import os
import typing
from typing import Any, Dict, Iterable, List

from ssd.base.errors import SSDError
from ssd.base.json_file import read_json_file
from ssd.base.meta_schema import MAX_META_BYTES
from ssd.store import META_FILE
from ssd.training.checkpoint import Checkpoint
from ssd.training.config import DEFAULT_ARCH, FIXED_ON_RESUME, TrainConfig, resolve_defaults

# What a resume takes from its run when left out: what decides the weights, and where they started
# (an SSDlite from ImageNet has another tail than one from a detector). The data folder is always given.
ADOPTED = tuple(k for k in FIXED_ON_RESUME if k != "data") + ("pretrained",)


def run_settings(run_dir: str) -> Dict[str, Any]:
    """The settings of ``ADOPTED`` the run in ``run_dir`` recorded, each of the type its option takes
    (the folder may be copied or planted; an odd value is left out, and the resume then compares the
    option's own value with it). Empty without a readable checkpoint: the resume says why."""
    ckpt = Checkpoint(run_dir)
    try:
        state = ckpt.state() if ckpt.exists() else {}
    except SSDError:
        return {}
    saved = dict(state.get("settings") or {}) if isinstance(state.get("settings"), dict) else {}
    saved.setdefault("arch", state.get("arch"))
    if "pretrained" not in saved:                  # checkpoints written before it was recorded
        saved["pretrained"] = _meta_args(run_dir).get("pretrained")
    hints = typing.get_type_hints(TrainConfig)
    return {k: saved[k] for k in ADOPTED if k in saved and _fits(saved[k], hints[k])
            and (saved[k] is not None or k != "arch")}


def adopt_run_settings(fields: Dict[str, Any], given: Iterable[str], run_dir: str) -> List[str]:
    """Fill ``fields`` (``TrainConfig`` keyword arguments) with the run's own value of each setting
    not in ``given``; return ``name=value`` for each that differs from what the command alone would
    have used (tiny, the architecture's defaults), to be printed."""
    given = set(given)
    taken = {k: v for k, v in run_settings(run_dir).items() if k not in given and fields.get(k) != v}
    plain = TrainConfig(**{**fields, "arch": taken.get("arch") or fields.get("arch") or DEFAULT_ARCH})
    try:
        resolve_defaults(plain)         # the run's architecture's defaults: only a departure is news
    except SSDError:                    # an architecture this version does not know: train says so
        pass
    fields.update(taken)
    return [f"{k}={v!r}" for k, v in taken.items()
            if v != (DEFAULT_ARCH if k == "arch" else getattr(plain, k))]


def _meta_args(run_dir: str) -> Dict[str, Any]:
    """``training.args`` of the run's meta.json ({} when it has none readable)."""
    try:
        args = read_json_file(os.path.join(run_dir, META_FILE), MAX_META_BYTES)["training"]["args"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return args if isinstance(args, dict) else {}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON ``value`` is one the ``TrainConfig`` field typed ``hint`` takes."""
    options = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    for option in options:
        kind = typing.get_origin(option) or option
        if option is type(None):
            if value is None:
                return True
        elif isinstance(value, bool):
            if kind is bool:
                return True
        elif kind is float and isinstance(value, (int, float)):
            return True
        elif isinstance(kind, type) and isinstance(value, kind):
            return True
    return False
