"""``GluonCVRecipe``: one recipe for every GluonCV SSD, parameterized by its preset.

GluonCV nets decode and apply NMS in their own graph, take their anchors from their own
generators, and train with GluonCV's transform and ``SSDMultiBoxLoss``; this module wires those
parts (build, anchors, training, decode, metadata) to the ``Recipe`` interface.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

from ssd.base.errors import SSDError
from ssd.data.preprocess import MEAN, STD
from ssd.models.anchor_set import AnchorSet
from ssd.models.gluoncv.anchors import zoo_anchor_set
from ssd.models.gluoncv.build import build_zoo_net, initialize, layout_options
from ssd.models.gluoncv.decode import decode_exported, decode_live, torchvision_decoder
from ssd.models.gluoncv.metadata import zoo_meta_fields
from ssd.models.gluoncv.presets import PRETRAINED_CHOICES, ZooSpec, require_published, spec_of
from ssd.models.gluoncv.training import ZooTraining
from ssd.models.per_class_nms import is_torchvision
from ssd.models.recipe import Decoder, Emit, Recipe


class GluonCVRecipe(Recipe):
    """A GluonCV model-zoo SSD (``ZooSpec`` from ``presets``)."""

    family = "gluoncv"
    pretrained_choices = PRETRAINED_CHOICES
    starts_from_folder = True

    def __init__(self, spec: ZooSpec) -> None:
        self.spec = spec
        self.name = spec.arch
        self.native_size = spec.base_size

    def defaults(self, batch_size: int) -> Dict[str, Any]:
        """GluonCV's reference settings (``train_ssd.py``): native input size, lr 0.001 × batch / 32,
        SGD momentum 0.9, step schedule, 3:1 hard negatives (``SSDMultiBoxLoss``)."""
        return {"input_size": self.spec.base_size, "lr": 0.001 * batch_size / 32, "momentum": 0.9,
                "lr_schedule": "step", "hard_negative_ratio": 3.0}

    def check_config(self, cfg) -> None:
        """Refuse inputs the zoo layers cannot take, and unknown starting points."""
        if cfg.input_size < self.spec.min_input:
            raise SSDError(f"{cfg.arch} needs an input of at least {self.spec.min_input} px "
                           f"(native {self.spec.base_size}); got {cfg.input_size}")
        p = (cfg.pretrained or "").strip()
        # resuming: the start is the run's record (the checkpoint brings the weights; a folder may be gone)
        if p and p.lower() not in PRETRAINED_CHOICES + ("none", "scratch") and not os.path.exists(p) and not cfg.resume:
            raise SSDError(f"--pretrained {p!r}: use imagenet, voc, coco or the path of a .params file")
        require_published(cfg.arch, p.lower())

    def build(self, meta: Dict[str, Any]):
        variant = (meta.get("zoo") or {}).get("variant", "custom")
        return build_zoo_net(meta["arch"], list(meta["classes"]), variant, **layout_options(meta.get("zoo")))

    def anchor_set(self, meta: Dict[str, Any]) -> AnchorSet:
        return zoo_anchor_set(meta)

    def training_plan(self, cfg, classes: Sequence[str], train_ds, ctxs, emit: Emit,
                      resuming: bool = False) -> ZooTraining:
        return ZooTraining(cfg, classes, train_ds, ctxs, emit, resuming=resuming)

    def decoder(self, meta: Dict[str, Any]) -> Decoder:
        if is_torchvision(meta):
            return torchvision_decoder(meta)
        return decode_exported if meta.get("format") == "symbol" else decode_live

    def array_decode(self, meta: Dict[str, Any]) -> Optional[str]:
        """Converted torchvision detectors keep torchvision's per-class NMS on ONNX Runtime too."""
        return "torchvision" if is_torchvision(meta) else None

    def export_outputs(self, net) -> Dict[str, Any]:
        net.set_nms(nms_thresh=-1)  # keep NMS out of the graph: the Detector applies it, adjustable
        return {"outputs": ["ids", "scores", "boxes_px"], "nms_in_graph": False,
                "decode": "ssd.models.gluoncv.decode.decode_exported: box_nms(topk 400, post 100) on the outputs",
                "array_decode": "box_nms"}


def new_zoo_model(arch: str, classes: Sequence[str], variant: str = "custom", input_size: Optional[int] = None,
                  ctx=None):
    """A freshly initialized zoo net and the meta.json fields that rebuild it (tests, benchmarks)."""
    size = int(input_size or spec_of(arch).base_size)
    net = build_zoo_net(arch, classes, variant)
    initialize(net, [ctx] if ctx is not None else None, size)
    meta = {"arch": arch, "classes": list(classes), "input_size": size,
            "normalize": {"mean": list(MEAN), "std": list(STD)}}
    meta.update(zoo_meta_fields(net, arch, size, {"variant": variant}))
    return net, meta
