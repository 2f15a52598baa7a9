"""GluonCV's pretrained SSD detectors, usable as they are: the catalogue and what a pull needs.

GluonCV publishes SSDs trained on COCO (80 classes, animals, people and vehicles among them) and
on Pascal VOC (20 classes). A wildlife researcher can point one at a camera-trap photo and get
useful boxes without training anything. This module says which of them exist for our three
architectures (their names are GluonCV's own, checked against ``model_store._model_sha1``; the
figures are each preset's ``pretrained`` entries in ``presets``) and turns one into the weights
file and the ``meta.json`` of a ready model folder. Writing that folder is ``ssd.store``'s job.

Figures:
* ``params_mb``: size of the ``.params`` file, computed from the architecture (float32 weights;
  the zip GluonCV serves is a little smaller).
* ``published``: GluonCV's model-zoo tables (VOC07 mAP, COCO box AP 0.5:0.95).
* ``cpu_s``: seconds per image at the native size, batch 1, on the 2-core AMD EPYC development
  machine (README.md): ``scripts/bench_zoo.py`` on a quiet machine for 20 classes, times the
  COCO/VOC ratio that ``scripts/bench_zoo.py --pullable`` measured side by side for 80 classes
  (80 classes cost more in the class predictor and the per-class NMS).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ssd.base.errors import ModelError
from ssd.models.gluoncv.presets import METRICS, ZOO_SPECS, dataset_classes, gluoncv_name, spec_of

LICENSE = "Apache-2.0"
LICENSE_NOTE = "GluonCV model zoo weights, Apache License 2.0 (https://github.com/dmlc/gluon-cv)"
DATASET_TITLES = {"coco": "COCO", "voc": "Pascal VOC"}
STORE_SOURCE = "GluonCV model store (unreachable since February 2024)"


@dataclass(frozen=True)
class PretrainedDetector:
    """One pullable GluonCV detector: architecture × training set."""

    arch: str
    variant: str            # "voc" or "coco": the training set, and the preset of its anchors
    params_mb: float
    metric: str             # "VOC07 mAP" or "COCO AP"
    published: float
    cpu_s: float

    @property
    def name(self) -> str:
        """GluonCV's name, also the model folder's name: ``ssd_512_mobilenet1.0_coco``."""
        return gluoncv_name(self.arch, self.variant)

    @property
    def input_size(self) -> int:
        return spec_of(self.arch).base_size

    @property
    def dataset(self) -> str:
        return DATASET_TITLES[self.variant]

    def classes(self) -> List[str]:
        """The class names the detector was trained with, in its output order."""
        return dataset_classes(self.variant)

    @property
    def source(self) -> str:
        return STORE_SOURCE

    def model_card(self) -> str:
        """A one-line model card stored in meta.json."""
        return (f"GluonCV {self.name}: SSD ({spec_of(self.arch).base_network} backbone, {self.input_size} px input) "
                f"trained on {self.dataset} ({len(self.classes())} classes), {self.metric} {self.published} "
                f"as published by GluonCV; weights under the {LICENSE} license.")


def _catalogue() -> Dict[str, PretrainedDetector]:
    """Every preset's published detectors, read from ``ZOO_SPECS`` when asked (a new preset appears)."""
    return {gluoncv_name(spec.arch, variant): PretrainedDetector(spec.arch, variant, p.params_mb, METRICS[variant],
                                                                  p.value, p.cpu_s)
            for spec in ZOO_SPECS.values() for variant, p in spec.pretrained.items()}


def pretrained_detectors() -> List[PretrainedDetector]:
    """Every pullable detector, smallest architecture first, COCO before VOC."""
    return list(_catalogue().values())


def pretrained_detector(name: str) -> PretrainedDetector:
    """The catalogue entry of ``name``; ``ModelError`` listing the pullable names otherwise."""
    try:
        return _catalogue()[str(name).strip()]
    except KeyError:
        raise ModelError(f"{name!r} is not a pullable detector; choose one of: "
                         f"{', '.join(_catalogue())} (python -m ssd models pull --list)") from None


def fetch_pretrained(name: str, progress: Optional[Callable[[int, Optional[int]], None]] = None,
                     download: bool = True) -> Tuple[str, Dict[str, Any]]:
    """``(weights path, meta.json dict)`` of a pullable detector, downloading the weights if needed.

    The weights land in GluonCV's store (``$MXNET_HOME/models``) through ``ensure_weights``:
    resumable, SHA-1 checked, atomic, with an offline message naming the file. The file is then
    loaded into the net that ``GluonCVRecipe.build`` makes from the returned metadata, so a
    folder is only written for weights that really fit.
    """
    from ssd.models.gluoncv.weights import ensure_weights, weights_url, _store_sha1

    entry = pretrained_detector(name)
    path = ensure_weights(entry.name, download=download, progress=progress)
    meta = params_meta(entry.name, path, "; delete the file so that it is fetched again")
    meta["source"].update(url=weights_url(entry.name), sha1=_store_sha1(entry.name))
    return path, meta


def params_meta(name: str, path: str, advice: str = "") -> Dict[str, Any]:
    """The meta.json of GluonCV detector ``name`` whose weights are the ``.params`` file ``path``;
    ``ModelError`` when they do not load into its network."""
    from ssd.data.preprocess import MEAN, STD
    from ssd.models.gluoncv.build import load_zoo_detector
    from ssd.models.gluoncv.metadata import zoo_meta_fields

    entry = pretrained_detector(name)
    classes = entry.classes()
    net = load_zoo_detector(entry.arch, classes, entry.variant, path, f"the weights do not load into {entry.name}",
                            advice)
    meta: Dict[str, Any] = {
        "arch": entry.arch, "classes": classes, "input_size": entry.input_size,
        "normalize": {"mean": list(MEAN), "std": list(STD)},
        "default": False, "status": "pretrained",
        "model_card": entry.model_card(),
        "source": {"kind": "gluoncv-model-zoo", "name": entry.name, "dataset": entry.dataset,
                   "license": LICENSE, "license_note": LICENSE_NOTE,
                   "published": {"metric": entry.metric, "value": entry.published}},
    }
    meta.update(zoo_meta_fields(net, entry.arch, entry.input_size,
                                {"variant": entry.variant, "pretrained": entry.variant, "weights": path}))
    return meta
