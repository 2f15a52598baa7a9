"""MobileNetV3-Large as SSDlite uses it, in Gluon, laid out as torchvision lays it out.

Every block here is the Gluon twin of a torchvision module, and its children carry the same names
(``0``, ``1``… in sequences, ``block``, ``fc1``, ``fc2``), so a parameter's structural name in
Gluon (``backbone.features.0.4.block.2.fc1.weight``) *is* its key in torchvision's state_dict, up
to BatchNorm's ``gamma``/``beta`` for ``weight``/``bias``. The converter relies on that and
nothing else (``ssd.models.ssdlite.convert``).

torchvision's operators and ours: hardswish ``x·relu6(x+3)/6`` is ``x·hard_sigmoid(x, 1/6, 1/2)``;
hardsigmoid is ``hard_sigmoid(x, 1/6, 1/2)``; ReLU6 is ``clip(x, 0, 6)``; PyTorch's BatchNorm
momentum ``m`` is Gluon's ``1 - m``.
"""
from __future__ import annotations

from typing import List

from mxnet.gluon import nn

from ssd.models.ssdlite.spec import C4_BLOCK, FIRST_CONV_CHANNELS, Bottleneck, SSDliteSpec, make_divisible

HARD_SLOPE = 1.0 / 6.0       # hard_sigmoid(x) = clip(x/6 + 1/2, 0, 1) = relu6(x + 3) / 6
HARD_OFFSET = 0.5


class HardSwish(nn.HybridBlock):
    """``x · relu6(x + 3) / 6`` (torch ``nn.Hardswish``)."""

    def hybrid_forward(self, F, x):  # noqa: N802 - Gluon's signature
        return x * F.hard_sigmoid(x, alpha=HARD_SLOPE, beta=HARD_OFFSET)


class ReLU6(nn.HybridBlock):
    """``min(max(x, 0), 6)`` (torch ``nn.ReLU6``)."""

    def hybrid_forward(self, F, x):  # noqa: N802
        return F.clip(x, 0.0, 6.0)


def activation(kind: str) -> nn.HybridBlock:
    """``RE`` (ReLU), ``HS`` (hardswish) or ``RE6`` (ReLU6), torchvision's names."""
    if kind == "RE":
        return nn.Activation("relu")
    if kind == "HS":
        return HardSwish()
    if kind == "RE6":
        return ReLU6()
    raise ValueError(f"unknown activation {kind!r}")


def conv_bn_act(cin: int, cout: int, kernel: int, spec: SSDliteSpec, stride: int = 1, groups: int = 1,
                act: str = "") -> nn.HybridSequential:
    """torchvision's ``Conv2dNormActivation``: convolution without bias (``0``), BatchNorm (``1``),
    then the activation, if any."""
    seq = nn.HybridSequential()
    seq.add(nn.Conv2D(cout, kernel, strides=stride, padding=(kernel - 1) // 2, groups=groups, use_bias=False,
                      in_channels=cin),
            nn.BatchNorm(epsilon=spec.bn_eps, momentum=1.0 - spec.bn_momentum, in_channels=cout))
    if act:
        seq.add(activation(act))
    return seq


class SqueezeExcitation(nn.HybridBlock):
    """Channel gates: global average → 1×1 (``fc1``) → ReLU → 1×1 (``fc2``) → hardsigmoid → × input."""

    def __init__(self, channels: int, squeeze: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.fc1 = nn.Conv2D(squeeze, 1, in_channels=channels)
            self.fc2 = nn.Conv2D(channels, 1, in_channels=squeeze)

    def hybrid_forward(self, F, x):  # noqa: N802
        scale = F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg")
        scale = F.Activation(self.fc1(scale), act_type="relu")
        scale = F.hard_sigmoid(self.fc2(scale), alpha=HARD_SLOPE, beta=HARD_OFFSET)
        return F.broadcast_mul(x, scale)


def bottleneck_layers(cfg: Bottleneck, spec: SSDliteSpec) -> List[nn.HybridBlock]:
    """The layers of one inverted residual: expand (when it widens), depthwise, SE (if any), project."""
    cin, kernel, expanded, cout, use_se, act, stride = cfg
    layers: List[nn.HybridBlock] = []
    if expanded != cin:
        layers.append(conv_bn_act(cin, expanded, 1, spec, act=act))
    layers.append(conv_bn_act(expanded, expanded, kernel, spec, stride=stride, groups=expanded, act=act))
    if use_se:
        layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8)))
    layers.append(conv_bn_act(expanded, cout, 1, spec))
    return layers


class InvertedResidual(nn.HybridBlock):
    """MobileNetV3's bottleneck (``block``), with the identity added when shapes allow."""

    def __init__(self, cfg: Bottleneck, spec: SSDliteSpec, **kwargs) -> None:
        super().__init__(**kwargs)
        cin, _, _, cout, _, _, stride = cfg
        self.use_res_connect = stride == 1 and cin == cout
        with self.name_scope():
            self.block = nn.HybridSequential()
            self.block.add(*bottleneck_layers(cfg, spec))

    def hybrid_forward(self, F, x):  # noqa: N802
        out = self.block(x)
        return out + x if self.use_res_connect else out


class NamedSequential(nn.HybridSequential):
    """A sequence whose children keep the names they had in a longer one (torchvision's slice
    ``block[1:]`` keeps keys ``1, 2, 3``)."""

    def add_named(self, name: str, block: nn.HybridBlock) -> None:
        self.register_child(block, name)


def backbone_stages(spec: SSDliteSpec) -> nn.HybridSequential:
    """``features``: stage 0 ends at the C4 block's expansion (stride 16), stage 1 runs from its
    depthwise convolution to the backbone's last 1×1 convolution (stride 32), as torchvision's
    ``SSDLiteFeatureExtractorMobileNet`` splits them."""
    blocks = spec.bottlenecks()
    stage0 = nn.HybridSequential()
    stage0.add(conv_bn_act(3, FIRST_CONV_CHANNELS, 3, spec, stride=2, act="HS"))
    stage0.add(*[InvertedResidual(cfg, spec) for cfg in blocks[:C4_BLOCK]])
    c4 = bottleneck_layers(blocks[C4_BLOCK], spec)
    stage0.add(c4[0])
    c4_rest = NamedSequential()
    for i, layer in enumerate(c4[1:], start=1):
        c4_rest.add_named(str(i), layer)
    stage1 = nn.HybridSequential()
    stage1.add(c4_rest, *[InvertedResidual(cfg, spec) for cfg in blocks[C4_BLOCK + 1:]])
    stage1.add(conv_bn_act(blocks[-1][3], spec.last_channels(), 1, spec, act="HS"))
    features = nn.HybridSequential()
    features.add(stage0, stage1)
    return features


def extra_block(cin: int, cout: int, spec: SSDliteSpec) -> nn.HybridSequential:
    """SSDlite's extra layer: 1×1 to half the channels, depthwise 3×3 stride 2, 1×1 out; ReLU6."""
    mid = cout // 2
    seq = nn.HybridSequential()
    seq.add(conv_bn_act(cin, mid, 1, spec, act="RE6"),
            conv_bn_act(mid, mid, 3, spec, stride=2, groups=mid, act="RE6"),
            conv_bn_act(mid, cout, 1, spec, act="RE6"))
    return seq


class SSDliteExtractor(nn.HybridBlock):
    """The six feature maps: the backbone's two stages, then the four extra blocks."""

    def __init__(self, spec: SSDliteSpec, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = backbone_stages(spec)
            self.extra = nn.HybridSequential()
            cin = spec.last_channels()
            for cout in spec.extra_channels:
                self.extra.add(extra_block(cin, cout, spec))
                cin = cout

    def hybrid_forward(self, F, x):  # noqa: N802
        maps = []
        for seq in (self.features, self.extra):
            for i in range(len(seq)):
                x = seq[i](x)
                maps.append(x)
        return maps
