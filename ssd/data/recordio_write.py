"""Writing detection ``.rec`` + ``.idx`` files through MXNet's own writer, atomically.

Writing goes through MXNet's own ``MXIndexedRecordIO`` and ``pack_img`` so the files are
byte-for-byte what MXNet tools produce; the tests check that MXNet and GluonCV read them.
"""
from __future__ import annotations

import os
import warnings
from typing import Iterable, Optional, Tuple

import numpy as np

from ssd.base.atomic import atomic_path
from ssd.data.recordio_frames import default_idx_path
from ssd.data.recordio_labels import check_sample, record_label


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
                img, lab = check_sample(i, img, label)
                header = mx.recordio.IRHeader(flag=0, label=record_label(img, lab), id=i, id2=0)
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
