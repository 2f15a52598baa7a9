"""Camera-trap videos: frames sampled every few seconds, one results entry per video.

Why: many traps record clips instead of (or besides) bursts of photos. MegaDetector's
``process_video`` samples a frame every N seconds and writes one entry per video in format 1.4+:
``frame_rate``, ``frames_processed`` (the frame numbers looked at) and a ``frame_number`` on each
detection; Timelapse reads that. Here the sampled frames go through the same batched network as
photos, and the video's detections are those of its best frame (the one whose top detection
scores highest; the first such frame on a tie), so the browser can show that one frame with its
boxes, plus the top detection of each class that frame lacks, from its own frame (as MegaDetector
keeps each class's top detection): a class seen only in another frame is never lost.

Decoding uses OpenCV (``opencv-python``, whose wheels carry FFmpeg): frames are read in order with
``grab`` and only the sampled ones are decoded into pixels (``retrieve``), as MegaDetector does.
Every ``int(every_s * fps)``-th frame is taken (at least every frame), starting with frame 0. The
spacing is kept in seconds by the frames' time stamps: in a clip of variable frame rate (phones,
cameras that slow down at night) counting frames at the average rate looked too often where the
rate was high and left gaps of seconds where it was low; at a constant rate both are the same. At
most ``MAX_FRAMES`` are held per video (about 190 MB at 256²), which covers 16 minutes at one
frame a second. A longer clip is sampled more sparsely, so that its last minutes are looked at too
(stopping at the cap instead lost them without a word): spaced out ahead by the frame count in its
header (read a second time, spaced for the frames decoded, where the header said far more than
the clip held), or thinned as it goes where the header does not say or says too few;
``frames_processed`` says exactly which frames were looked at.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ssd.base.file_cache import per_file_version

# MegaDetector's validator treats these as videos (and wants video fields on them), so all are read as such.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".mpeg", ".mpg", ".flv")
DEFAULT_FRAME_EVERY = 1.0          # seconds between the frames looked at
MAX_FRAMES = 1000
FAILED_FRAME_RATE = -1.0           # MegaDetector's frame rate for a video that could not be read
SEEK_BACK_FRAMES = 4               # how far before a frame's stamp to seek (average-rate frames)
SHORT_TOLERANCE_FRAMES = 2         # frames a header may overstate without a warning (``cut_short``)
STAMP_TOLERANCE_MS = 0.01          # two frames' stamps closer than this are the same frame


def is_video(name: str) -> bool:
    return os.path.splitext(str(name))[1].lower() in VIDEO_EXTENSIONS


@dataclass
class VideoFrames:
    """The sampled frames of one video: numbers, network-sized RGB pixels, and what the clip is."""

    numbers: List[int] = field(default_factory=list)
    pixels: Optional[np.ndarray] = None           # (n, S, S, 3) uint8
    fps: float = 0.0
    size: Tuple[int, int] = (0, 0)                # (width, height)
    decoded: int = 0                              # frames the clip gave, sampled or not
    cut_short: Optional[str] = None               # why it ended before its header said (None: it did not)


def frame_step(every_s: float, fps: float, count: float = 0) -> int:
    """Frames between two sampled ones: ``int(every_s * fps)``, at least 1 (MegaDetector's rule), and
    wide enough that ``MAX_FRAMES`` span a clip of ``count`` frames (0 or less: length unknown)."""
    step = max(1, int(float(every_s) * float(fps)))
    count = float(count) if math.isfinite(float(count)) else 0.0
    return max(step, math.ceil(count / MAX_FRAMES)) if count > 0 else step


def _open(path: str):
    """An OpenCV capture that turns frames upright by the clip's rotation metadata, as players do.

    Why: phones store portrait clips landscape with a rotation in the track header; OpenCV's wheels
    leave that off, so the network saw the animal sideways and sizes and boxes did not match the
    picture every viewer shows (photos are turned by their EXIF orientation the same way). FFmpeg's
    own log lines are silenced (set before the first capture; ``OPENCV_FFMPEG_LOGLEVEL`` overrides):
    they went to stderr amid the progress, and the entry's ``failure`` says what went wrong."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    cap = cv2.VideoCapture(path)
    if cap.isOpened():
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


FrameProgress = Callable[[int, int], None]     # (frames looked at so far, frames to look at; 0: not known)


def sample_frames(path: str, name: str, size: int, every_s: float = DEFAULT_FRAME_EVERY,
                  on_frame: Optional[FrameProgress] = None) -> VideoFrames:
    """Frames 0, k, 2k… (by time) of the video at ``path`` resized to ``size``²; ``ValueError`` naming the problem.

    ``on_frame`` is told after each frame looked at (a long clip decodes for minutes: the run's
    progress moves within it); the total is the header's frame count over the step."""
    import cv2

    if os.path.isfile(path) and os.path.getsize(path) == 0:     # as a 0-byte photo is told (card full, power lost)
        raise ValueError(f"'{name}' is empty (0 bytes)")
    cap = _open(path)
    try:
        if not cap.isOpened():
            raise ValueError(f"'{name}' could not be opened as a video (not a video, or a damaged one: "
                             "e.g. a recording cut off before the camera finished the file)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"'{name}' has no frame rate (a damaged or unsupported video)")
        out = VideoFrames(fps=round(fps, 3))
        stated = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        step = frame_step(every_s, fps, stated)
        planned = math.ceil(stated / step) if math.isfinite(stated) and stated > 0 else 0
        frames = _sampled(cap, out, size, fps, step / fps, on_frame, planned)
        out.cut_short = cut_short(out.decoded, stated, fps)
        if out.cut_short and step > frame_step(every_s, fps, out.decoded):
            # the header's length spread the samples over frames that are not there (a clip of
            # 10 s said to last hours got frame 0 alone): read again, spaced for what was decoded
            cap.release()
            cap = _open(path)
            warning, decoded, out = out.cut_short, out.decoded, VideoFrames(fps=out.fps)
            step = frame_step(every_s, fps, decoded)
            frames = _sampled(cap, out, size, fps, step / fps, on_frame, math.ceil(decoded / step))
            out.cut_short = warning
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"'{name}' has no frame that could be decoded")
    out.pixels = np.stack(frames)
    return out


def _sampled(cap, out: VideoFrames, size: int, fps: float, every_s: float,
             on_frame: Optional[FrameProgress] = None, planned: int = 0) -> List[np.ndarray]:
    """Decode the frame nearest each multiple of ``every_s`` seconds (the first within half its gap to
    the frame before), noting numbers and size in ``out``; grabbed frames are never kept. Past
    ``MAX_FRAMES`` (a clip longer than its header said) every other frame held is let go and the
    spacing doubled, so memory stays bounded and the clip is still looked at to its end."""
    import cv2

    frames: List[np.ndarray] = []
    k, at, n = 0, -1.0 / fps, 0                   # k: the multiple of every_s looked for next
    while cap.grab():
        before, at = at, _frame_time(cap, fps, at)
        slack = 0.5 * (at - before)
        if at >= k * every_s - slack:
            ok, bgr = cap.retrieve()
            if ok and bgr is not None:
                if not frames:
                    out.size = (int(bgr.shape[1]), int(bgr.shape[0]))
                small = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)   # then the channel swap:
                frames.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))                  # no full-size copy
                out.numbers.append(n)
                if on_frame is not None:
                    on_frame(len(frames), max(planned, len(frames)))
            while k * every_s - slack <= at:
                k += 1
            if len(frames) > MAX_FRAMES:
                del frames[1::2], out.numbers[1::2]
                every_s, k = 2 * every_s, (k + 1) // 2
        n += 1
    out.decoded = n
    return frames


def cut_short(decoded: int, stated: float, fps: float) -> Optional[str]:
    """A warning when decoding stopped well before the frame count in the clip's header (a file cut
    off while its header, written first, survived), else None.

    Why a tolerance (``SHORT_TOLERANCE_FRAMES``, or 1% of the count when larger): only some
    containers store a frame count; elsewhere FFmpeg works it out from the duration × average
    rate, which rounds and counts the last frame's display time, and encoders may drop a last
    frame. A header one or two frames over is therefore normal, and warning on it would bury the
    clips really cut short, which lack far more.
    """
    if not math.isfinite(stated) or stated <= 0 or decoded <= 0:
        return None
    if stated - decoded <= max(SHORT_TOLERANCE_FRAMES, 0.01 * stated):
        return None
    return (f"cut short: decoding stopped after {decoded} of the {int(stated)} frames its header lists "
            f"(about {decoded / fps:.1f} s of {stated / fps:.1f} s); the detections are from the frames read")


def _frame_time(cap, fps: float, previous: float) -> float:
    """Seconds of the frame just grabbed: its time stamp, or one frame after ``previous`` where the
    stamp is missing or does not move on (some AVIs carry none)."""
    import cv2

    t = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
    return t if math.isfinite(t) and t > previous else previous + 1.0 / fps


def read_frame(path: str, number: int):
    """Frame ``number`` of a video, counted as a sequential decode counts (``sample_frames``, so a
    detection's ``frame_number``), as a PIL image for the browser; None when it cannot be read.

    Why not ``CAP_PROP_POS_FRAMES``: OpenCV turns the number into a time by the AVERAGE frame rate,
    so in a clip of variable rate it showed (and cropped) another picture than the one detected.
    Instead the frame's own time stamp is looked up (``frame_times``: the packets read without
    decoding), the capture seeks a little before it and decodes forward to that exact stamp. Where
    the stamps cannot be trusted (missing, repeated) frames are decoded from the start and counted.
    """
    import cv2
    from PIL import Image

    number = int(number)
    if number < 0:
        return None
    times = frame_times(path)
    bgr = _frame_by_time(path, times[number]) if times is not None and number < len(times) else None
    if bgr is None and (times is None or number < len(times)):
        bgr = _frame_by_count(path, number)
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)) if bgr is not None else None


@per_file_version(maxsize=64, missing=None)
def frame_times(path: str, size: int) -> Optional[Tuple[float, ...]]:
    """Every frame's time stamp (ms) in display order, from the packets alone (OpenCV's raw mode:
    no decoding: about 0.05 s for a minute of 720p); None when they are missing or repeat.
    Kept per file version: the browser asks for frame after frame."""
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened() or not cap.set(cv2.CAP_PROP_FORMAT, -1):
            return None
        stamps = []
        while cap.grab():
            stamps.append(float(cap.get(cv2.CAP_PROP_POS_MSEC)))
    finally:
        cap.release()
    stamps.sort()                                 # packets come in decoding order (B-frames)
    ok = stamps and all(math.isfinite(t) for t in stamps) and all(b > a for a, b in zip(stamps, stamps[1:]))
    return tuple(stamps) if ok else None


def _frame_by_time(path: str, ms: float):
    """The decoded frame stamped ``ms``: a seek to somewhat before it (OpenCV lands on a frame near
    there by the average rate), then frames decoded forward; None when the seek overshot."""
    import cv2

    cap = _open(path)
    try:
        if not cap.isOpened():
            return None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        back = SEEK_BACK_FRAMES * 1000.0 / fps if math.isfinite(fps) and fps > 0 else ms
        if ms - back > 0:
            cap.set(cv2.CAP_PROP_POS_MSEC, ms - back)
        while cap.grab():
            t = float(cap.get(cv2.CAP_PROP_POS_MSEC))
            if abs(t - ms) < STAMP_TOLERANCE_MS:
                ok, bgr = cap.retrieve()
                return bgr if ok else None
            if t > ms:
                return None
    finally:
        cap.release()
    return None


def _frame_by_count(path: str, number: int):
    """Frame ``number`` by decoding from the start (``grab`` only, pixels for that frame alone)."""
    cap = _open(path)
    try:
        if not cap.isOpened():
            return None
        for _ in range(number + 1):
            if not cap.grab():
                return None
        ok, bgr = cap.retrieve()
    finally:
        cap.release()
    return bgr if ok else None


def shown_frame(entry: Dict[str, Any]) -> int:
    """The frame a video entry's detections come from (its first processed frame when it has none).

    ``frames_processed`` is another tool's field, checked for nesting only: anything but a list
    of numbers means frame 0 (a dict there raised ``KeyError`` in the page and ``results draw``)."""
    for d in entry.get("detections") or []:
        if isinstance(d, dict) and isinstance(d.get("frame_number"), int):
            return int(d["frame_number"])
    frames = entry.get("frames_processed")
    first = frames[0] if isinstance(frames, list) and frames else 0
    return int(first) if isinstance(first, int) else 0


def best_frame(frames: Sequence[Tuple[int, Any]]) -> int:
    """Position in ``frames`` ((number, RawDetections) pairs) of the one whose top score is highest."""
    best, top = 0, -1.0
    for i, (_, raw) in enumerate(frames):
        score = float(np.max(raw.scores)) if len(raw.scores) else 0.0
        if score > top:
            best, top = i, score
    return best


def video_entry(file: str, frames: Optional[Sequence[Tuple[int, Any]]], fps: float, failure: Optional[str],
                floor: float, max_detections: int, warning: Optional[str] = None,
                datetime: Optional[str] = None, datetime_source: Optional[str] = None) -> Dict[str, Any]:
    """One video's results entry (format 1.6): the best frame's detections, each with its ``frame_number``.

    ``datetime`` is the recording time the container carries (``ssd.data.video_time``), in a photo's
    EXIF form, so episodes and exports treat clips and photos alike; ``datetime_source`` (``mvhd``,
    ``IDIT``…) says which field gave it, as a video has several of differing trust. A clip without
    one gets neither: its modification time (often a copy's) is not written as its recording time.

    ``warning`` (a clip cut short) goes into a field of its own, ``"warning"``: the format's
    ``failure`` demands ``"detections": null`` (MegaDetector's validator rejects both), which would
    throw away what the frames read did show, and MegaDetector itself records frames it could not
    read by leaving them out of ``frames_processed``, silently. Fields beyond the format's are
    allowed by its validator and passed over by Timelapse, while scripts and this app read it."""
    from ssd.camtrap.megadetector import image_entry

    if not frames:
        entry = image_entry(file, None, failure or "no frame could be decoded")
        entry.update(frame_rate=FAILED_FRAME_RATE, frames_processed=[])
        return entry
    best = best_frame(frames)
    number, raw = frames[best]
    entry = image_entry(file, raw, None, floor, datetime, max_detections)
    if datetime and datetime_source:
        entry["datetime_source"] = str(datetime_source)
    for d in entry["detections"]:
        d["frame_number"] = int(number)
    others = _other_classes(file, frames, best, {d["category"] for d in entry["detections"]}, floor)
    if others:
        merged = entry["detections"] + others
        merged.sort(key=lambda d: -d["conf"])     # stable: the best frame's detections stay first on a tie
        entry["detections"] = merged[:max_detections]
    entry["frame_rate"] = float(fps)
    entry["frames_processed"] = [int(n) for n, _ in frames]
    if warning:
        entry["warning"] = str(warning)
    return entry


def _other_classes(file: str, frames: Sequence[Tuple[int, Any]], best: int, seen: set,
                   floor: float) -> List[Dict[str, Any]]:
    """The top detection of each class that the best frame lacks, from the frame where it scores
    highest, with that ``frame_number``.

    Why: a clip with a deer in one frame and a person in another kept only the deer's frame, so the
    person was lost to the summary, the sort and the exports (MegaDetector's own conversion of frames
    to a video keeps each class's top detection, each with its frame). The best frame's detections
    are all kept besides, so the browser still shows one frame with every box seen in it.
    """
    from ssd.camtrap.megadetector import image_entry

    top: Dict[str, Dict[str, Any]] = {}
    for i, (number, raw) in enumerate(frames):
        if i == best:
            continue
        for d in image_entry(file, raw, None, floor)["detections"]:
            if d["category"] not in seen and d["conf"] > top.get(d["category"], {}).get("conf", -1.0):
                top[d["category"]] = dict(d, frame_number=int(number))
    return list(top.values())
