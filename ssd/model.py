"""TinySSD (d2l, seed 001) as a hybridizable Gluon block, plus the architecture registry.

The network returns ``(anchors, cls_preds, bbox_preds)`` exactly as the d2l book does:
anchors ``(1, N, 4)`` normalized corners, class scores ``(B, N, C+1)`` (index 0 is the
background) and box offsets ``(B, N*4)``. Anchors are made inside the graph with
``MultiBoxPrior`` so that any input size gets matching anchors without extra bookkeeping.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from mxnet.gluon import nn

from .anchors import TINY_RATIOS, TINY_SIZES, AnchorConfig


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
            raise ValueError("TinySSD needs at least two scales")
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
            anchors.append(F.contrib.MultiBoxPrior(x, sizes=cfg.sizes[i], ratios=cfg.ratios[i]))
            cls_preds.append(F.flatten(F.transpose(self.cls_heads[i](x), axes=(0, 2, 3, 1))))
            box_preds.append(F.flatten(F.transpose(self.box_heads[i](x), axes=(0, 2, 3, 1))))
        anchors = F.concat(*anchors, dim=1)
        cls_preds = F.concat(*cls_preds, dim=1).reshape((0, -1, self.num_classes + 1))
        box_preds = F.concat(*box_preds, dim=1)
        return anchors, cls_preds, box_preds


# [zoo hook] GluonCV model-zoo SSDs (ssd_512_mobilenet1.0, ssd_300_vgg16_atrous,
# ssd_512_resnet50_v1) are built, trained and decoded by ssd/zoo.py.
from .zoo import ZOO_ARCHS  # noqa: E402 - zoo.py imports nothing heavy at module level

ARCHITECTURES = ("tiny",) + ZOO_ARCHS


def build_model(arch: str, num_classes: int, input_size: int = 256,
                sizes: Optional[Sequence[Sequence[float]]] = None,
                ratios: Optional[Sequence[Sequence[float]]] = None) -> TinySSD:
    """Build an uninitialized network by architecture name (the model store calls this)."""
    if arch == "tiny":
        return TinySSD(num_classes, input_size=input_size, sizes=sizes, ratios=ratios)
    if arch in ZOO_ARCHS:  # [zoo hook] placeholder class names; store.build_from_meta passes the real ones
        from .zoo import build_zoo_net
        return build_zoo_net(arch, [f"class{i}" for i in range(num_classes)])
    raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
