"""The SSDlite network: MobileNetV3-Large features, depthwise-separable heads, anchors as a constant.

Outputs are the multibox contract every recipe of ours shares (``ssd.models.multibox``):
``(anchors (1, N, 4) normalized corners, cls_preds (B, N, C+1) logits with 0 = background,
box_preds (B, N·4) offsets)``, in torchvision's anchor order (map, row, column, anchor) and its
offset order (dx, dy, dw, dh), so the shared multibox training (``MultiBoxTarget`` with variances
0.1, 0.1, 0.2, 0.2 = box weights 10, 10, 5, 5) trains it as it is, and torchvision's weights load
by name (``ssd.models.ssdlite.convert``).

The anchors depend only on the input size, so they are computed once (``default_boxes``) and held
as a constant parameter: exported graphs carry them, and INT8 quantization leaves them exact.
"""
from __future__ import annotations

from mxnet.gluon import nn

from ssd.models.ssdlite.anchors import default_boxes
from ssd.models.ssdlite.mobilenet_v3 import SSDliteExtractor, conv_bn_act
from ssd.models.ssdlite.spec import SSDliteSpec

HEAD_KERNEL = 3


def prediction_block(cin: int, cout: int, spec: SSDliteSpec) -> nn.HybridSequential:
    """SSDlite's head for one map: depthwise 3×3 (BatchNorm, ReLU6) then a 1×1 convolution with bias."""
    seq = nn.HybridSequential()
    seq.add(conv_bn_act(cin, cin, HEAD_KERNEL, spec, groups=cin, act="RE6"),
            nn.Conv2D(cout, 1, in_channels=cin))
    return seq


class ScoringHead(nn.HybridBlock):
    """One prediction block per feature map (``module_list``); ``columns`` values per anchor."""

    def __init__(self, spec: SSDliteSpec, columns: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.module_list = nn.HybridSequential()
            for cin, a in zip(spec.feature_channels(), spec.anchors_per_cell()):
                self.module_list.add(prediction_block(cin, a * columns, spec))

    def hybrid_forward(self, F, *maps):  # noqa: N802 - Gluon's signature
        """``(B, A·K, H, W)`` per map → ``(B, Σ H·W·A·K)``, each map's values ordered (h, w, a, k)."""
        return F.concat(*[F.flatten(F.transpose(self.module_list[i](m), axes=(0, 2, 3, 1)))
                          for i, m in enumerate(maps)], dim=1)


class SSDliteHead(nn.HybridBlock):
    def __init__(self, spec: SSDliteSpec, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.classification_head = ScoringHead(spec, spec.num_classes + 1)
            self.regression_head = ScoringHead(spec, 4)


class SSDlite(nn.HybridBlock):
    """SSDlite320-MobileNetV3-Large (``spec`` holds every number; torchvision's by default)."""

    def __init__(self, spec: SSDliteSpec, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.num_classes = spec.num_classes
        boxes = default_boxes(spec)
        self.num_anchors = int(boxes.shape[0])
        with self.name_scope():
            self.backbone = SSDliteExtractor(spec)
            self.head = SSDliteHead(spec)
            self.anchors = self.params.get_constant("anchors", boxes[None])

    def hybrid_forward(self, F, x, anchors):  # noqa: N802
        maps = self.backbone(x)
        cls_preds = self.head.classification_head(*maps).reshape((0, -1, self.num_classes + 1))
        box_preds = self.head.regression_head(*maps)
        return F.BlockGrad(anchors), cls_preds, box_preds
