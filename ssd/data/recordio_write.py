"""Writing detection ``.rec`` + ``.idx`` files as MXNet's own writer does, without MXNet, atomically.

The bytes are those of MXNet's ``MXIndexedRecordIO`` + ``recordio.pack_img`` (the tests write the
same samples both ways and compare the files): dmlc framing (``frame``), MXNet's ``IRHeader`` with
the label array after it, the picture JPEG-encoded by OpenCV as ``pack_img`` does, and the index's
``key<TAB>offset`` lines. Not importing MXNet keeps ``data synth`` free of its seconds-long import.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator, Optional, Tuple

import numpy as np

from ssd.base.atomic import atomic_path
from ssd.data.recordio_frames import FRAME, IR_HEADER, MAGIC, default_idx_path
from ssd.data.recordio_labels import check_sample, record_label

_MAGIC_BYTES = MAGIC.to_bytes(4, "little")


def frame(payload: bytes) -> bytes:
    """One record as dmlc's ``RecordIOWriter::WriteRecord`` lays it out: the payload is cut at every
    4-byte-aligned copy of the magic (parts flagged 1 first, 2 middle, 3 last; the magic itself left
    out, the reader puts it back), each part behind magic + ``cflag << 29 | length``, zero-padded to 4."""
    parts, start, at = [], 0, 0
    while True:
        at = payload.find(_MAGIC_BYTES, at)
        if at < 0 or at + 4 > (len(payload) >> 2) << 2:
            break
        if at % 4:
            at += 1
            continue
        parts.append((1 if not parts else 2, payload[start:at]))
        start = at = at + 4
    parts.append((3 if parts else 0, payload[start:]))
    out = bytearray()
    for cflag, part in parts:
        out += FRAME.pack(MAGIC, (cflag << 29) | len(part)) + part
    return bytes(out + b"\0" * (-len(payload) % 4))


def pack_detection(index: int, img: np.ndarray, label: np.ndarray, quality: int) -> bytes:
    """``mx.recordio.pack_img(IRHeader(0, label, index, 0), img[..., ::-1], quality, ".jpg")``."""
    import cv2   # OpenCV, as pack_img encodes: the same encoder gives the same bytes

    ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"sample {index}: OpenCV could not encode the picture as JPEG")
    values = np.asarray(label, dtype=np.float32)
    return IR_HEADER.pack(values.size, 0.0, index, 0) + values.tobytes() + jpeg.tobytes()


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
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be within 1..100, got {quality}")
    idx_path = idx_path or default_idx_path(rec_path)
    if os.path.abspath(idx_path) == os.path.abspath(rec_path):
        raise ValueError(f"the index path must differ from the record path {rec_path!r}")
    count = 0
    with atomic_path(rec_path) as tmp_rec, atomic_path(idx_path) as tmp_idx:
        with open(tmp_rec, "wb") as rec, open(tmp_idx, "w", encoding="ascii", newline="\n") as idx:
            for i, packed in _packed(samples, quality):
                idx.write(f"{i}\t{rec.tell()}\n")
                rec.write(frame(packed))
                count += 1
    return count


def _packed(samples: Iterable[Tuple[np.ndarray, np.ndarray]], quality: int) -> Iterator[Tuple[int, bytes]]:
    for i, (img, label) in enumerate(samples):
        img, lab = check_sample(i, img, label)
        yield i, pack_detection(i, img, record_label(img, lab), quality)
