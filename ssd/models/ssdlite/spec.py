"""SSDlite320 with MobileNetV3-Large: every number of torchvision's detector, each named once.

torchvision's ``ssdlite320_mobilenet_v3_large`` (torchvision 0.14, ``models/detection/ssdlite.py``)
is the model: its published COCO checkpoint (``ssdlite320_mobilenet_v3_large_coco-a79551df.pth``,
COCO box AP 21.3, 3.44 M parameters, ~0.6 GFLOP a frame) loads into the network these numbers
build, and its forward pass is what ours must reproduce. ``SSDliteSpec`` holds them; its field
defaults are torchvision's, read from that source:

* backbone: MobileNetV3-Large with the *reduced tail* (torchvision enables it whenever no ImageNet
  backbone is loaded, and the COCO checkpoint was trained that way): the last three blocks and the
  last 1×1 convolution have half the channels. No dilation. BatchNorm eps 0.001, momentum 0.03
  (PyTorch's convention: MXNet's running-average momentum is ``1 - 0.03``).
* features: the C4 block's expansion output (stride 16) and the backbone's last layer (stride 32),
  then four extra blocks (1×1 → depthwise 3×3 stride 2 → 1×1, ReLU6) of 512, 256, 256, 128 channels.
* heads: per feature map a depthwise 3×3 (BatchNorm, ReLU6) then a 1×1 convolution with bias.
* anchors: ``DefaultBoxGenerator([[2, 3]] * 6, min_ratio=0.2, max_ratio=0.95)``, clipped in
  (cx, cy, w, h): 6 per cell, 3234 at 320×320.
* box coder weights (10, 10, 5, 5), box log-size clamp log(1000/16).
* input 320×320, normalized from [0, 1] to [-1, 1] (mean 0.5, std 0.5).
* post-processing: score > 0.001, 300 candidates per class, per-class NMS 0.55, 300 detections.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Tuple

ARCH = "ssdlite320_mobilenet_v3_large"

# MobileNetV3-Large's bottlenecks (torchvision ``_mobilenet_v3_conf``): input channels, kernel,
# expanded channels, output channels, squeeze-excitation, activation (RE = ReLU, HS = hardswish),
# stride. The channels of the last three (the tail) are halved when the tail is reduced.
Bottleneck = Tuple[int, int, int, int, bool, str, int]
MOBILENET_V3_LARGE: Tuple[Bottleneck, ...] = (
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),     # C1
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),      # C2
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),    # C3
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),   # C4: its expansion output is the first feature map
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
)
TAIL_BLOCKS = 3          # the blocks from C4 on, whose channels the reduced tail halves
C4_BLOCK = 12            # index of the C4 block in MOBILENET_V3_LARGE
FIRST_CONV_CHANNELS = 16
LAST_CONV_EXPANSION = 6  # the backbone's last 1×1 convolution: 6 × the last block's output channels


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor``, never 10 % below."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


@dataclass(frozen=True)
class SSDliteSpec:
    """Every hyper-parameter of SSDlite320-MobileNetV3-Large; the defaults are torchvision's."""

    num_classes: int = 80                      # object classes, background excluded
    input_size: int = 320
    reduced_tail: bool = True
    bn_eps: float = 0.001
    bn_momentum: float = 0.03                  # PyTorch's: weight of the new batch statistic
    extra_channels: Tuple[int, ...] = (512, 256, 256, 128)
    min_ratio: float = 0.2
    max_ratio: float = 0.95
    aspect_ratios: Tuple[Tuple[float, ...], ...] = ((2.0, 3.0),) * 6
    clip: bool = True
    box_weights: Tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_clamp: float = math.log(1000.0 / 16)   # torchvision's bbox_xform_clip
    mean: Tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: Tuple[float, float, float] = (0.5, 0.5, 0.5)
    score_thresh: float = 0.001
    nms_thresh: float = 0.55
    topk_candidates: int = 300                 # per class, before NMS
    detections_per_img: int = 300

    def bottlenecks(self) -> List[Bottleneck]:
        """The backbone's blocks with the tail's channels halved when ``reduced_tail``."""
        out = list(MOBILENET_V3_LARGE)
        if self.reduced_tail:
            for i in range(len(out) - TAIL_BLOCKS, len(out)):
                cin, k, exp, cout, se, act, s = out[i]
                first = i == len(out) - TAIL_BLOCKS
                out[i] = (cin if first else cin // 2, k, exp if first else exp // 2, cout // 2, se, act, s)
        return out

    def last_channels(self) -> int:
        return LAST_CONV_EXPANSION * self.bottlenecks()[-1][3]

    def feature_channels(self) -> List[int]:
        """Channels of the six feature maps the heads read."""
        return [self.bottlenecks()[C4_BLOCK][2], self.last_channels()] + list(self.extra_channels)

    def feature_maps(self) -> List[Tuple[int, int]]:
        """(H, W) of the six feature maps: strides 16 and 32, then each extra block halves (rounding up)."""
        s = int(self.input_size)
        for _ in range(4):                     # first conv, C1, C2, C3
            s = (s + 1) // 2
        maps = [(s, s)]
        for _ in range(1 + len(self.extra_channels)):
            s = (s + 1) // 2
            maps.append((s, s))
        return maps

    def scales(self) -> List[float]:
        """DefaultBoxGenerator's scales: ``min_ratio`` to ``max_ratio`` evenly, then 1."""
        n = len(self.aspect_ratios)
        return [self.min_ratio + (self.max_ratio - self.min_ratio) * k / (n - 1.0) for k in range(n)] + [1.0]

    def anchors_per_cell(self) -> List[int]:
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def postprocess(self) -> Dict[str, Any]:
        """The ``postprocess`` section of meta.json: what ``ssd.models.torchvision_decode`` reads."""
        from ssd.models.per_class_nms import torchvision_postprocess

        return {**torchvision_postprocess(self.score_thresh, self.topk_candidates, self.detections_per_img),
                "box_weights": list(self.box_weights), "box_clamp": self.box_clamp}

    def to_meta(self) -> Dict[str, Any]:
        """The ``ssdlite`` section of meta.json (everything but the classes, which meta holds)."""
        d = asdict(self)
        d.pop("num_classes")
        return {k: list(map(list, v)) if k == "aspect_ratios" else (list(v) if isinstance(v, tuple) else v)
                for k, v in d.items()}

    @classmethod
    def from_meta(cls, meta: Dict[str, Any]) -> "SSDliteSpec":
        """The spec a model folder was saved with; fields it lacks take torchvision's values."""
        saved = dict(meta.get("ssdlite") or {})
        known = {f.name for f in fields(cls)} - {"num_classes"}
        kw: Dict[str, Any] = {k: v for k, v in saved.items() if k in known}
        for k in ("extra_channels", "box_weights", "mean", "std"):
            if k in kw:
                kw[k] = tuple(kw[k])
        if "aspect_ratios" in kw:
            kw["aspect_ratios"] = tuple(tuple(float(r) for r in g) for g in kw["aspect_ratios"])
        if meta.get("input_size"):
            kw["input_size"] = int(meta["input_size"])
        return cls(num_classes=len(meta["classes"]), **kw)


def ssdlite_spec(num_classes: int = 80, input_size: int = 320, **overrides: Any) -> SSDliteSpec:
    """torchvision's SSDlite320 numbers for ``num_classes`` object classes (see the module docstring)."""
    spec = SSDliteSpec(num_classes=int(num_classes), input_size=int(input_size), **overrides)
    if spec.num_classes < 1:
        raise ValueError("a detector needs at least one class")
    if len(spec.aspect_ratios) != 2 + len(spec.extra_channels):
        raise ValueError(f"{len(spec.aspect_ratios)} aspect-ratio groups for "
                         f"{2 + len(spec.extra_channels)} feature maps")
    return spec

