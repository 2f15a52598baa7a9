"""What a training run is asked to do: ``TrainConfig`` and the architecture defaults it fills.

Options a person leaves unset are ``None`` and get the architecture's own defaults (its recipe's
``defaults``): TinySSD trains best with the SSD paper's loss and SGD with momentum, a GluonCV SSD
with GluonCV's reference settings. An explicit value always wins, and the defaults that were
used are printed and stored with the model.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ssd.base.errors import SSDError
from ssd.base.file_cache import per_file_version
from ssd.data.dataset import DEFAULT_VAL_FRACTION
from ssd.models.recipe import Recipe
from ssd.models.registry import architectures, recipe_for
from ssd.models.knowledge import provenance
from ssd.models.starting_point import FOLDER_META, SCRATCH, read_folder_meta
from ssd.models.training_graph import PRECISIONS
from ssd.training import defaults

DEFAULT_ARCH = "tiny"                # what a run trains when neither --model nor a starting folder says
# Options whose default depends on the architecture (None until resolve_defaults fills them).
DEFAULTED_FIELDS = ("lr", "momentum", "lr_schedule", "input_size", "hard_negative_ratio", "loss_norm", "box_loss")
# What the multibox loss takes when an architecture leaves these open (GluonCV recipes do).
_LOSS_FALLBACK = {"loss_norm": "positives", "box_loss": "smooth_l1"}
# Bounds past which an option is a typo, not a choice: MXNet's optimizer cannot even parse a weight
# decay of 1e308 (a traceback), momentum ≥ 1 diverges, and a 100000-pixel input asks for 60 G floats.
MAX_LR = 10.0
MAX_INPUT_SIZE = 2048
# What decides the weights a run computes: a resume that changed any of them would continue another
# run from this one's checkpoint (the epochs, device, arithmetic and caching may change).
FIXED_ON_RESUME = ("data", "arch", "input_size", "sizes", "ratios", "cls_loss", "box_loss", "hard_negative_ratio",
                   "loss_norm", "batch_size", "lr", "wd", "momentum", "lr_schedule", "warmup_iters", "augment",
                   "seed", "val_fraction", "limit_train", "limit_val", "max_iters_per_epoch")


@dataclass
class TrainConfig:
    data: str
    out: str
    arch: str = DEFAULT_ARCH
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    # None = the architecture's default (its recipe's ``defaults``); an explicit value always
    # wins. resolve_defaults() fills them before training.
    lr: Optional[float] = None
    wd: float = defaults.WEIGHT_DECAY
    momentum: Optional[float] = None
    lr_schedule: Optional[str] = None    # constant | cosine | step
    warmup_iters: int = defaults.WARMUP_ITERS
    input_size: Optional[int] = None
    sizes: Optional[List[List[float]]] = None
    ratios: Optional[List[List[float]]] = None
    cls_loss: str = "ce"                 # ce | focal
    box_loss: Optional[str] = None       # l1 | smooth_l1
    hard_negative_ratio: Optional[float] = None  # 0 = off; 3 = SSD paper
    loss_norm: Optional[str] = None      # d2l | positives (SSD paper)
    augment: bool = True
    seed: int = 0
    resume: bool = False
    device: str = "auto"                 # auto | cpu | gpu
    precision: str = "auto"              # training arithmetic: auto | fp32 | bf16 (ssd.models.training_graph)
    val_fraction: float = DEFAULT_VAL_FRACTION   # for datasets without a validation split
    cache: bool = True                   # decode large photos once into an on-disk cache
    limit_train: Optional[int] = None    # use only the first N training images (smoke runs)
    limit_val: Optional[int] = None
    max_iters_per_epoch: Optional[int] = None
    kvstore: str = "device"
    pretrained: Optional[str] = None     # zoo models: "imagenet", "voc", "coco" or a .params path
    command: str = ""
    default: bool = False                # mark the saved model as the app's default
    quantize: bool = False               # after training: python -m ssd quantize (INT8 beside the model)

    def validate(self) -> None:
        missing = [k for k in DEFAULTED_FIELDS if getattr(self, k) is None]
        if missing:
            raise SSDError(f"unresolved options {missing}: call resolve_defaults(cfg) first")
        if self.epochs < 1:
            raise SSDError("epochs must be at least 1")
        if self.batch_size < 1:
            raise SSDError("batch size must be at least 1")
        if not 0 < self.lr <= MAX_LR:
            raise SSDError(f"learning rate must be within (0, {MAX_LR}], got {self.lr}")
        if not 0 <= self.wd < 1:
            raise SSDError(f"weight decay must be within [0, 1), got {self.wd}")
        if not 0 <= self.momentum < 1:
            raise SSDError(f"momentum must be within [0, 1), got {self.momentum}")
        if self.precision not in PRECISIONS:
            raise SSDError(f"unknown training precision {self.precision!r} ({', '.join(PRECISIONS)})")
        if self.lr_schedule not in ("constant", "cosine", "step"):
            raise SSDError(f"unknown lr schedule {self.lr_schedule!r} (constant, cosine, step)")
        recipe_for(self.arch).check_config(self)
        if not 64 <= self.input_size <= MAX_INPUT_SIZE:
            raise SSDError(f"input size must be within 64–{MAX_INPUT_SIZE}, got {self.input_size}")

    def fixed_settings(self) -> Dict[str, Any]:
        """What a resume must not change (``FIXED_ON_RESUME``), with the data folder made absolute, and
        where the weights started (``--pretrained``; a path made absolute, scratch as None)."""
        fixed = {k: getattr(self, k) for k in FIXED_ON_RESUME}
        fixed["data"] = os.path.realpath(self.data)
        start = (self.pretrained or "").strip()
        named = start in recipe_for(self.arch).pretrained_choices and not os.path.exists(start)
        # a path made absolute even once gone: a resume names its start as recorded, however typed
        fixed["pretrained"] = None if start.lower() in SCRATCH else start if named else os.path.realpath(start)
        return fixed


def start_from(cfg: TrainConfig, start: str, folder: Optional[str] = None) -> None:
    """Set where ``cfg`` starts: ``start`` when it names one of the architecture's pretrained
    starting points (``imagenet``, ``voc``, ``coco`` for GluonCV SSDs); else the saved model
    ``folder``, whose weights and architecture it takes (re-headed to the dataset's classes, as
    ``train --pretrained FOLDER`` without ``--model``), and the settings its weights need
    (``Recipe.start_shapes``: a TinySSD's input size and anchors); else from scratch, as it was.
    """
    if start in recipe_for(cfg.arch).pretrained_choices:
        cfg.pretrained = start
    elif folder is not None:
        cfg.arch, _ = settle_architecture(None, folder)
        cfg.pretrained = folder
        for name, value in start_shapes(folder).items():
            setattr(cfg, name, value)


def start_shapes(folder: str) -> Dict[str, Any]:
    """What a run starting from the model ``folder`` must take from it (``Recipe.start_shapes``:
    a TinySSD's input size and anchors); {} for a folder no run starts from."""
    try:
        meta = read_folder_meta(folder)
        return recipe_for(meta["arch"]).start_shapes(meta) if meta is not None else {}
    except SSDError:        # unreadable, or an architecture this app does not know: settle_architecture says so
        return {}


def settle_architecture(arch: Optional[str], pretrained: Optional[str]) -> Tuple[str, str]:
    """``(architecture, note)`` of a run asked for ``arch`` (None: not given) starting from ``pretrained``.

    A saved model folder as the start decides the architecture when none is given (the note says
    so); a given one that differs is refused here, before any data is read. Otherwise the given
    architecture, or TinySSD's (``DEFAULT_ARCH``). ``SSDError`` for a folder that no architecture
    here can start from (or whose meta.json is unreadable).
    """
    meta = read_folder_meta(pretrained) if pretrained and pretrained.strip().lower() not in SCRATCH else None
    if meta is None:
        return arch or DEFAULT_ARCH, ""
    found = meta["arch"]
    if arch is not None and arch != found:
        raise SSDError(f"--pretrained {pretrained} is a {found!r} model and --model asks for {arch!r}: a "
                       f"folder's weights start only its own architecture (leave --model out to train "
                       f"{found}, or choose another starting point)")
    if not recipe_for(found).starts_from_folder:
        raise SSDError(f"--pretrained {pretrained} is a {found} model, and {found} cannot start from a "
                       f"saved model folder ({', '.join(folder_architectures())} can)")
    return found, "" if arch else f"architecture {found}, from {pretrained}'s meta.json"


def folder_architectures() -> List[str]:
    """The architectures whose runs can start from a saved model folder of their own."""
    return [name for name in architectures() if recipe_for(name).starts_from_folder]


def start_label(folder: str) -> Optional[str]:
    """The Train page's option for the model ``folder`` as a starting point (name, architecture,
    classes, origin), or None when no run can start from it (the rule ``settle_architecture``
    applies to ``--pretrained FOLDER``). Read once per version of its meta.json: pages ask on every rerun."""
    return _start_label(os.path.join(folder, FOLDER_META))


@per_file_version(maxsize=256, missing=None)
def _start_label(meta_path: str, size: int) -> Optional[str]:
    folder = os.path.dirname(meta_path)
    try:
        meta = read_folder_meta(folder)
        if meta is None or not recipe_for(meta["arch"]).starts_from_folder:
            return None
    except SSDError:     # unreadable, or an architecture this app does not know: not offered
        return None
    return f"{os.path.basename(folder)} · {meta['arch']} · {provenance(meta)}"


def resolve_defaults(cfg: TrainConfig) -> List[str]:
    """Fill every option left at None with the architecture's default; return what was filled."""
    defaults = {**_LOSS_FALLBACK, **recipe_for(cfg.arch).defaults(cfg.batch_size)}
    filled = []
    for name in DEFAULTED_FIELDS:
        if getattr(cfg, name) is None and name in defaults:
            setattr(cfg, name, defaults[name])
            filled.append(f"{name}={defaults[name]!r}")
    return filled


def prepared(cfg: TrainConfig) -> tuple:
    """Resolve and check ``cfg`` in place: ``(recipe, the defaults filled)``; ``SSDError`` if unusable."""
    recipe: Recipe = recipe_for(cfg.arch)
    filled = resolve_defaults(cfg)
    cfg.validate()
    return recipe, filled


def command_line(argv: List[str]) -> str:
    """The command as a person would retype it (stored in the model's metadata)."""
    return "python -m ssd " + " ".join(shlex.quote(a) for a in argv)
