"""Where real weights can be downloaded today: the live sources, each file with its hash.

GluonCV's model store (the S3 bucket behind its ``.params`` files) has failed for users since
February 2024; torchvision's host, download.pytorch.org, is alive and serves its SSDs and
backbones. torchvision names each file ``NAME-XXXXXXXX.pth`` with the first 8 hex digits of the
file's SHA-256 and publishes nothing longer, so:

* ``sha256`` is the full hash where two independent public records of the file agree on one that
  starts with those digits (``hash_note`` says so); the download must then match it exactly;
* else ``sha256`` is ``None`` and only the 8-digit prefix in the name is checked (``hash_note``
  says that the full hash could not be verified).

``$SSD_TORCHVISION_MIRROR`` replaces ``https://download.pytorch.org/models/`` (an organisation's
mirror, or the tests' server on 127.0.0.1).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

TORCHVISION_URL = "https://download.pytorch.org/models/"
MIRROR_ENV = "SSD_TORCHVISION_MIRROR"
TORCHVISION_LICENSE = "BSD-3-Clause"
TORCHVISION_LICENSE_NOTE = ("torchvision (https://github.com/pytorch/vision), BSD-3-Clause; torchvision warns that "
                            "pretrained weights may also carry the terms of the data they were trained on "
                            "(COCO: annotations CC BY 4.0, images under their Flickr terms)")
_TWO_RECORDS = "full SHA-256 from two independent public records of this file (torchvision publishes the first 8 digits)"
_PREFIX_ONLY = "only the 8 hex digits in the file name could be verified (no public record of the full SHA-256 found)"


@dataclass(frozen=True)
class LiveFile:
    """One downloadable weights file of a live source."""

    file: str                     # e.g. ssd300_vgg16_coco-b556d3b4.pth
    sha256: Optional[str]         # full hash, or None when only the name's prefix is known
    hash_note: str
    source: str = "torchvision"
    base_url: str = TORCHVISION_URL
    license: str = TORCHVISION_LICENSE
    license_note: str = TORCHVISION_LICENSE_NOTE

    @property
    def url(self) -> str:
        base = self.base_url
        if self.source == "torchvision" and os.environ.get(MIRROR_ENV):
            base = os.environ[MIRROR_ENV]
        return base.rstrip("/") + "/" + self.file

    @property
    def sha256_prefix(self) -> str:
        """The hex digits torchvision puts in the file name (``…-b556d3b4.pth`` → ``b556d3b4``)."""
        m = re.search(r"-([0-9a-f]{6,64})\.[a-z]+$", self.file)
        return m.group(1) if m else ""

    @property
    def where(self) -> str:
        """The host, for listings: "download.pytorch.org"."""
        return re.sub(r"^https?://([^/]+)/.*$", r"\1", self.url)


SSD300_VGG16_COCO = LiveFile(
    "ssd300_vgg16_coco-b556d3b4.pth", "b556d3b43ab6c3f63d81bfb8835fe8756ac22da664357da100dccf96b6a6b42d", _TWO_RECORDS)
SSDLITE320_MOBILENET_V3_LARGE_COCO = LiveFile(
    "ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
    "a79551df90c79834bcd3bb3845ef9d966b5449a3a9b2833ae8404778ca5d65d2", _TWO_RECORDS)
VGG16_FEATURES = LiveFile("vgg16_features-amdegroot-88682ab5.pth", None, _PREFIX_ONLY)
#: ResNet-50 v1.5, ImageNet (torchvision's IMAGENET1K_V1, 102,530,333 bytes): ssd_512_resnet50_v1b's backbone
RESNET50_IMAGENET = LiveFile(
    "resnet50-0676ba61.pth", "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a", _TWO_RECORDS)
#: MobileNetV3-Large, ImageNet (torchvision's IMAGENET1K_V1, 22,139,423 bytes, full tail): SSDlite's backbone
MOBILENET_V3_LARGE_IMAGENET = LiveFile(
    "mobilenet_v3_large-8738ca79.pth", "8738ca797c879b547d18bbd15da5736ff2557b2036a9af72225393ca61759a04", _TWO_RECORDS)


@dataclass(frozen=True)
class LiveDetector:
    """One pullable detector from a live source (listed before GluonCV's, which are unreachable)."""

    name: str                       # the pull name and the model folder's name
    file: LiveFile
    arch: str
    title: str                      # "SSD300-VGG16"
    converter: str                  # key of ssd.models.live.CONVERTERS
    input_size: int
    published: float                # COCO box AP 0.5:0.95 as torchvision publishes it
    params_mb: float                # the converted model.params
    cpu_s: float                    # s/image, batch 1, on detect's default engine (ONNX Runtime fp32), 2-core
                                    # AMD EPYC: scripts/bench_detectors.py (docs/PERFORMANCE.md)
    metric: str = "COCO AP"
    dataset: str = "COCO"

    @property
    def source(self) -> str:
        return f"{self.file.source} ({self.file.where})"

    def classes(self) -> List[str]:
        """COCO's 80 names in the order of COCO's ids (torchvision's slots less its "N/A" ones, which is
        also GluonCV's list): a constant, so listing the catalogue imports neither MXNet nor GluonCV."""
        from ssd.models.coco_slots import coco_classes

        return coco_classes()

    def model_card(self) -> str:
        return (f"torchvision's {self.title} ({self.file.file}), trained on COCO (80 classes), COCO box AP "
                f"{self.published} as published by torchvision; converted exactly into SSD Studio's "
                f"{self.arch}. License: {self.file.license_note}.")


LIVE_DETECTORS: Dict[str, LiveDetector] = {d.name: d for d in (
    LiveDetector("ssd300_vgg16_coco", SSD300_VGG16_COCO, "ssd_300_vgg16_atrous", "SSD300-VGG16",
                 "torchvision.ssd300_vgg16", 300, 25.1, 138.8, 0.18),
    # cpu_s: forward + decode, quiet 2-core Zen 5 (MXNet's fused fp32 graph: SSD300 0.22 s, SSDlite 0.027 s)
    LiveDetector("ssdlite320_mobilenet_v3_large_coco", SSDLITE320_MOBILENET_V3_LARGE_COCO,
                 "ssdlite320_mobilenet_v3_large", "SSDlite320-MobileNetV3-Large",
                 "torchvision.ssdlite320_mobilenet_v3_large", 320, 21.3, 13.4, 0.007),
)}
