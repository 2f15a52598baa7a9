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

Writing goes through MXNet's own ``MXIndexedRecordIO`` and ``pack_img`` so the files are
byte-for-byte what MXNet tools produce; the tests check that MXNet and GluonCV read them.

Images with no object: ``ImageDetIter`` and GluonCV both refuse a label without at least one
object row, so the writer stores such an image with one padding row of ``-1`` (the standard
batching pad) and the reader drops rows whose class is negative. GluonCV then reads the
record (as a single ``-1`` row); ``ImageDetIter`` still rejects it ("no valid label") — that
is a limitation of MXNet's iterator, not of the file.
"""
from __future__ import annotations

import json
import os
import struct
import warnings
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ssd.data.dataset import DatasetSplits, DetectionDataset, Sample, register_format
from ssd.base.errors import DatasetError
from ssd.base.atomic import atomic_path

__all__ = [
    "write_detection_rec",
    "RecordDetectionDataset",
    "default_class_names",
    "detect",
    "open_recordio",
]

# dmlc RecordIO framing: uint32 magic, uint32 (cflag << 29 | length), payload padded to 4 bytes.
# A payload containing the magic at a 4-byte-aligned position is split into parts
# (cflag 1 = first, 2 = middle, 3 = last) and the magic is re-inserted when joining them.
_MAGIC = 0xCED7230A
_FRAME = struct.Struct("<II")
_LEN_MASK = (1 << 29) - 1
# MXNet's IRHeader: uint32 flag (= number of float32 label values), float32 label, uint64 id, uint64 id2.
_IR = struct.Struct("<IfQQ")
_HEADER_LEN = 4      # [header_len, label_width, width, height]
_LABEL_WIDTH = 5     # [cls, xmin, ymin, xmax, ymax]
# Corners further outside [0, 1] than this are not "slightly off" normalized values but almost
# certainly pixel coordinates; such a file needs converting, and silently clipping would be wrong.
_COORD_SLACK = 0.5


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def default_idx_path(rec_path: str) -> str:
    """``train.rec`` -> ``train.idx`` (MXNet's convention for the index next to a record file)."""
    root, ext = os.path.splitext(rec_path)
    return (root if ext.lower() == ".rec" else rec_path) + ".idx"


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def _check_sample(i: int, img: np.ndarray, label: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one writer input; these are programming errors of the caller, hence ValueError."""
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"sample {i}: image must be a uint8 (H, W, 3) RGB array, got {img.dtype} {img.shape}")
    lab = np.asarray(label, dtype=np.float32)
    if lab.size == 0:
        lab = lab.reshape(0, 5)
    if lab.ndim != 2 or lab.shape[1] != 5:
        raise ValueError(f"sample {i}: label must be a (K, 5) [cls, x1, y1, x2, y2] array, got shape {lab.shape}")
    if not np.all(np.isfinite(lab)):
        raise ValueError(f"sample {i}: label holds NaN or infinite values")
    if lab.shape[0]:
        cls, box = lab[:, 0], lab[:, 1:]
        if np.any(cls < 0) or np.any(cls != np.round(cls)):
            raise ValueError(f"sample {i}: class ids must be non-negative integers, got {cls.tolist()}")
        if np.any(box < 0) or np.any(box > 1):
            raise ValueError(f"sample {i}: corners must be normalized to [0, 1], got {box.tolist()}")
        if np.any(box[:, 2] <= box[:, 0]) or np.any(box[:, 3] <= box[:, 1]):
            raise ValueError(f"sample {i}: every box needs xmax > xmin and ymax > ymin, got {box.tolist()}")
    return img, lab


def _record_label(img: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """The flat MXNet detection label; an image with no object gets one ``-1`` padding row."""
    h, w = img.shape[:2]
    rows = lab if lab.shape[0] else -np.ones((1, _LABEL_WIDTH), dtype=np.float32)
    return np.concatenate([np.array([_HEADER_LEN, _LABEL_WIDTH, w, h], dtype=np.float32),
                           rows.astype(np.float32).ravel()])


def write_detection_rec(rec_path: str, samples: Iterable[Tuple[np.ndarray, np.ndarray]],
                        idx_path: Optional[str] = None, quality: int = 95) -> int:
    """Write ``(RGB uint8 image, (K, 5) normalized label)`` samples as a detection ``.rec`` + ``.idx``.

    Records are numbered 0..N-1 (``IRHeader.id`` and the ``.idx`` key) and JPEG-encoded at
    ``quality``. Both files are written to temporary names in their folders and moved into
    place only after the last sample, so an interrupted run leaves the previous files intact.
    (The two ``os.replace`` calls are each atomic but not jointly: a crash exactly between
    them pairs a new ``.idx`` with an old ``.rec``; the reader reports the mismatch when an
    offset misses a record boundary — deleting the ``.idx`` makes it rescan the ``.rec``.)

    ``samples`` may be a generator, so a large set is never held in memory. Returns the count.
    """
    import mxnet as mx  # imported here: reading never needs MXNet, and it is slow to import

    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be within 1..100, got {quality}")
    idx_path = idx_path or default_idx_path(rec_path)
    if os.path.abspath(idx_path) == os.path.abspath(rec_path):
        raise ValueError(f"the index path must differ from the record path {rec_path!r}")
    count = 0
    with atomic_path(rec_path) as tmp_rec, atomic_path(idx_path) as tmp_idx:
        writer = mx.recordio.MXIndexedRecordIO(tmp_idx, tmp_rec, "w")
        try:
            for i, (img, label) in enumerate(samples):
                img, lab = _check_sample(i, img, label)
                header = mx.recordio.IRHeader(flag=0, label=_record_label(img, lab), id=i, id2=0)
                # pack_img hands the array to cv2.imencode, which expects BGR channel order.
                bgr = np.ascontiguousarray(img[:, :, ::-1])
                with warnings.catch_warnings():
                    # pack_img calls ndarray.tostring(), deprecated in numpy but equivalent.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    packed = mx.recordio.pack_img(header, bgr, quality=int(quality), img_fmt=".jpg")
                writer.write_idx(i, packed)
                count += 1
        finally:
            writer.close()
    return count


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

class _Reader:
    """Frame-level access to one ``.rec`` file; every failure is a DatasetError with a location."""

    def __init__(self, rec_path: str) -> None:
        self.path = rec_path
        self.name = os.path.basename(rec_path)
        try:
            self.size = os.path.getsize(rec_path)
        except OSError as err:
            raise DatasetError(f"cannot read record file {rec_path!r}: {err.strerror or err}") from None

    def open(self):
        try:
            return open(self.path, "rb")
        except OSError as err:
            raise DatasetError(f"cannot read record file {self.path!r}: {err.strerror or err}") from None

    def _broken(self, index: int, offset: int, what: str) -> DatasetError:
        return DatasetError(
            f"{self.path}: record {index} (byte offset {offset}) {what}; the file is damaged or incomplete "
            "— download or generate it again (python -m ssd data synth --out DIR makes a fresh set)")

    def _frame(self, fh, index: int, start: int, pos: int) -> Tuple[int, int]:
        """Read the frame header at ``pos``: (cflag, length)."""
        fh.seek(pos)
        raw = fh.read(_FRAME.size)
        if len(raw) < _FRAME.size:
            raise self._broken(index, start, "is cut off: the file ends inside its frame header")
        magic, lrec = _FRAME.unpack(raw)
        if magic != _MAGIC:
            raise self._broken(index, start, f"has no RecordIO marker at byte {pos} (not a .rec file, "
                                             "or an .idx that belongs to another .rec)")
        length = lrec & _LEN_MASK
        if pos + _FRAME.size + length > self.size:
            raise self._broken(index, start, f"is cut off: it needs {length} bytes after byte {pos} "
                                             f"but the file ends at byte {self.size}")
        return lrec >> 29, length

    def read(self, fh, index: int, offset: int) -> Tuple[bytes, int]:
        """The whole payload of the record starting at ``offset`` and the offset after it."""
        parts: List[bytes] = []
        pos = offset
        first = True
        while True:
            cflag, length = self._frame(fh, index, offset, pos)
            if (cflag in (2, 3)) == first:   # a start must be 0/1; a continuation must be 2/3
                raise self._broken(index, offset, f"has an invalid continuation flag {cflag} at byte {pos}")
            parts.append(fh.read(length))
            pos += _FRAME.size + _pad4(length)
            if cflag in (0, 3):
                break
            parts.append(struct.pack("<I", _MAGIC))
            first = False
        return b"".join(parts), pos

    def read_head(self, fh, index: int, offset: int) -> bytes:
        """Enough bytes of a record to parse its label, without reading the image."""
        cflag, length = self._frame(fh, index, offset, offset)
        if cflag in (0, 1) and length >= _IR.size:
            head = fh.read(_IR.size)
            need = 4 * _IR.unpack(head)[0]
            if length >= _IR.size + need:
                return head + fh.read(need)
        return self.read(fh, index, offset)[0]   # label split across parts (rare): read it whole

    def scan(self) -> List[int]:
        """Offsets of every record, from one pass over the frame headers (no payload is read)."""
        offsets: List[int] = []
        pos = 0
        with self.open() as fh:
            while pos < self.size:
                index, start, first = len(offsets), pos, True
                while True:
                    cflag, length = self._frame(fh, index, start, pos)
                    if (cflag in (2, 3)) == first:
                        raise self._broken(index, start, f"has an invalid continuation flag {cflag} at byte {pos}")
                    pos += _FRAME.size + _pad4(length)
                    if cflag in (0, 3):
                        break
                    first = False
                offsets.append(start)
        return offsets


def _read_idx(idx_path: str, rec: _Reader) -> List[int]:
    """Byte offsets from an MXNet ``.idx`` file, in file order (the order MXNet iterates)."""
    try:
        with open(idx_path, "r", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read index file {idx_path!r}: {err}") from None
    offsets: List[int] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().split("\t")
        try:
            if len(fields) != 2:
                raise ValueError
            int(fields[0])
            offset = int(fields[1])
        except ValueError:
            raise DatasetError(f"{idx_path}: line {n} is not 'key<TAB>offset' ({line[:60]!r}); delete the "
                               ".idx to let the reader scan the .rec instead") from None
        if not 0 <= offset <= rec.size - _FRAME.size:
            raise DatasetError(f"{idx_path}: line {n} points at byte {offset} but {rec.path} has only "
                               f"{rec.size} bytes — the .rec is truncated or the .idx belongs to another file")
        offsets.append(offset)
    return offsets


def _parse_label(values: np.ndarray, where: str, num_classes: Optional[int]) -> Tuple[np.ndarray, int]:
    """Flat MXNet detection label -> ``(K, 5)`` float32, like GluonCV's ``_transform_label``.

    The header length is read from the label itself (``label[0]``) so files with longer
    headers also load; columns beyond the fifth of each object are ignored. Rows with a
    negative class are padding and dropped; corners slightly outside [0, 1] are clipped and a
    box left without area is dropped (as ``ImageDetIter`` does). Returns the label and how
    many boxes were dropped for having no area.
    """
    def bad(msg: str) -> DatasetError:
        return DatasetError(f"{where}: malformed detection label ({msg}); expected "
                            "[header_len, label_width, ..., cls, xmin, ymin, xmax, ymax, ...] with normalized corners")

    raw = np.asarray(values, dtype=np.float32).ravel()
    if raw.size < 2:
        raise bad(f"only {raw.size} value(s) — a classification record, not a detection one")
    if not np.all(np.isfinite(raw)):
        raise bad("NaN or infinite values")
    header_len, width = float(raw[0]), float(raw[1])
    if header_len != int(header_len) or not 2 <= header_len <= raw.size:
        raise bad(f"header length {header_len:g} is not an integer within 2..{raw.size}")
    if width != int(width) or width < 5:
        raise bad(f"object width {width:g} is not an integer >= 5")
    body = raw[int(header_len):]
    if body.size % int(width):
        raise bad(f"{body.size} object values do not divide into rows of {int(width)}")
    rows = body.reshape(-1, int(width))[:, :5]
    rows = rows[rows[:, 0] >= 0]
    cls = rows[:, 0]
    if np.any(cls != np.round(cls)):
        raise bad(f"class ids {cls.tolist()} are not integers")
    if num_classes is not None and np.any(cls >= num_classes):
        raise DatasetError(f"{where}: class id {int(cls.max())} but the dataset names only {num_classes} "
                           "class(es); fix the 'classes' list in dataset.json")
    box = rows[:, 1:]
    if np.any(box < -_COORD_SLACK) or np.any(box > 1 + _COORD_SLACK):
        raise bad(f"corners {box.tolist()} are not normalized to [0, 1] (pixel coordinates?)")
    box = np.clip(box, 0.0, 1.0)
    keep = (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])
    out = np.concatenate([cls[:, None], box], axis=1)[keep]
    return np.ascontiguousarray(out, dtype=np.float32), int((~keep).sum())


def _label_from_payload(data: bytes, where: str, num_classes: Optional[int]) -> Tuple[np.ndarray, int, int]:
    """(label, dropped boxes, byte offset of the image) from a record payload."""
    if len(data) < _IR.size:
        raise DatasetError(f"{where}: record is {len(data)} bytes, shorter than MXNet's 24-byte image header")
    flag = _IR.unpack_from(data)[0]
    if flag == 0:
        raise DatasetError(f"{where}: record has a single scalar label (a classification .rec?), "
                           "not a detection label")
    end = _IR.size + 4 * flag
    if len(data) < end:
        raise DatasetError(f"{where}: record announces {flag} label values but holds only "
                           f"{(len(data) - _IR.size) // 4}")
    label, dropped = _parse_label(np.frombuffer(data, np.float32, flag, _IR.size), where, num_classes)
    return label, dropped, end


def default_class_names(labels: Sequence[np.ndarray]) -> List[str]:
    """Names when a file carries none: ``["pikachu"]`` if every id is 0, else ``class_0..class_N``.

    Record files store only numeric ids; the official Pikachu set has the single class 0.
    """
    ids = [int(l[:, 0].max()) for l in labels if len(l)]
    top = max(ids) if ids else 0
    return ["pikachu"] if top == 0 else [f"class_{i}" for i in range(top + 1)]


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
        self._rec = _Reader(rec_path)
        self.rec_path = rec_path
        self.name = os.path.basename(rec_path)
        if idx_path is None:
            sibling = default_idx_path(rec_path)
            idx_path = sibling if sibling != rec_path and os.path.isfile(sibling) else None
        elif not os.path.isfile(idx_path):
            raise DatasetError(f"index file {idx_path!r} does not exist")
        self.idx_path = idx_path
        self._offsets = _read_idx(idx_path, self._rec) if idx_path else self._rec.scan()
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
        label, _, start = _label_from_payload(data, self._where(idx), self._num_classes)
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
                    label, d, _ = _label_from_payload(head, self._where(i), self._num_classes)
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
        with open(meta, "r", encoding="utf-8") as fh:
            info = json.load(fh)
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
        with open(meta, "r", encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        return
    if not isinstance(info, dict) or info.get("generator") != "ssd.synth":
        return
    again = (f"regenerate it with: python -m ssd data synth --out {path} --num-train {info.get('num_train')} "
             f"--num-val {info.get('num_val')} --seed {info.get('seed')}")
    if info.get("complete") is not True:
        raise DatasetError(f"{path} has no completion marker (\"complete\": true in dataset.json): it was "
                           f"made by an interrupted or older `data synth`; {again}")
    if (n_train, n_val) != (info.get("num_train"), info.get("num_val")):
        raise DatasetError(f"{path} holds {n_train} train / {n_val} val images where dataset.json announces "
                           f"{info.get('num_train')} / {info.get('num_val')}: the set is incomplete; {again}")


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
