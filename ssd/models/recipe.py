"""The recipe: everything that differs between SSD architectures, behind one interface.

SSD is one algorithm (anchors on several feature maps, a class and a box head per map, target
assignment, a loss over positives and mined negatives, decoding with NMS) with many networks.
What differs from one network to the next is small and always the same list, and a
``Recipe`` holds exactly that list:

* **defaults** — the hyper-parameters its authors train it with;
* **check_config** — options the network cannot take (an input too small, say);
* **build** — the network of a saved model, from its ``meta.json`` alone;
* **anchor_set** — its anchors and their layout (the Anchors page, coverage, targets);
* **training_plan** — its half of a training run: the net ready to train, the batches (train
  transform and targets), one optimisation step (its loss), and the metadata it saves;
* **decoder** — how raw network outputs become ``(ids, scores, boxes)`` per image;
* **export_outputs** — how the network is put into a graph that loads without our classes.

The training loop (``ssd.training.loop``), the ``Detector``, export and the Anchors page call
only this interface, through ``ssd.models.registry.recipe_for(arch)``; no code outside the
registry asks which architecture it has. ``TinyRecipe`` (``ssd.models.tiny``) and
``GluonCVRecipe`` (``ssd.models.gluoncv.recipe``) implement it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

# One image's decoded detections: class ids (N,), scores (N,), boxes (N, 4) normalized corners.
Detections = Tuple[np.ndarray, np.ndarray, np.ndarray]
# decoder(net, x, nms, floor) -> one Detections per image of the batch x
Decoder = Callable[[Any, Any, float, float], List[Detections]]
Emit = Callable[..., None]


@dataclass
class StepStats:
    """What one optimisation step reports: the loop sums these into the epoch's metrics.

    ``sums`` is ``[loss·n, cls_loss·n, box_loss·n, correct anchors, counted anchors]`` over the
    anchors the (mined) class loss counts; ``abs_err`` the summed per-image box-offset MAE (d2l's
    "bbox mae"); ``all_anchor_counts`` ``[correct, anchors]`` over every anchor (d2l's "class err"), or
    ``None`` when a plan does not compute it.
    """

    samples: int
    sums: np.ndarray
    abs_err: float
    all_anchor_counts: Optional[np.ndarray] = None


class TrainingPlan(ABC):
    """An architecture's half of a training run; ``ssd.training.loop.train`` drives it.

    After construction ``net`` is initialized (or loaded from its starting point) on the
    training devices and ``iters`` is the number of steps per epoch.
    """

    net: Any
    iters: int

    @abstractmethod
    def epoch(self, epoch: int) -> Iterable[Any]:
        """The batches of one epoch, reproducible from ``(seed, epoch)``."""

    @abstractmethod
    def step(self, batch: Any, trainer: Any) -> StepStats:
        """Forward, loss, backward and ``trainer.step`` on one batch."""

    def calibration_batches(self, epoch: int) -> List[Any]:
        """Batches (one per device) for re-estimating BatchNorm statistics; none by default."""
        return []

    def skipped_images(self) -> int:
        """Training images that could not be decoded so far (skipped, never fatal)."""
        return 0

    @abstractmethod
    def meta_fields(self) -> Dict[str, Any]:
        """The ``anchors`` section (and any section of its own) for ``meta.json``."""

    def arithmetic(self) -> Dict[str, Any]:
        """How the training step computes (``ssd.models.training_graph``): precision and why."""
        return {"precision": "fp32", "reason": "the network trains as written", "batchnorm_relu_fused": 0}


class Recipe(ABC):
    """What one SSD architecture needs beyond the shared algorithm (see the module docstring)."""

    name: str = ""                       # the architecture name meta.json and ``--model`` use
    family: str = ""                     # "tiny", "gluoncv": a label for people, never a switch
    native_size: int = 256               # input size it is designed for
    pretrained_choices: Tuple[str, ...] = ()   # starting points ``--pretrained`` accepts by name
    starts_from_folder: bool = False     # ``--pretrained FOLDER``: a saved model of its own starts a run

    @abstractmethod
    def defaults(self, batch_size: int) -> Dict[str, Any]:
        """Hyper-parameters for options a user left unset (``TrainConfig`` field → value)."""

    def check_config(self, cfg: Any) -> None:
        """Raise ``SSDError`` for options this network cannot take."""

    def start_shapes(self, meta: Dict[str, Any]) -> Dict[str, Any]:
        """``TrainConfig`` settings a run starting from a saved folder of this architecture (its
        ``meta``) must take from it: those its weights were learned for. None by default (the
        layers take any input size)."""
        return {}

    @abstractmethod
    def build(self, meta: Dict[str, Any]) -> Any:
        """An uninitialized network of a saved model, from its metadata."""

    @abstractmethod
    def anchor_set(self, meta: Dict[str, Any]) -> Any:
        """The model's anchors and layout as an ``ssd.models.anchor_set.AnchorSet``."""

    @abstractmethod
    def training_plan(self, cfg: Any, classes: Sequence[str], train_ds: Any, ctxs: Sequence[Any],
                      emit: Emit, resuming: bool = False) -> TrainingPlan:
        """This architecture's half of a training run (see ``TrainingPlan``)."""

    @abstractmethod
    def decoder(self, meta: Dict[str, Any]) -> Decoder:
        """Raw outputs → detections, for a live network or an exported graph (``meta['format']``)."""

    @abstractmethod
    def export_outputs(self, net: Any) -> Dict[str, Any]:
        """Prepare ``net`` for ``HybridBlock.export`` and describe the graph's outputs.

        Returns ``{"outputs": [...], "decode": "...", "nms_in_graph": bool or None,
        "array_decode": scheme}``, where ``scheme`` names the numpy decoder of those outputs in
        ``ssd.models.array_decode.ARRAY_DECODERS`` (what the ONNX engine runs after the graph;
        a graph without one cannot be run by ONNX Runtime).
        """

    def array_decode(self, meta: Dict[str, Any]) -> Optional[str]:
        """The numpy decoding scheme of this model's graph when its metadata decides it (a converted
        detector's own post-processing, say); ``None``: the one ``export_outputs`` names."""
        return None

    def knowledge(self, meta: Dict[str, Any]) -> str:
        """One line for people: what the model can find ("1 class: pikachu")."""
        classes = list(meta.get("classes") or [])
        shown = ", ".join(map(str, classes[:6])) + (", …" if len(classes) > 6 else "")
        return f"{len(classes)} class{'es' if len(classes) != 1 else ''}: {shown}"


def input_size_of(meta: Dict[str, Any], recipe: Recipe) -> int:
    """The saved input size, else the architecture's native one."""
    return int(meta.get("input_size") or recipe.native_size)


def optional(value: Optional[Any], fallback: Any) -> Any:
    return fallback if value is None else value
