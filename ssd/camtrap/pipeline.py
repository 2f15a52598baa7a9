"""The folder pipeline: decode in worker threads while the network runs batched forwards.

Why this shape (measured on the 2-core machine, see README): a 1920×1080 JPEG costs ~35 ms to
decode and resize in full but ~10 ms with libjpeg's scaled decoding (Pillow's ``draft``, done by
``load_image(draft_to=...)``), and Pillow releases the GIL while decoding, as MXNet does during a
forward. So decoding runs in a small thread pool a bounded window ahead of the network, which
takes batches of ``batch_size`` ready images. Only the window's decoded images (each already
resized to the network's square) are held, so memory stays flat however big the folder is.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Deque, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ssd.inference.detector import RawDetections


@dataclass
class Decoded:
    """One input after the worker: the network-sized pixels, or why it could not be read."""

    index: int
    pixels: Optional[np.ndarray] = None        # (S, S, 3) uint8
    size: Tuple[int, int] = (0, 0)             # original (width, height) after EXIF rotation
    datetime: Optional[str] = None
    failure: Optional[str] = None


@dataclass
class Outcome:
    """One input's result, in input order: detections in original pixels, or a failure."""

    index: int
    raw: Optional[RawDetections] = None
    datetime: Optional[str] = None
    failure: Optional[str] = None


def decode_for_network(index: int, path: str, name: str, size: int) -> Decoded:
    """Decode ``path`` (JPEG draft scale when possible) and resize it to the network square."""
    from ssd.base.errors import ImageError
    from ssd.data.images import load_image, resize_for_network

    try:
        li = load_image(path, name, draft_to=size)
        pixels = resize_for_network(li.image, size)
    except ImageError as err:
        return Decoded(index, failure=str(err))
    except Exception as err:  # noqa: BLE001 - one odd file must never stop a season's run
        return Decoded(index, failure=f"'{name}' could not be read ({type(err).__name__}: {err})")
    return Decoded(index, pixels, li.original_size, li.datetime)   # the time stamp from the same open


def run_pipeline(detector, paths: Sequence[str], names: Sequence[str], nms: float, floor: float,
                 batch_size: int = 8, workers: int = 2,
                 transform: Optional[Callable[[RawDetections], RawDetections]] = None) -> Iterator[Outcome]:
    """Yield an ``Outcome`` per input, in input order, overlapping decoding with forwards.

    ``transform`` maps each image's ``RawDetections`` (e.g. onto MegaDetector's classes) before
    it is yielded. Stopping early (closing the generator) cancels the decodes not yet started.
    """
    size = int(detector.input_size)
    batch_size = max(1, int(batch_size))
    window = max(2 * batch_size, 4 * max(1, workers))
    pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="ssd-decode")
    pending: Deque = deque()
    ready: List[Decoded] = []
    nxt = 0
    try:
        while nxt < len(paths) or pending or ready:
            while nxt < len(paths) and len(pending) < window:
                pending.append(pool.submit(decode_for_network, nxt, paths[nxt], names[nxt], size))
                nxt += 1
            while pending and (pending[0].done() or len(ready) < batch_size):
                dec = pending.popleft().result()
                if dec.failure is not None:
                    yield from _flush(detector, ready, nms, floor, transform)
                    yield Outcome(dec.index, failure=dec.failure)
                    continue
                ready.append(dec)
                if len(ready) >= batch_size:
                    break
            if len(ready) >= batch_size or (not pending and nxt >= len(paths)):
                yield from _flush(detector, ready, nms, floor, transform)
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)


def _flush(detector, ready: List[Decoded], nms: float, floor: float,
           transform: Optional[Callable[[RawDetections], RawDetections]]) -> Iterator[Outcome]:
    """One batched forward over the decoded images waiting; outcomes in input order."""
    if not ready:
        return
    batch = list(ready)
    ready.clear()
    decoded = detector.predict_arrays(np.stack([d.pixels for d in batch]), nms=nms, floor=floor)
    for d, (ids, scores, boxes) in zip(batch, decoded):
        w, h = d.size
        raw = RawDetections(ids, scores, boxes * np.array([w, h, w, h], dtype=np.float32), (w, h),
                            detector.classes)
        if transform is not None:
            raw = transform(raw)
        yield Outcome(d.index, raw, d.datetime)
