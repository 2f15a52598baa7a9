"""Ready-made detectors: the library's one entry point to GluonCV's pretrained SSDs.

Callers outside ``ssd.models`` (the store, the CLI, the app) never import ``ssd.models.gluoncv``;
they list and fetch pullable detectors here, as they reach architectures through the registry.
"""
from __future__ import annotations

from ssd.models.gluoncv.pretrained import (LICENSE, PretrainedDetector, dataset_classes, fetch_pretrained,
                                           pretrained_detector, pretrained_detectors)

__all__ = ["LICENSE", "PretrainedDetector", "dataset_classes", "fetch_pretrained", "pretrained_detector",
           "pretrained_detectors"]
