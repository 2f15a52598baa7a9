"""Real detectors from live sources, converted exactly: the catalogue and the converter table.

Each ``LiveDetector`` (``ssd.models.weights.catalogue``) names a file of a live source, the
architecture of ours it becomes, and its converter's key in ``CONVERTERS``. A converter is a function

    convert(state: Dict[str, np.ndarray]) -> (net, meta)

taking the checkpoint's tensors by name (``ssd.models.weights.read_state_dict``) and returning a
Gluon network of that architecture with every parameter set (CPU) and the meta.json fields that
``recipe_for(meta["arch"]).build(meta)`` rebuilds it from (``arch``, ``classes``, ``input_size``,
``normalize``, ``anchors``, and e.g. ``postprocess``). Provenance (source, license, published
accuracy, model card) is added here, the folder is written by ``ssd.store``.

Adding a detector is one ``LiveDetector`` in the catalogue's ``LIVE_DETECTORS`` and one entry in
``CONVERTERS`` that imports the architecture's conversion function when called.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from ssd.models.weights.catalogue import LIVE_DETECTORS, LiveDetector

Converter = Callable[[Dict[str, np.ndarray]], Tuple[Any, Dict[str, Any]]]
Progress = Callable[[int, Optional[int]], None]


def _ssd300_vgg16() -> Converter:
    from ssd.models.gluoncv.from_torchvision import convert_ssd300_vgg16

    return convert_ssd300_vgg16


def _ssdlite320_mobilenet_v3_large() -> Converter:
    from ssd.models.ssdlite.recipe import coco_detector

    return coco_detector


#: ``LiveDetector.converter`` → a function returning the converter (imported only when used).
CONVERTERS: Dict[str, Callable[[], Converter]] = {
    "torchvision.ssd300_vgg16": _ssd300_vgg16,
    "torchvision.ssdlite320_mobilenet_v3_large": _ssdlite320_mobilenet_v3_large,
}


def converter_of(entry: LiveDetector) -> Converter:
    return CONVERTERS[entry.converter]()


def convert_file(entry: LiveDetector, path: str) -> Tuple[Any, Dict[str, Any]]:
    """``(net, meta)`` of ``path`` converted as ``entry`` says, with its provenance in meta."""
    from ssd.data.download import file_digest
    from ssd.models.weights import read_state_dict

    net, meta = converter_of(entry)(read_state_dict(path))
    digest = file_digest(path, "sha256")
    official = digest == entry.file.sha256 if entry.file.sha256 else digest.startswith(entry.file.sha256_prefix)
    meta.update({"default": False, "status": "pretrained", "model_card": entry.model_card(),
                 "source": {"kind": entry.file.source, "name": entry.name, "file": entry.file.file,
                            "url": entry.file.url, "sha256": digest, "published_file": official,
                            "hash_note": entry.file.hash_note, "dataset": entry.dataset,
                            "license": entry.file.license, "license_note": entry.file.license_note,
                            "published": {"metric": entry.metric, "value": entry.published}}})
    return net, meta


@contextmanager
def converted_params(entry: LiveDetector, path: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """``(params file, meta)`` of ``path`` converted: a temporary ``.params`` removed afterwards."""
    from ssd.models.weights.fetch import weights_dir

    net, meta = convert_file(entry, path)
    folder = weights_dir()
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{entry.name}-", suffix=".params", dir=folder)
    os.close(fd)
    try:
        net.save_parameters(tmp)
        yield tmp, meta
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
