"""RecordIO detection files: the format of the official Pikachu ``train.rec`` / ``val.rec``.

A ``.rec`` file is a sequence of dmlc RecordIO frames; each record is MXNet's image record:
a 24-byte ``IRHeader`` (flag, label, id, id2), ``flag`` float32 label values, then the
encoded image (JPEG). For detection the label is::

    [header_len, label_width, width, height,  cls, xmin, ymin, xmax, ymax,  cls, ...]

with ``header_len == 4``, ``label_width == 5`` and corners normalized to [0, 1] — exactly
what ``mxnet.image.ImageDetIter`` and ``gluoncv.data.RecordFileDetection`` read. A ``.idx``
text file (``key<TAB>byte offset`` per line) gives random access.

Why the reader is written in Python instead of going through ``mx.recordio``:

* MXNet's reader reports a truncated or garbage file as an ``MXNetError`` carrying a C++
  stack trace, and it cannot tell *which* record broke. Reading the frames here lets every
  failure become one :class:`~ssd.base.errors.DatasetError` naming the file, the record index
  and the byte offset.
* The official ``val.rec`` ships without a ``.idx``; a sequential scan that remembers byte
  offsets gives random access to it as well, through the same code path.
* No native handle is held between reads (each read opens the file), so a dataset object is
  safe to use from several threads (the Streamlit server) and to pickle into DataLoader
  worker processes. Reading does not import MXNet at all.

Writing (``recordio_write``) gives byte-for-byte what MXNet's ``MXIndexedRecordIO`` and ``pack_img``
write, without importing MXNet; the tests compare the files and check that MXNet and GluonCV read them.

Images with no object: ``ImageDetIter`` and GluonCV both refuse a label without at least one
object row, so the writer stores such an image with one padding row of ``-1`` (the standard
batching pad) and the reader drops rows whose class is negative. GluonCV then reads the
record (as a single ``-1`` row); ``ImageDetIter`` still rejects it ("no valid label") — that
is a limitation of MXNet's iterator, not of the file.

The module holds the dataset and the folder format; the frames are ``ssd.data.recordio_frames``,
the label ``ssd.data.recordio_labels``, writing ``ssd.data.recordio_write``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ssd.base.errors import DatasetError
from ssd.base.json_file import read_json_file
from ssd.base.meta_schema import MAX_META_BYTES
from ssd.data.dataset import DatasetSplits, DetectionDataset, Sample, register_format
from ssd.data.recordio_frames import FrameReader, default_idx_path, read_idx
from ssd.data.recordio_labels import default_class_names, label_from_payload

__all__ = ["RecordDetectionDataset", "detect", "open_recordio"]


class RecordDetectionDataset(DetectionDataset):
    """A detection ``.rec`` file as a :class:`~ssd.data.dataset.DetectionDataset`.

    ``idx_path=None`` uses the ``.idx`` next to the ``.rec`` when there is one; without an
    index the file is scanned once at construction and the record offsets kept in memory.
    Construction also checks the first and last records, so a truncated file fails here and
    not in the middle of training. ``classes=None`` names classes from the labels (see
    :func:`default_class_names`); that reads every label once (headers only, no images).
    """

    def __init__(self, rec_path: str, idx_path: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None) -> None:
        if not os.path.isfile(rec_path):
            raise DatasetError(f"record file {rec_path!r} does not exist")
        self._rec = FrameReader(rec_path)
        self.rec_path = rec_path
        self.name = os.path.basename(rec_path)
        if idx_path is None:
            sibling = default_idx_path(rec_path)
            idx_path = sibling if sibling != rec_path and os.path.isfile(sibling) else None
        elif not os.path.isfile(idx_path):
            raise DatasetError(f"index file {idx_path!r} does not exist")
        self.idx_path = idx_path
        self._offsets = read_idx(idx_path, self._rec) if idx_path else self._rec.scan()
        if self._offsets:
            with self._rec.open() as fh:
                for i in {0, len(self._offsets) - 1}:
                    self._rec.read(fh, i, self._offsets[i])
        self._labels: Optional[List[np.ndarray]] = None
        self.dropped_boxes = 0   # boxes without area dropped while reading labels (known after labels())
        self.classes = list(classes) if classes is not None else []
        self._num_classes: Optional[int] = len(self.classes) if classes is not None else None
        if classes is None:
            self.classes = default_class_names(self.labels())

    def __len__(self) -> int:
        return len(self._offsets)

    def _where(self, idx: int) -> str:
        return f"{self.rec_path}: record {idx}"

    def _index(self, idx: int) -> int:
        n = len(self._offsets)
        if not -n <= idx < n:
            raise IndexError(f"record {idx} out of range for {self.name} with {n} records")
        return idx % n

    def __getitem__(self, idx: int) -> Sample:
        import cv2

        idx = self._index(int(idx))
        with self._rec.open() as fh:
            data, _ = self._rec.read(fh, idx, self._offsets[idx])
        label, _, start = label_from_payload(data, self._where(idx), self._num_classes)
        buf = np.frombuffer(data, np.uint8, offset=start)
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
        if img is None:
            raise DatasetError(f"{self._where(idx)}: the image bytes ({buf.size}) do not decode as an image")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), label

    def labels(self) -> List[np.ndarray]:
        """Every label, read once from the record headers without decoding images, then cached."""
        if self._labels is None:
            labels, dropped = [], 0
            with self._rec.open() as fh:
                for i, off in enumerate(self._offsets):
                    head = self._rec.read_head(fh, i, off)
                    label, d, _ = label_from_payload(head, self._where(i), self._num_classes)
                    labels.append(label)
                    dropped += d
            self._labels, self.dropped_boxes = labels, dropped
        return [l.copy() for l in self._labels]


# --------------------------------------------------------------------------------------------
# folder format
# --------------------------------------------------------------------------------------------

def detect(path: str) -> bool:
    """A folder is a RecordIO dataset when it holds ``train.rec``."""
    return os.path.isfile(os.path.join(path, "train.rec"))


def _classes_from_json(path: str) -> Optional[List[str]]:
    meta = os.path.join(path, "dataset.json")
    if not os.path.isfile(meta):
        return None
    try:
        info = read_json_file(meta, MAX_META_BYTES)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{meta} is not valid JSON ({err}); fix or delete it") from None
    classes = info.get("classes") if isinstance(info, dict) else None
    if classes is None:
        return None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise DatasetError(f"{meta}: 'classes' must be a non-empty list of names, got {classes!r}")
    return classes


def _check_generated_set(path: str, n_train: int, n_val: int) -> None:
    """A set ``data synth`` made must carry its completion marker and every image it announces.

    Why: a set cut short by a kill (or one half of an old run mixed with half of a new one) used
    to load silently with fewer or different images.
    """
    meta = os.path.join(path, "dataset.json")
    try:
        info = read_json_file(meta, MAX_META_BYTES)
    except (OSError, ValueError):
        return
    if not isinstance(info, dict) or info.get("generator") != "ssd.synth":
        return
    again = f"regenerate it with: {_synth_command(path, info)}"
    if info.get("complete") is not True:
        raise DatasetError(f"{path} has no completion marker (\"complete\": true in dataset.json): it was "
                           f"made by an interrupted or older `data synth`; {again}")
    if (n_train, n_val) != (info.get("num_train"), info.get("num_val")):
        raise DatasetError(f"{path} holds {n_train} train / {n_val} val images where dataset.json announces "
                           f"{info.get('num_train')} / {info.get('num_val')}: the set is incomplete; {again}")


def _synth_command(path: str, info: Dict[str, Any]) -> str:
    """The ``data synth`` command that makes the set again, with the numbers dataset.json gives only
    where they are whole numbers in range (a damaged file's ``1e400`` or ``null`` is left to the default)."""
    flags = []
    for key, flag, least in (("num_train", "--num-train", 1), ("num_val", "--num-val", 0), ("seed", "--seed", 0)):
        value = info.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= least:
            flags.append(f"{flag} {value}")
    return " ".join([f"python -m ssd data synth --out {path}"] + flags)


def open_recordio(path: str, **kwargs) -> DatasetSplits:
    """Open a folder with ``train.rec`` (+ ``train.idx``) and optionally ``val.rec`` (+ ``val.idx``).

    Class names come from ``dataset.json`` ("classes") when present, else from the ids in the
    labels. Every label is read here (headers only), so a broken file is reported now. An
    empty ``val.rec`` counts as no validation split; an empty ``train.rec`` is an error.
    Extra keyword arguments (meant for other formats' openers) are ignored.
    """
    classes = _classes_from_json(path)

    def open_split(stem: str) -> Optional[RecordDetectionDataset]:
        rec = os.path.join(path, stem + ".rec")
        if not os.path.isfile(rec):
            return None
        idx = os.path.join(path, stem + ".idx")
        # Named classes are checked against the ids; unnamed ones are renamed after both splits below.
        return RecordDetectionDataset(rec, idx if os.path.isfile(idx) else None, classes=classes)

    train = open_split("train")
    if train is None or len(train) == 0:
        raise DatasetError(f"{os.path.join(path, 'train.rec')} holds no records; generate or download it again")
    val = open_split("val")
    if val is not None and len(val) == 0:
        val = None
    _check_generated_set(path, len(train), len(val) if val is not None else 0)
    all_labels = train.labels() + (val.labels() if val is not None else [])
    names = classes if classes is not None else default_class_names(all_labels)
    for ds in (train, val):
        if ds is not None:
            ds.classes = list(names)
            ds._num_classes = len(names)
    skipped = {}
    dropped = train.dropped_boxes + (val.dropped_boxes if val is not None else 0)
    if dropped:
        skipped["boxes without area (dropped)"] = dropped
    return DatasetSplits(train=train, val=val, classes=list(names), kind="recordio",
                         root=path, skipped=skipped)


register_format("recordio", detect, open_recordio)
