"""Ready-made detectors: the library's one entry point to pretrained SSDs, whatever their source.

Two sources: detectors converted exactly from torchvision's files (``ssd.models.live``; its host
is alive) and GluonCV's own (``ssd.models.gluoncv.pretrained``; its store has been unreachable
since February 2024, though mirrors and files already in ``~/.mxnet/models`` work). Callers outside
``ssd.models`` (the store, the CLI, the app) list and fetch them here, live ones first.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from ssd.base.errors import ModelError
from ssd.models.gluoncv.pretrained import (LICENSE, PretrainedDetector, dataset_classes, fetch_pretrained as _fetch_gluoncv,
                                           params_meta, pretrained_detector as _gluoncv_entry,
                                           pretrained_detectors as _gluoncv_entries)
from ssd.models.live import converted_params
from ssd.models.weights.catalogue import LIVE_DETECTORS, LiveDetector
from ssd.models.weights.fetch import fetch_live

__all__ = ["LICENSE", "LiveDetector", "PretrainedDetector", "dataset_classes", "imported", "prepared",
           "pretrained_detector", "pretrained_detectors"]

Entry = Union[LiveDetector, PretrainedDetector]
Progress = Callable[[int, Optional[int]], None]


def pretrained_detectors() -> List[Entry]:
    """Every pullable detector: the live sources' first, then GluonCV's."""
    return list(LIVE_DETECTORS.values()) + list(_gluoncv_entries())


def listing_line(entry: Entry) -> str:
    """One aligned line of ``models pull --list``: name, classes, input size, file size, published
    accuracy, CPU time an image (ms: SSDlite's 15 and SSD512's 160 read alike), source."""
    return (f"{entry.name:35s} {len(entry.classes()):3d} {entry.dataset + ' classes':18s} {entry.input_size:3d}px "
            f"{entry.params_mb:6.1f} MB  {entry.metric:>9s} {entry.published:4.1f}  {'~%.0f' % (entry.cpu_s * 1000):>5s} ms/image  "
            f"{entry.source}")


def pretrained_detector(name: str) -> Entry:
    """The catalogue entry of ``name``; ``ModelError`` listing the pullable names otherwise."""
    key = str(name).strip()
    if key in LIVE_DETECTORS:
        return LIVE_DETECTORS[key]
    try:
        return _gluoncv_entry(key)
    except ModelError:
        names = [d.name for d in pretrained_detectors()]
        raise ModelError(f"{name!r} is not a pullable detector; choose one of: {', '.join(names)} "
                         "(python -m ssd models pull --list)") from None


@contextmanager
def prepared(name: str, progress: Optional[Progress] = None) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """``(params file, meta.json dict)`` of a pullable detector, downloading what it needs.

    A live detector's file is fetched (resumable, SHA-256 checked) and converted into a temporary
    ``.params`` that exists only inside the ``with``; GluonCV's weights are their store's file.
    """
    entry = pretrained_detector(name)
    if isinstance(entry, LiveDetector):
        with converted_params(entry, fetch_live(entry.file, progress=progress)) as pair:
            yield pair
    else:
        yield _fetch_gluoncv(entry.name, progress=progress)


@contextmanager
def imported(name: str, path: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """``(params file, meta)`` of a file copied by hand, converted as catalogue entry ``name`` says:
    a ``.pth`` / ``.safetensors`` for a live detector, GluonCV's ``.params`` for one of GluonCV's."""
    entry = pretrained_detector(name)
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such file")
    if isinstance(entry, LiveDetector):
        with converted_params(entry, path) as pair:
            yield pair
        return
    meta = params_meta(entry.name, path, f"; is it GluonCV's {entry.name}.params?")
    meta["source"]["imported_from"] = os.path.abspath(path)
    yield path, meta
