"""The folder pipeline: decode in worker threads while the network runs batched forwards.

Why this shape (measured on the 2-core machine, see README): a 1920×1080 JPEG costs ~35 ms to
decode and resize in full but ~10 ms with libjpeg's scaled decoding (Pillow's ``draft``, done by
``load_image(draft_to=...)``), and Pillow releases the GIL while decoding, as MXNet does during a
forward. So decoding runs in a small thread pool a bounded window ahead of the network, which
takes batches of ``batch_size`` ready images. Only the window's decoded images (each already
resized to the network's square) are held, so memory stays flat however big the folder is; as a
video may bring hundreds of frames, at most ``workers`` videos are in the window at once.

A video (``ssd.camtrap.video``) is one input whose worker returns its sampled frames; they join
the batches like photos, and its outcome carries every frame's detections (the run keeps the
best frame's).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Deque, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ssd.camtrap.video import DEFAULT_FRAME_EVERY, FrameProgress, is_video, sample_frames
from ssd.data.video_time import recorded_time
from ssd.inference.detector import RawDetections


@dataclass
class Decoded:
    """One input after the worker: the network-sized pixels, or why it could not be read."""

    index: int
    pixels: Optional[np.ndarray] = None        # (n, S, S, 3) uint8: one frame for a photo, n for a video
    size: Tuple[int, int] = (0, 0)             # original (width, height) after EXIF rotation
    datetime: Optional[str] = None
    failure: Optional[str] = None
    frame_numbers: Optional[List[int]] = None  # a video's sampled frames (None: a photo)
    fps: float = 0.0
    warning: Optional[str] = None              # a video cut short (``video.cut_short``)
    datetime_source: Optional[str] = None      # a video's: where its time came from (``video_time``)

    @property
    def count(self) -> int:
        return 0 if self.pixels is None else len(self.pixels)


@dataclass
class Outcome:
    """One input's result, in input order: detections in original pixels, or a failure."""

    index: int
    raw: Optional[RawDetections] = None
    datetime: Optional[str] = None
    failure: Optional[str] = None
    frames: Optional[List[Tuple[int, RawDetections]]] = None   # a video: (frame number, detections) each
    fps: float = 0.0
    warning: Optional[str] = None
    datetime_source: Optional[str] = None

    @property
    def is_video(self) -> bool:
        return self.frames is not None


def decode_for_network(index: int, path: str, name: str, size: int,
                       frame_every: float = DEFAULT_FRAME_EVERY,
                       on_frames: Optional[Callable[[str], FrameProgress]] = None) -> Decoded:
    """Decode ``path`` (JPEG draft scale when possible; a video's sampled frames) at the network square."""
    from ssd.base.errors import ImageError
    from ssd.data.images import load_image, resize_for_network

    try:
        if is_video(name):
            v = sample_frames(path, name, size, frame_every, on_frames(name) if on_frames else None)
            when, source = recorded_time(path) or (None, None)      # the container's, as a photo's EXIF
            return Decoded(index, v.pixels, v.size, when, frame_numbers=v.numbers, fps=v.fps,
                           warning=v.cut_short, datetime_source=source)
        li = load_image(path, name, draft_to=size)
        pixels = resize_for_network(li.image, size)[None]
    except (ImageError, ValueError) as err:
        return Decoded(index, failure=str(err), frame_numbers=[] if is_video(name) else None)
    except Exception as err:  # noqa: BLE001 - one odd file must never stop a season's run
        return Decoded(index, failure=f"'{name}' could not be read ({type(err).__name__}: {err})",
                       frame_numbers=[] if is_video(name) else None)
    return Decoded(index, pixels, li.original_size, li.datetime)   # the time stamp from the same open


def run_pipeline(detector, paths: Sequence[str], names: Sequence[str], nms: float, floor: float,
                 batch_size: int = 8, workers: int = 2,
                 transform: Optional[Callable[[RawDetections], RawDetections]] = None,
                 frame_every: float = DEFAULT_FRAME_EVERY,
                 on_frames: Optional[Callable[[str], FrameProgress]] = None) -> Iterator[Outcome]:
    """Yield an ``Outcome`` per input, in input order, overlapping decoding with forwards.

    ``transform`` maps each image's ``RawDetections`` (e.g. onto MegaDetector's classes) before
    it is yielded. Stopping early (closing the generator) cancels the decodes not yet started.
    Videos are sampled every ``frame_every`` seconds; their frames count towards ``batch_size``;
    ``on_frames(name)`` gives the callback a video's decoding reports its frames to (worker threads).
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
            while nxt < len(paths) and len(pending) < window and not _video_waits(names, nxt, len(pending), workers):
                pending.append(pool.submit(decode_for_network, nxt, paths[nxt], names[nxt], size, frame_every,
                                           on_frames))
                nxt += 1
            while pending and (pending[0].done() or _frames(ready) < batch_size):
                dec = pending.popleft().result()
                if dec.failure is not None:
                    yield from _flush(detector, ready, nms, floor, transform, batch_size)
                    yield Outcome(dec.index, failure=dec.failure, frames=None if dec.frame_numbers is None else [])
                    continue
                ready.append(dec)
                if _frames(ready) >= batch_size:
                    break
            if _frames(ready) >= batch_size or (not pending and nxt >= len(paths)):
                yield from _flush(detector, ready, nms, floor, transform, batch_size)
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)


def _video_waits(names: Sequence[str], nxt: int, pending: int, workers: int) -> bool:
    """Whether input ``nxt`` is a video that must wait for the network: a video brings up to
    ``MAX_FRAMES`` frames, so no more than ``workers`` are decoded ahead (a window of files all
    long clips held 16 × 190 MB). The ``pending`` inputs are the ones just before ``nxt``."""
    if not is_video(names[nxt]):
        return False
    return sum(is_video(n) for n in names[nxt - pending:nxt]) >= max(1, int(workers))


def _frames(ready: List[Decoded]) -> int:
    return sum(d.count for d in ready)


def _flush(detector, ready: List[Decoded], nms: float, floor: float,
           transform: Optional[Callable[[RawDetections], RawDetections]], batch_size: int) -> Iterator[Outcome]:
    """Batched forwards (``batch_size`` frames each) over the inputs waiting; outcomes in input order."""
    if not ready:
        return
    batch = list(ready)
    ready.clear()
    pixels = np.concatenate([d.pixels for d in batch])
    decoded: List = []
    for start in range(0, len(pixels), max(1, batch_size)):
        decoded += detector.predict_arrays(pixels[start:start + max(1, batch_size)], nms=nms, floor=floor)
    at = 0
    for d in batch:
        w, h = d.size
        raws = []
        for ids, scores, boxes in decoded[at:at + d.count]:
            raw = RawDetections(ids, scores, boxes * np.array([w, h, w, h], dtype=np.float32), (w, h),
                                detector.classes)
            raws.append(transform(raw) if transform is not None else raw)
        at += d.count
        if d.frame_numbers is None:
            yield Outcome(d.index, raws[0], d.datetime)
        else:
            yield Outcome(d.index, datetime=d.datetime, frames=list(zip(d.frame_numbers, raws)), fps=d.fps,
                          warning=d.warning, datetime_source=d.datetime_source)
