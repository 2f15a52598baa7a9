"""GluonCV's SSD presets: one entry per architecture, the only place that names them.

Copied from ``gluoncv/model_zoo/ssd/presets.py`` (the tests check the copy against GluonCV):
backbone, native input size, which backbone outputs feed the heads, the extra layers, and the
anchor sizes of each preset variant (``custom``, ``voc`` and ``coco`` differ for VGG-300 and
ResNet-50). A net is rebuilt from ``meta.json`` with these numbers, without a forward pass.
Adding a GluonCV SSD (say ``ssd_512_vgg16_atrous``) is one more ``ZooSpec`` here.

=========================  ==========  ===========  ============================
arch                       input (px)  anchors      published (GluonCV)
=========================  ==========  ===========  ============================
``ssd_512_mobilenet1.0``   512         6132         VOC07 mAP 75.4, COCO AP 21.7
``ssd_300_vgg16_atrous``   300         8732         VOC07 mAP 77.6
``ssd_512_resnet50_v1``    512         6132         VOC07 mAP 80.1
=========================  ==========  ===========  ============================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

from ssd.base.errors import SSDError


_RATIOS_6 = ((1.0, 2.0, 0.5),) + ((1.0, 2.0, 0.5, 3.0, 1.0 / 3),) * 3 + ((1.0, 2.0, 0.5),) * 2
VARIANTS = ("custom", "voc", "coco")
PRETRAINED_CHOICES = ("imagenet", "voc", "coco")

@dataclass(frozen=True)
class ZooSpec:
    arch: str
    base_network: str                      # GluonCV name of the backbone (its ImageNet weights)
    base_size: int                         # native input size; anchor sizes/steps are in its pixels
    features: Union[str, Tuple[str, ...]]  # backbone outputs, or "vgg16_atrous_300"
    filters: Optional[Tuple[int, ...]]     # extra layers appended by FeatureExpander
    sizes: Dict[str, Tuple[float, ...]]    # per variant; len = layers + 1
    ratios: Tuple[Tuple[float, ...], ...]
    steps: Tuple[float, ...]
    min_input: int                         # smallest square input the layers accept
    published: Dict[str, float] = field(default_factory=dict)
    reference_cpu_s: Optional[float] = None  # s/image measured on a 2-core CPU during development


_MOBILENET_SIZES = (51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492)
ZOO_SPECS: Dict[str, ZooSpec] = {
    "ssd_512_mobilenet1.0": ZooSpec(
        "ssd_512_mobilenet1.0", "mobilenet1.0", 512, ("relu22_fwd", "relu26_fwd"), (512, 512, 256, 256),
        {"custom": _MOBILENET_SIZES, "voc": _MOBILENET_SIZES, "coco": _MOBILENET_SIZES},
        _RATIOS_6, (16, 32, 64, 128, 256, 512), 32,
        {"voc_map": 75.4, "coco_ap": 21.7}, 0.14),
    "ssd_300_vgg16_atrous": ZooSpec(
        "ssd_300_vgg16_atrous", "vgg16_atrous", 300, "vgg16_atrous_300", None,
        {"custom": (21, 45, 99, 153, 207, 261, 315), "voc": (30, 60, 111, 162, 213, 264, 315),
         "coco": (21, 45, 99, 153, 207, 261, 315)},
        _RATIOS_6, (8, 16, 32, 64, 100, 300), 260,
        {"voc_map": 77.6}, 0.63),
    "ssd_512_resnet50_v1": ZooSpec(
        "ssd_512_resnet50_v1", "resnet50_v1", 512, ("stage3_activation5", "stage4_activation2"),
        (512, 512, 256, 256),
        {"custom": (51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72),
         "voc": (51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492),
         "coco": (51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72)},
        _RATIOS_6, (16, 32, 64, 128, 256, 512), 32,
        {"voc_map": 80.1}, 0.63),
}
ZOO_ARCHS: Tuple[str, ...] = tuple(ZOO_SPECS)


def is_zoo_arch(arch: Optional[str]) -> bool:
    return arch in ZOO_SPECS


def spec_of(arch: str) -> ZooSpec:
    try:
        return ZOO_SPECS[arch]
    except KeyError:
        raise SSDError(f"unknown model-zoo architecture {arch!r}; known: {', '.join(ZOO_ARCHS)}") from None


def variant_of(pretrained: Optional[str]) -> str:
    """Which preset's anchors a net starting from ``pretrained`` has: voc, coco or custom."""
    p = (pretrained or "").strip().lower()
    return p if p in ("voc", "coco") else "custom"


def gluoncv_name(arch: str, variant: str) -> str:
    """The zoo's own name, e.g. ``ssd_512_mobilenet1.0_voc``."""
    return f"{arch}_{variant}"
