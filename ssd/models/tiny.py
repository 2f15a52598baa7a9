"""TinySSD (the d2l book's "Single Shot Multibox Detection"): the Gluon block, its anchors and its recipe.

The network returns ``(anchors, cls_preds, bbox_preds)`` exactly as the d2l book does:
anchors ``(1, N, 4)`` normalized corners, class scores ``(B, N, C+1)`` (index 0 is the
background) and box offsets ``(B, N*4)``. Anchors are made inside the graph with
``MultiBoxPrior`` so that any input size gets matching anchors without extra bookkeeping.
Training and decoding are the generic multibox ones (``ssd.models.multibox``).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mxnet.gluon import nn

from ssd.base.errors import SSDError
from ssd.models.anchor_set import AnchorSet, anchor_set
from ssd.models.anchors import AnchorConfig, format_groups
from ssd.models.multibox import MultiBoxPlan, decode_multibox
from ssd.models.recipe import Decoder, Emit, Recipe
from ssd.models.starting_point import recorded_start
from ssd.models.tiny_start import check_same_shapes, folder_shapes, start_from_folder, tiny_folder

# The book's anchors: five scales, sizes spread from 0.2 to 1.05 of the image side with the
# geometric mean of neighbours as each scale's second size; ratios 1, 2 and 0.5 everywhere.
# 4 anchors a cell; at 256×256 (maps 32, 16, 8, 4, 1) that is 5444 anchors.
TINY_SIZES: List[List[float]] = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]
TINY_RATIOS: List[List[float]] = [[1.0, 2.0, 0.5]] * 5


def _down_sample_blk(num_channels: int) -> nn.HybridSequential:
    """Two 3×3 conv+BN+ReLU then 2×2 max-pool: halves H and W, widens the receptive field."""
    blk = nn.HybridSequential()
    for _ in range(2):
        blk.add(nn.Conv2D(num_channels, kernel_size=3, padding=1),
                nn.BatchNorm(in_channels=num_channels),
                nn.Activation("relu"))
    blk.add(nn.MaxPool2D(2))
    return blk


def _base_net() -> nn.HybridSequential:
    """Three down-sample blocks (16, 32, 64 channels): 256×256 in, 32×32 out."""
    blk = nn.HybridSequential()
    for num_filters in (16, 32, 64):
        blk.add(_down_sample_blk(num_filters))
    return blk


def _map_shape(F, x):
    """A one-channel float32 stand-in for feature map ``x``: ``MultiBoxPrior`` reads only its
    height and width, has no bfloat16 kernel, and needs no gradient."""
    return F.Cast(F.slice_axis(F.BlockGrad(x), axis=1, begin=0, end=1), dtype="float32")


class TinySSD(nn.HybridBlock):
    """The d2l TinySSD with configurable classes, input size, anchor sizes and ratios.

    Scale 0 is the base network, the middle scales are 128-channel down-sample blocks and
    the last scale is a global max-pool (a 1×1 map for the largest objects).
    """

    def __init__(self, num_classes: int, input_size: int = 256,
                 sizes: Optional[Sequence[Sequence[float]]] = None,
                 ratios: Optional[Sequence[Sequence[float]]] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError("num_classes must be at least 1")
        sizes = [list(map(float, s)) for s in (sizes or TINY_SIZES)]
        ratios = [list(map(float, r)) for r in (ratios or TINY_RATIOS)]
        if len(ratios) == 1 and len(sizes) > 1:
            ratios = ratios * len(sizes)
        self.anchor_config = AnchorConfig(sizes=sizes, ratios=ratios)
        if self.anchor_config.num_scales < 2:
            raise ValueError("TinySSD needs at least two scales: give one group per feature map, separated by "
                             "';' ('0.2, 0.272; 0.37, 0.447' makes two maps)")
        self.num_classes = int(num_classes)
        self.input_size = int(input_size)
        self.anchor_config.feature_maps = self.feature_map_shapes()
        if min(min(hw) for hw in self.anchor_config.feature_maps) < 1:
            raise ValueError(f"input size {input_size} is too small for {self.anchor_config.num_scales} scales")
        n = self.anchor_config.num_scales
        with self.name_scope():
            self.blocks = nn.HybridSequential()
            self.cls_heads = nn.HybridSequential()
            self.box_heads = nn.HybridSequential()
            for i in range(n):
                if i == 0:
                    blk = _base_net()
                elif i == n - 1:
                    blk = nn.GlobalMaxPool2D()
                else:
                    blk = _down_sample_blk(128)
                a = self.anchor_config.anchors_per_cell(i)
                self.blocks.add(blk)
                self.cls_heads.add(nn.Conv2D(a * (num_classes + 1), kernel_size=3, padding=1))
                self.box_heads.add(nn.Conv2D(a * 4, kernel_size=3, padding=1))

    def feature_map_shapes(self) -> List[Tuple[int, int]]:
        """(H, W) of each scale's feature map, from the input size (base /8, then /2, then 1)."""
        s = self.input_size // 8
        shapes = [(s, s)]
        for _ in range(self.anchor_config.num_scales - 2):
            s //= 2
            shapes.append((s, s))
        shapes.append((1, 1))
        return shapes

    def anchors_per_scale(self) -> List[int]:
        return self.anchor_config.counts()

    @property
    def num_anchors(self) -> int:
        return self.anchor_config.total()

    def hybrid_forward(self, F, x):  # noqa: N802 - Gluon's signature
        anchors, cls_preds, box_preds = [], [], []
        cfg = self.anchor_config
        for i in range(cfg.num_scales):
            x = self.blocks[i](x)
            anchors.append(F.contrib.MultiBoxPrior(_map_shape(F, x), sizes=cfg.sizes[i], ratios=cfg.ratios[i]))
            cls_preds.append(F.flatten(F.transpose(self.cls_heads[i](x), axes=(0, 2, 3, 1))))
            box_preds.append(F.flatten(F.transpose(self.box_heads[i](x), axes=(0, 2, 3, 1))))
        anchors = F.concat(*anchors, dim=1)
        cls_preds = F.concat(*cls_preds, dim=1).reshape((0, -1, self.num_classes + 1))
        box_preds = F.concat(*box_preds, dim=1)
        return anchors, cls_preds, box_preds


def tiny_anchor_config(input_size: int = 256, sizes: Optional[Sequence[Sequence[float]]] = None,
                       ratios: Optional[Sequence[Sequence[float]]] = None) -> AnchorConfig:
    """TinySSD's anchor configuration with its feature maps (block built, not initialized).

    One ratio group is applied to every scale, as the CLI does. Raises ``ValueError`` for a
    configuration the network cannot have (counts differ, non-positive values, input too small).
    """
    if ratios is not None and sizes is not None and len(ratios) == 1 and len(sizes) > 1:
        ratios = [list(ratios[0]) for _ in sizes]
    if sizes is not None and ratios is not None and len(sizes) != len(ratios):
        raise ValueError(f"{len(sizes)} size groups but {len(ratios)} ratio groups: give one ratio group per "
                         "scale, or a single group for all")
    if int(input_size) < 64 or int(input_size) % 8:
        raise ValueError("input size must be a multiple of 8 and at least 64")
    cfg = TinySSD(1, int(input_size), sizes=sizes, ratios=ratios).anchor_config
    return AnchorConfig(sizes=[list(s) for s in cfg.sizes], ratios=[list(r) for r in cfg.ratios],
                        feature_maps=list(cfg.feature_maps))


def _groups(value: Any) -> Optional[List[List[float]]]:
    """Groups of numbers from a model's meta.json (untrusted), or None when they are not that."""
    try:
        return [[float(v) for v in g] for g in value]
    except (TypeError, ValueError):
        return None


def book_anchors_note(meta: Dict[str, Any]) -> Optional[str]:
    """For a TinySSD model whose anchors are not Dive into Deep Learning's: which sizes (and ratios)
    it has instead, so a student comparing the Anchors page with the book knows why its numbers
    differ. None for the book's own anchors, another architecture, or anchors that cannot be read."""
    anchors = meta.get("anchors") if meta.get("arch") == "tiny" else None
    if not isinstance(anchors, dict) or anchors.get("sizes") is None:
        return None                 # no sizes saved: the network's own, the book's
    sizes, ratios = _groups(anchors["sizes"]), _groups(anchors.get("ratios") or TINY_RATIOS)
    if sizes is None or ratios is None:
        return None
    if len(ratios) == 1:
        ratios = ratios * len(sizes)
    differ = [f"sizes {format_groups(sizes)} (the book's: {format_groups(TINY_SIZES)})"] if sizes != TINY_SIZES else []
    if ratios != TINY_RATIOS:
        differ.append(f"ratios {format_groups(ratios)} (the book's: {format_groups(TINY_RATIOS[:1])} on every map)")
    if not differ:
        return None
    return ("Not the TinySSD anchors of Dive into Deep Learning's \"Single Shot Multibox Detection\": this model "
            f"has {' and '.join(differ)}. Choose *Custom* to see the book's.")


def anchors_meta(net: TinySSD) -> Dict[str, Any]:
    """The ``anchors`` section of meta.json: sizes, ratios, feature maps and counts."""
    out = net.anchor_config.to_dict()
    out["per_scale"] = net.anchor_config.counts()
    out["total"] = net.anchor_config.total()
    return out


# TinySSD's defaults: the SSD paper's loss (normalized by positives, 3:1 hard negatives, smooth L1)
# with SGD+momentum. On the synthetic set it reaches val mAP 0.87 after 3 epochs, where the
# book's d2l setup (lr 0.2, no momentum, mean over anchors, L1) is still below 0.01 — see the
# README. The d2l setup remains one flag set away:
#   --lr 0.2 --momentum 0 --loss-norm d2l --hard-negative-ratio 0 --box-loss l1
TINY_DEFAULTS: Dict[str, Any] = {"lr": 0.01, "momentum": 0.9, "lr_schedule": "cosine", "input_size": 256,
                                 "hard_negative_ratio": 3.0, "loss_norm": "positives", "box_loss": "smooth_l1"}


class TinyTraining(MultiBoxPlan):
    """``MultiBoxPlan`` for TinySSD: Xavier, or a TinySSD model folder's weights (``ssd.models.tiny_start``)."""

    def __init__(self, cfg, classes: Sequence[str], train_ds, ctxs, build, resuming: bool) -> None:
        # resuming: the checkpoint brings the weights, and the start is the run's record (its folder may be gone)
        self._folder = None if resuming else tiny_folder(cfg.pretrained)
        self.classes, self._build = list(classes), build
        self.start: Dict[str, Any] = {"pretrained": None}
        if resuming:
            self.start = recorded_start(cfg.out, cfg.pretrained)
        super().__init__(cfg, train_ds, ctxs,
                         lambda: TinySSD(len(classes), cfg.input_size, sizes=cfg.sizes, ratios=cfg.ratios),
                         anchors_meta, initialize=self._initialize)

    def _initialize(self, net: TinySSD, ctxs: List[Any]) -> None:
        import mxnet as mx

        net.initialize(init=mx.init.Xavier(), ctx=ctxs)     # what a fresh run's (and a new class's) weights are
        if self._folder is not None:
            self.start = start_from_folder(net, ctxs[0], self.cfg.pretrained.strip(), self._folder, self.classes,
                                           self._build)

    def meta_fields(self) -> Dict[str, Any]:
        return {**super().meta_fields(), "start": dict(self.start)}


class TinyRecipe(Recipe):
    """d2l's TinySSD: our augmentation and loss, anchors from ``MultiBoxPrior`` in the graph."""

    name = "tiny"
    family = "tiny"
    native_size = 256
    starts_from_folder = True            # a TinySSD model folder: its weights, re-headed to the run's classes

    def defaults(self, batch_size: int) -> Dict[str, Any]:
        return dict(TINY_DEFAULTS)

    def check_config(self, cfg) -> None:
        if cfg.input_size < 64 or cfg.input_size % 8:
            raise SSDError("input size must be a multiple of 8 and at least 64")
        if cfg.sizes is not None or cfg.ratios is not None:   # else the network's own, known good
            try:   # a mistyped --sizes/--ratios was a ValueError traceback once the data was decoded
                tiny_anchor_config(cfg.input_size, cfg.sizes, cfg.ratios)
            except ValueError as err:
                raise SSDError(f"anchors (--sizes/--ratios): {err}") from None
        if cfg.resume:          # the start is the run's record: the checkpoint brings the weights
            return
        folder = tiny_folder(cfg.pretrained)       # a start it cannot load is refused, never dropped
        if folder is not None:
            check_same_shapes(cfg, cfg.pretrained, folder, tiny_anchor_config(cfg.input_size, cfg.sizes, cfg.ratios))

    def start_shapes(self, meta: Dict[str, Any]) -> Dict[str, Any]:
        """The folder's input size and anchors: its feature maps and anchors per cell (``check_same_shapes``)."""
        return folder_shapes(meta)

    def build(self, meta: Dict[str, Any]) -> TinySSD:
        anchors = meta.get("anchors") or {}
        return TinySSD(len(meta["classes"]), int(meta["input_size"]), sizes=anchors.get("sizes"),
                       ratios=anchors.get("ratios"))

    def anchor_set(self, meta: Dict[str, Any]) -> AnchorSet:
        anchors = meta.get("anchors") or {}
        size = int(meta.get("input_size") or self.native_size)
        return anchor_set(tiny_anchor_config(size, anchors.get("sizes"), anchors.get("ratios")), size)

    def training_plan(self, cfg, classes: Sequence[str], train_ds, ctxs, emit: Emit,
                      resuming: bool = False) -> MultiBoxPlan:
        return TinyTraining(cfg, classes, train_ds, ctxs, self.build, resuming)

    def decoder(self, meta: Dict[str, Any]) -> Decoder:
        return decode_multibox

    def export_outputs(self, net) -> Dict[str, Any]:
        return {"outputs": ["anchors", "cls_preds", "box_preds"], "nms_in_graph": None,
                "decode": "MultiBoxDetection on softmax(cls_preds)", "array_decode": "multibox"}
