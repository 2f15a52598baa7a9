"""Detection datasets: one small interface for every on-disk layout.

Every dataset yields ``(image, label)`` pairs where ``image`` is an ``(H, W, 3)`` uint8 RGB
numpy array and ``label`` a float32 ``(K, 5)`` array of ``[class, xmin, ymin, xmax, ymax]``
with corners normalized to ``[0, 1]`` — MXNet's ``MultiBoxTarget`` convention. ``K`` may be
0 (an image with no object); padding with ``-1`` rows happens at batching time, not here.

``open_dataset(path)`` recognises a folder's layout and returns its splits; formats register
themselves in ``_OPENERS`` so new ones (COCO Camera Traps, banana CSV, Pascal VOC) slot in without
touching callers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ssd.base.errors import DatasetError

Sample = Tuple[np.ndarray, np.ndarray]

#: Share of the images held out for validation when a dataset has no validation split of its own
#: (COCO Camera Traps folders): a fifth, split by sequence so bursts never straddle the two.
DEFAULT_VAL_FRACTION = 0.2


class DetectionDataset:
    """Base class: subclasses implement ``__len__`` and ``__getitem__``."""

    classes: List[str] = []
    name: str = ""

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def __getitem__(self, idx: int) -> Sample:  # pragma: no cover - interface
        raise NotImplementedError

    def labels(self) -> List[np.ndarray]:
        """All labels without decoding images where a subclass can (evaluation, coverage)."""
        return [self[i][1] for i in range(len(self))]


class InMemoryDataset(DetectionDataset):
    """Images already decoded (and usually resized) in memory: the fast training path."""

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], classes: Sequence[str],
                 name: str = "in-memory") -> None:
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = list(images)
        self._labels = [np.asarray(l, dtype=np.float32).reshape(-1, 5) for l in labels]
        self.classes = list(classes)
        self.name = name

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int) -> Sample:
        return self.images[idx], self._labels[idx]

    def labels(self) -> List[np.ndarray]:
        return list(self._labels)

    @classmethod
    def from_dataset(cls, ds: DetectionDataset, size: Optional[int] = None) -> "InMemoryDataset":
        """Decode every image once (optionally resized to ``size``×``size``) and keep them."""
        from PIL import Image

        imgs, labels = [], []
        for i in range(len(ds)):
            img, lab = ds[i]
            if size is not None and img.shape[:2] != (size, size):
                img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
            imgs.append(np.ascontiguousarray(img))
            labels.append(lab)
        return cls(imgs, labels, ds.classes, name=ds.name)


@dataclass
class DatasetSplits:
    """What ``open_dataset`` returns: splits, class names and a note on what was skipped."""

    train: DetectionDataset
    val: Optional[DetectionDataset]
    classes: List[str]
    kind: str                       # "recordio", "coco-camera-traps", "banana", "pascal-voc"...
    root: str
    skipped: Dict[str, int] = field(default_factory=dict)   # reason -> count
    #: The set's own annotated test split, held out from training (Roboflow's ``test/``; VOC's annotated
    #: ``test.txt``, which is also its validation split); None when the set has none. ``eval --split test``.
    test: Optional[DetectionDataset] = None

    def split(self, name: str) -> Optional[DetectionDataset]:
        """The split called ``name`` ("train", "val" or "test"), or None when the set has none."""
        return {"train": self.train, "val": self.val, "test": self.test}.get(name)

    def split_names(self) -> List[str]:
        """The names of the splits that hold images, in the order train, val, test."""
        return [n for n in ("train", "val", "test") if self.split(n) is not None and len(self.split(n))]

    def describe(self) -> str:
        n_val = len(self.val) if self.val is not None else 0
        n_test = f" / {len(self.test)} test" if self.test is not None else ""
        return (f"{self.kind} dataset at {self.root}: {len(self.train)} train / {n_val} val{n_test} images, "
                f"{len(self.classes)} class(es): {', '.join(self.classes[:8])}"
                + (" …" if len(self.classes) > 8 else ""))


# (predicate(path) -> bool, opener(path, **kw) -> DatasetSplits), tried in order.
_OPENERS: List[Tuple[str, Callable[[str], bool], Callable[..., DatasetSplits]]] = []


# file extension -> opener(file, **kw): a format whose folder may hold several sets names one by its file.
_FILE_OPENERS: Dict[str, Callable[..., DatasetSplits]] = {}


def register_format(kind: str, detect: Callable[[str], bool], opener: Callable[..., DatasetSplits],
                    file_ext: Optional[str] = None, file_opener: Optional[Callable[..., DatasetSplits]] = None) -> None:
    _OPENERS.append((kind, detect, opener))
    if file_ext and file_opener:
        _FILE_OPENERS[file_ext] = file_opener


def open_dataset(path: str, **kwargs) -> DatasetSplits:
    """Open a dataset folder of any known layout, or raise one clear ``DatasetError``."""
    if not path or not os.path.exists(path):
        raise DatasetError(f"dataset folder {path!r} does not exist "
                           "(make one with: python -m ssd data synth --out DIR)")
    _load_builtin_formats()
    if not os.path.isdir(path):
        opener = _FILE_OPENERS.get(os.path.splitext(path)[1].lower())
        if opener is None:
            raise DatasetError(f"{path!r} is a file; give the dataset's folder (or its COCO Camera Traps .json)")
        return opener(path, **kwargs)
    from ssd.data.staging import refuse_incomplete

    refuse_incomplete(path)
    for kind, detect, opener in _OPENERS:
        if detect(path):
            return opener(path, **kwargs)
    listing = ", ".join(sorted(os.listdir(path))[:10]) or "nothing"
    raise DatasetError(
        f"{path!r} is not a dataset this app knows: expected train.rec (+ val.rec) in RecordIO detection "
        f"format, a COCO (or COCO Camera Traps) JSON with its images, here or in annotations/, train/ and "
        f"valid/ folders each with one (Roboflow's COCO download), or Pascal VOC XMLs (Annotations/ beside "
        f"JPEGImages/, a VOCdevkit holding VOC2007 and VOC2012, or LabelImg's .xml files beside the photos "
        f"or in labels/); found {listing}")


def detect_format(path: str) -> Optional[str]:
    """The layout of a complete dataset folder (None for anything else): what pickers list."""
    from ssd.data.staging import is_incomplete

    if not os.path.isdir(path) or is_incomplete(path):
        return None
    _load_builtin_formats()
    for kind, detect, _ in _OPENERS:
        try:
            if detect(path):
                return kind
        except OSError:
            return None
    return None


_BUILTINS_LOADED = False


def _load_builtin_formats() -> None:
    """Import the format modules once; each calls ``register_format`` at import."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import importlib

    for mod in ("ssd.data.recordio", "ssd.data.cct", "ssd.data.coco_splits", "ssd.data.banana", "ssd.data.voc",
                "ssd.data.voc_devkit"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod:  # a real missing dependency inside the module
                raise
