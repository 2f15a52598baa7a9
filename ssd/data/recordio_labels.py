"""MXNet's detection label inside a record: parsed to ``(K, 5)`` rows, checked, and written.

For detection the label is::

    [header_len, label_width, width, height,  cls, xmin, ymin, xmax, ymax,  cls, ...]

with ``header_len == 4``, ``label_width == 5`` and corners normalized to [0, 1] — exactly
what ``mxnet.image.ImageDetIter`` and ``gluoncv.data.RecordFileDetection`` read.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ssd.base.errors import DatasetError
from ssd.data.recordio_frames import IR_HEADER

HEADER_LEN = 4      # [header_len, label_width, width, height]
LABEL_WIDTH = 5     # [cls, xmin, ymin, xmax, ymax]
# Corners further outside [0, 1] than this are not "slightly off" normalized values but almost
# certainly pixel coordinates; such a file needs converting, and silently clipping would be wrong.
_COORD_SLACK = 0.5


def check_sample(i: int, img: np.ndarray, label: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
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


def record_label(img: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """The flat MXNet detection label; an image with no object gets one ``-1`` padding row."""
    h, w = img.shape[:2]
    rows = lab if lab.shape[0] else -np.ones((1, LABEL_WIDTH), dtype=np.float32)
    return np.concatenate([np.array([HEADER_LEN, LABEL_WIDTH, w, h], dtype=np.float32),
                           rows.astype(np.float32).ravel()])


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


def label_from_payload(data: bytes, where: str, num_classes: Optional[int]) -> Tuple[np.ndarray, int, int]:
    """(label, dropped boxes, byte offset of the image) from a record payload."""
    if len(data) < IR_HEADER.size:
        raise DatasetError(f"{where}: record is {len(data)} bytes, shorter than MXNet's 24-byte image header")
    flag = IR_HEADER.unpack_from(data)[0]
    if flag == 0:
        raise DatasetError(f"{where}: record has a single scalar label (a classification .rec?), "
                           "not a detection label")
    end = IR_HEADER.size + 4 * flag
    if len(data) < end:
        raise DatasetError(f"{where}: record announces {flag} label values but holds only "
                           f"{(len(data) - IR_HEADER.size) // 4}")
    label, dropped = _parse_label(np.frombuffer(data, np.float32, flag, IR_HEADER.size), where, num_classes)
    return label, dropped, end


def default_class_names(labels: Sequence[np.ndarray]) -> List[str]:
    """Names when a file carries none: ``["pikachu"]`` if every id is 0, else ``class_0..class_N``.

    Record files store only numeric ids; the official Pikachu set has the single class 0.
    """
    ids = [int(l[:, 0].max()) for l in labels if len(l)]
    top = max(ids) if ids else 0
    return ["pikachu"] if top == 0 else [f"class_{i}" for i in range(top + 1)]
