"""``SSDliteRecipe``: torchvision's SSDlite320-MobileNetV3-Large behind the ``Recipe`` interface.

Built from ``meta.json`` alone (``SSDliteSpec.from_meta``), trained by the shared multibox plan
(``ssd.models.ssdlite.training``), decoded as torchvision decodes it (``ssd.models.torchvision_decode``),
exported with its anchors as a graph constant and NMS outside the graph.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from ssd.base.errors import SSDError
from ssd.models.anchor_set import AnchorSet
from ssd.models.coco_slots import coco_classes, kept_slots
from ssd.models.recipe import Decoder, Emit, Recipe
from ssd.models.ssdlite.anchors import anchors_meta, ssdlite_anchor_set
from ssd.models.ssdlite.convert import net_from_state_dict
from ssd.models.ssdlite.network import SSDlite
from ssd.models.ssdlite.spec import ARCH, SSDliteSpec, ssdlite_spec
from ssd.models.ssdlite.training import SSDliteTraining, start_folder
from ssd.models.torchvision_decode import decoder as torchvision_decoder

# torchvision's reference training (references/detection, SSDlite): SGD lr 0.15 for a batch of
# 192 (24 × 8 GPUs), momentum 0.9, cosine schedule; the lr scales linearly with the batch here.
REFERENCE_LR, REFERENCE_BATCH = 0.15, 192
MIN_INPUT = 64
PUBLISHED = {"coco_ap": 21.3, "params": 3440060, "gflops": 0.6}


def ssdlite_meta(spec: SSDliteSpec, classes: Sequence[str]) -> Dict[str, Any]:
    """The meta.json fields that rebuild an SSDlite: classes, input size, normalization, spec, anchors."""
    return {"arch": ARCH, "classes": list(classes), "input_size": spec.input_size,
            "normalize": {"mean": list(spec.mean), "std": list(spec.std)},
            "anchors": anchors_meta(spec), "ssdlite": spec.to_meta(), "postprocess": spec.postprocess()}


def coco_detector(state: Mapping[str, np.ndarray], ctx=None) -> Tuple[SSDlite, Dict[str, Any]]:
    """torchvision's COCO SSDlite state_dict (91 class slots) → our net with 80 classes, and its
    meta.json fields (``ModelError`` naming every key that does not fit)."""
    spec = ssdlite_spec(num_classes=len(coco_classes()))
    net = net_from_state_dict(state, spec, kept_slots(), ctx)
    meta = ssdlite_meta(spec, coco_classes())
    meta["ssdlite"]["published"] = dict(PUBLISHED)
    return net, meta


class SSDliteRecipe(Recipe):
    """SSDlite320 with MobileNetV3-Large (torchvision's layout and numbers)."""

    name = ARCH
    family = "torchvision"
    native_size = 320
    pretrained_choices = ("imagenet",)     # torchvision's MobileNetV3-Large (ssd.models.ssdlite.imagenet)
    starts_from_folder = True

    def defaults(self, batch_size: int) -> Dict[str, Any]:
        return {"lr": REFERENCE_LR * batch_size / REFERENCE_BATCH, "momentum": 0.9, "lr_schedule": "cosine",
                "input_size": self.native_size, "hard_negative_ratio": 3.0, "loss_norm": "positives",
                "box_loss": "smooth_l1"}

    def check_config(self, cfg) -> None:
        if cfg.input_size < MIN_INPUT:
            raise SSDError(f"{ARCH} needs an input of at least {MIN_INPUT} px (native {self.native_size})")
        if not cfg.resume:      # resuming: the start is the run's record, the checkpoint brings the weights
            start_folder(cfg.pretrained)

    def build(self, meta: Dict[str, Any]) -> SSDlite:
        return SSDlite(SSDliteSpec.from_meta(meta))

    def anchor_set(self, meta: Dict[str, Any]) -> AnchorSet:
        return ssdlite_anchor_set(SSDliteSpec.from_meta({"classes": ["object"], **meta}))

    def training_plan(self, cfg, classes: Sequence[str], train_ds, ctxs, emit: Emit,
                      resuming: bool = False) -> SSDliteTraining:
        if cfg.sizes or cfg.ratios:
            emit("warning", message=f"{ARCH} keeps torchvision's anchors; --sizes/--ratios apply to TinySSD only")
        return SSDliteTraining(cfg, classes, train_ds, ctxs, resuming=resuming)

    def decoder(self, meta: Dict[str, Any]) -> Decoder:
        """torchvision's box coder and per-class NMS, with the model's own numbers."""
        return torchvision_decoder(meta)

    def export_outputs(self, net) -> Dict[str, Any]:
        return {"outputs": ["anchors", "cls_preds", "box_preds"], "nms_in_graph": False,
                "decode": "ssd.models.torchvision_decode: torchvision's box coder, per-class top-k and NMS",
                "array_decode": "torchvision_box_coder"}
