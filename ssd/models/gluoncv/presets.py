"""GluonCV's SSD presets: one entry per architecture, the only place that names them.

Copied from ``gluoncv/model_zoo/ssd/presets.py`` (the tests check the copy against GluonCV): the
backbone and how its features are taken, the native input size, the extra layers, the anchor sizes
of each preset variant (``custom``, ``voc`` and ``coco`` differ for VGG-300 and ResNet-50), and the
pretrained detectors GluonCV published for it. Everything else (the registry's recipe, the
pretrained catalogue, meta.json, the Learn pages' input size) is derived from the entry, so adding
a GluonCV SSD (say ``ssd_512_vgg16_atrous``) is one more ``ZooSpec`` in ``ZOO_SPECS``.

=========================  ==========  ===========  ============================
arch                       input (px)  anchors      published (GluonCV)
=========================  ==========  ===========  ============================
``ssd_512_mobilenet1.0``   512         6132         VOC07 mAP 75.4, COCO AP 21.7
``ssd_300_vgg16_atrous``   300         8732         VOC07 mAP 77.6, COCO AP 25.1
``ssd_512_resnet50_v1``    512         6132         VOC07 mAP 80.1, COCO AP 30.6
``ssd_512_resnet50_v1b``   512         6132         none (ours, see below)
=========================  ==========  ===========  ============================

``ssd_512_resnet50_v1b`` is not one of GluonCV's presets: it is ``ssd_512_resnet50_v1`` (same extra
layers, anchors and steps, ``derived_from``) on GluonCV's ``resnet50_v1b`` backbone, whose stride
sits in the 3×3 convolution as in torchvision's ResNet-50 (v1.5). That is the layout in which
torchvision's live ImageNet weights load exactly (``--pretrained imagenet``); GluonCV's v1 strides
in the first 1×1, so the same weights would compute another network there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

from ssd.base.errors import SSDError


_RATIOS_6 = ((1.0, 2.0, 0.5),) + ((1.0, 2.0, 0.5, 3.0, 1.0 / 3),) * 3 + ((1.0, 2.0, 0.5),) * 2
VARIANTS = ("custom", "voc", "coco")
PRETRAINED_CHOICES = ("imagenet", "voc", "coco")
METRICS = {"voc": "VOC07 mAP", "coco": "COCO AP"}   # what GluonCV's tables report per training set
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def dataset_classes(variant: str) -> List[str]:
    """COCO's 80 or VOC's 20 class names in the order GluonCV's datasets (and its heads) use; constants,
    so listing or describing a detector imports neither MXNet nor GluonCV (a test holds them equal)."""
    from ssd.models.coco_slots import coco_classes

    if variant == "voc":
        return list(VOC_CLASSES)
    if variant == "coco":
        return coco_classes()
    raise SSDError(f"no pretrained class list for variant {variant!r}; use voc or coco")


@dataclass(frozen=True)
class Published:
    """A pretrained detector GluonCV published for a preset (its ``_voc`` or ``_coco`` weights).

    ``params_mb``: the ``.params`` file's size (float32 weights); ``value``: GluonCV's model-zoo
    figure (VOC07 mAP or COCO box AP 0.5:0.95, per ``METRICS``); ``cpu_s``: seconds an image at the
    native size, batch 1, on the 2-core AMD EPYC development machine (``scripts/bench_zoo.py``).
    """

    params_mb: float
    value: float
    cpu_s: float


@dataclass(frozen=True)
class ZooSpec:
    """One GluonCV SSD architecture, as ``gluoncv.model_zoo.ssd.get_ssd`` takes it.

    ``features`` is either the backbone outputs that feed the heads (a tuple of GluonCV layer
    names, extra layers then appended per ``filters``) or the name of one of GluonCV's feature
    extractor functions in ``gluoncv.model_zoo.ssd.vgg_atrous`` (VGG's own extra layers).
    """

    arch: str
    base_network: str                      # GluonCV name of the backbone (its ImageNet weights)
    base_size: int                         # native input size; anchor sizes/steps are in its pixels
    features: Union[str, Tuple[str, ...]]  # backbone outputs, or a vgg_atrous extractor's name
    filters: Optional[Tuple[int, ...]]     # extra layers appended by FeatureExpander
    sizes: Dict[str, Tuple[float, ...]]    # per variant; len = layers + 1
    ratios: Tuple[Tuple[float, ...], ...]
    steps: Tuple[float, ...]
    min_input: int                         # smallest square input the layers accept
    pretrained: Dict[str, Published] = field(default_factory=dict)   # variant → published detector
    reference_cpu_s: Optional[float] = None  # s/image, 20 classes, on the 2-core development machine
    derived_from: Optional[str] = None     # not a GluonCV preset: the one whose layers and anchors it copies

    @property
    def published(self) -> Dict[str, float]:
        """GluonCV's figures for this architecture, as meta.json records them (``voc_map``, ``coco_ap``)."""
        return {("voc_map" if v == "voc" else "coco_ap"): p.value for v, p in sorted(self.pretrained.items(),
                                                                                       reverse=True)}


_MOBILENET_SIZES = (51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492)
_RESNET50_SIZES = {"custom": (51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72),
                   "voc": (51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492),
                   "coco": (51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72)}
ZOO_SPECS: Dict[str, ZooSpec] = {
    "ssd_512_mobilenet1.0": ZooSpec(
        "ssd_512_mobilenet1.0", "mobilenet1.0", 512, ("relu22_fwd", "relu26_fwd"), (512, 512, 256, 256),
        {"custom": _MOBILENET_SIZES, "voc": _MOBILENET_SIZES, "coco": _MOBILENET_SIZES},
        _RATIOS_6, (16, 32, 64, 128, 256, 512), 32,
        {"coco": Published(92.2, 21.7, 0.16), "voc": Published(56.9, 75.4, 0.10)}, 0.14),
    "ssd_300_vgg16_atrous": ZooSpec(
        "ssd_300_vgg16_atrous", "vgg16_atrous", 300, "vgg16_atrous_300", None,
        {"custom": (21, 45, 99, 153, 207, 261, 315), "voc": (30, 60, 111, 162, 213, 264, 315),
         "coco": (21, 45, 99, 153, 207, 261, 315)},
        _RATIOS_6, (8, 16, 32, 64, 100, 300), 260,
        {"coco": Published(138.8, 25.1, 0.50), "voc": Published(106.7, 77.6, 0.41)}, 0.63),
    "ssd_512_resnet50_v1": ZooSpec(
        "ssd_512_resnet50_v1", "resnet50_v1", 512, ("stage3_activation5", "stage4_activation2"),
        (512, 512, 256, 256), _RESNET50_SIZES, _RATIOS_6, (16, 32, 64, 128, 256, 512), 32,
        {"coco": Published(200.8, 30.6, 0.46), "voc": Published(147.7, 80.1, 0.33)}, 0.63),
    "ssd_512_resnet50_v1b": ZooSpec(
        "ssd_512_resnet50_v1b", "resnet50_v1b", 512, ("layers3_relu17_fwd", "layers4_relu8_fwd"),
        (512, 512, 256, 256), _RESNET50_SIZES, _RATIOS_6, (16, 32, 64, 128, 256, 512), 32,
        {}, None, derived_from="ssd_512_resnet50_v1"),
}
ZOO_ARCHS: Tuple[str, ...] = tuple(ZOO_SPECS)


def is_zoo_arch(arch: Optional[str]) -> bool:
    return arch in ZOO_SPECS


def spec_of(arch: str) -> ZooSpec:
    try:
        return ZOO_SPECS[arch]
    except KeyError:
        raise SSDError(f"unknown model-zoo architecture {arch!r}; known: {', '.join(ZOO_SPECS)}") from None


def variant_of(pretrained: Optional[str]) -> str:
    """Which preset's anchors a net starting from ``pretrained`` has: voc, coco or custom."""
    p = (pretrained or "").strip().lower()
    return p if p in ("voc", "coco") else "custom"


def require_published(arch: str, variant: str) -> None:
    """Refuse ``--pretrained voc|coco`` for a preset GluonCV published no such detector for."""
    spec = spec_of(arch)
    if variant in ("voc", "coco") and variant not in spec.pretrained:
        have = f"; it published {', '.join(sorted(spec.pretrained))}" if spec.pretrained else ""
        raise SSDError(f"--pretrained {variant}: GluonCV published no {variant.upper()} detector for {arch}{have}. "
                       f"Start from imagenet, a model folder or a .params file"
                       + (f", or train {spec.derived_from} with --pretrained {variant}" if spec.derived_from else "")
                       + ".")


def gluoncv_name(arch: str, variant: str) -> str:
    """The zoo's own name, e.g. ``ssd_512_mobilenet1.0_voc``."""
    return f"{arch}_{variant}"
