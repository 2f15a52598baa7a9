"""Batch detection for interactive use: detect once, then filter and redraw on every slider move.

Why it exists: a person tunes a confidence threshold, NMS or class filter on a batch of
uploads, and each change must answer in milliseconds. Knows nothing of Streamlit.

* **One network pass per (model, image bytes, NMS).** ``detect_images`` looks each image up in a
  ``DetectionCache`` (LRU, bounded in bytes and entries, thread-safe: a Streamlit server shares it
  between sessions) and runs the network only for the misses, batched. A confidence slider or class
  filter then goes through ``RawDetections.filter`` alone (``render_batch``).
* **One picture per image.** Each image is kept as a JPEG at display size (``display``, encoded
  once); what a slider move changes is the SVG of its boxes (``RenderedImage.svg``), so a page can
  leave the picture alone. The cache holds these few hundred kilobytes per image, not decoded pixels.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, fields
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from PIL import Image

from ssd.viz.drawing import draw_detections
from ssd.viz.overlay import DISPLAY_SIDE, detections_svg, display_jpeg
from ssd.base.errors import SSDError
from ssd.base.lru import BytesLRU


@dataclass
class DetectedImage:
    """One input's outcome: raw detections (unfiltered) and its picture at display size, or an error."""

    name: str
    digest: str
    raw: Any = None                      # RawDetections or None
    error: Optional[str] = None
    display: Optional[bytes] = None      # JPEG, longest side <= DISPLAY_SIDE
    display_size: Tuple[int, int] = (0, 0)
    display_scale: float = 1.0           # display pixels per original pixel
    ran_network: bool = False            # True when this call ran the network for it
    nbytes: int = 0

    @property
    def ok(self) -> bool:
        return self.raw is not None

    @property
    def message(self) -> str:
        """The error as a person reads it: naming the file once (most errors already quote it)."""
        return self.error if self.name in (self.error or "") else f"{self.name}: {self.error}"


def image_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class DetectionCache:
    """LRU of ``DetectedImage`` keyed by (model key, image digest, NMS), bounded in bytes and entries."""

    def __init__(self, max_bytes: int = 96 * 1024 * 1024, max_entries: int = 512) -> None:
        self._lru: BytesLRU[DetectedImage] = BytesLRU(max_bytes, max_entries)
        self.max_bytes, self.max_entries = self._lru.max_bytes, self._lru.max_entries

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, key: Tuple) -> Optional[DetectedImage]:
        return self._lru.get(key)

    def put(self, key: Tuple, item: DetectedImage) -> None:
        self._lru.put(key, item, item.nbytes)

    def clear(self) -> None:
        self._lru.clear()

    def stats(self) -> Dict[str, int]:
        return self._lru.stats()


def _copy(item: DetectedImage, **changes: Any) -> DetectedImage:
    vals = {f.name: getattr(item, f.name) for f in fields(item)}
    vals.update(changes)
    return DetectedImage(**vals)


def detect_images(detector, items: Sequence[Tuple[str, bytes]], nms: float, cache: Optional[DetectionCache] = None,
                  key: Any = "", batch_size: int = 8, display_side: int = DISPLAY_SIDE) -> List[DetectedImage]:
    """Detect on ``(name, bytes)`` items, reusing ``cache``; one bad file never stops the others.

    Every candidate above the detector's floor is kept (``raw``), so any display threshold,
    class filter or count limit is a ``raw.filter(...)`` away. Errors (``ImageError`` and any
    unexpected decoding failure) are cached too, so a corrupt upload is not decoded on every rerun.
    """
    from ssd.data.images import load_image
    from ssd.inference.thresholds import RESULTS_FLOOR

    out: List[Optional[DetectedImage]] = [None] * len(items)
    todo = []   # (index, cache key, loaded image, digest)
    for i, (name, data) in enumerate(items):
        digest = image_digest(data)
        ck = (key, digest, round(float(nms), 4))
        hit = cache.get(ck) if cache is not None else None
        if hit is not None and hit.error and hit.name != name:
            hit = None        # its message names the file as another upload (maybe another session's) named it
        if hit is not None:
            out[i] = _copy(hit, name=name, ran_network=False)
            continue
        t0 = time.perf_counter()
        try:
            li = load_image(data, name, draft_to=max(int(detector.input_size), display_side))
        except SSDError as err:
            out[i] = DetectedImage(name, digest, error=str(err))
        except Exception as err:  # noqa: BLE001 - an upload must never crash the page
            out[i] = DetectedImage(name, digest, error=f"'{name}' could not be read ({type(err).__name__}: {err})")
        if out[i] is not None:
            if cache is not None:
                cache.put(ck, out[i])
            continue
        todo.append((i, ck, li, digest, (time.perf_counter() - t0) * 1000))
    for start in range(0, len(todo), max(1, batch_size)):
        chunk = todo[start:start + batch_size]
        raws = detector.detect_many([li for _, _, li, _, _ in chunk], nms=nms, floor=RESULTS_FLOOR)
        for (i, ck, li, digest, decode_ms), raw in zip(chunk, raws):
            # the image was decoded here, not in detect_many: count its own decode in its time
            raw.timings_ms["load"] = decode_ms
            raw.timings_ms["total"] = sum(v for k, v in raw.timings_ms.items() if k != "total")
            jpeg, size, scale = display_jpeg(li.image, li.original_size, display_side)
            item = DetectedImage(li.name, digest, raw=raw, display=jpeg, display_size=size, display_scale=scale,
                                 ran_network=True, nbytes=len(jpeg) + 64 * len(raw) + 1024)
            if cache is not None:
                cache.put(ck, item)
            out[i] = item
    return [o for o in out if o is not None]


@dataclass
class RenderedImage:
    item: DetectedImage
    shown: Any                       # filtered RawDetections
    svg: str                         # the shown boxes over item.display

    def picture(self) -> Image.Image:
        """The display picture with the boxes drawn into its pixels (a still image, e.g. for a report)."""
        import io

        return draw_detections(Image.open(io.BytesIO(self.item.display)), self.shown, scale=self.item.display_scale)


def render_batch(results: Sequence[DetectedImage], threshold: float, classes: Optional[Iterable[str]] = None,
                 max_detections: Optional[int] = None) -> List[RenderedImage]:
    """Filter every successful result and draw its boxes as SVG: the whole cost of a slider move."""
    out = []
    for r in results:
        if not r.ok:
            continue
        shown = r.raw.filter(threshold, classes=classes, max_detections=max_detections)
        out.append(RenderedImage(r, shown, detections_svg(shown, r.display_scale, r.display_size)))
    return out


def detection_rows(rendered: Sequence[RenderedImage]) -> List[Dict[str, Any]]:
    """One table row per shown detection: image, class, score, box in original pixels."""
    rows = []
    for r in rendered:
        for rec in r.shown.records():
            b = rec["box"]
            rows.append({"image": r.item.name, "class": rec["class"], "score": round(rec["score"], 4),
                         "xmin": round(b[0], 1), "ymin": round(b[1], 1), "xmax": round(b[2], 1),
                         "ymax": round(b[3], 1)})
    return rows


def class_counts(rendered: Sequence[RenderedImage], classes: Sequence[str]) -> Dict[str, int]:
    """Shown detections per class over the batch (every class listed, zeros included)."""
    counts = {c: 0 for c in classes}
    for r in rendered:
        for c, n in r.shown.counts().items():
            counts[c] = counts.get(c, 0) + n
    return counts


def mean_detection_ms(rendered: Sequence[RenderedImage]) -> float:
    """Mean time per image (decode + its share of resize, network and NMS), measured when each
    image was first detected; 0 for an empty batch."""
    times = [r.item.raw.timings_ms.get("total", 0.0) for r in rendered]
    return sum(times) / len(times) if times else 0.0


def annotated_download(rendered: Sequence[RenderedImage], items: Sequence[Tuple[str, bytes]]) -> bytes:
    """The shown detections drawn on the full-resolution originals: one PNG for one image, else a
    ZIP of PNGs. Decoded only when called (a download), never on a slider move.

    ``items`` are the ``(name, bytes)`` that were detected; each picture is found by its bytes'
    digest, not its name: two uploads may share a name (two cameras' ``IMG_0001.JPG``)."""
    from ssd.data.images import load_image
    from ssd.viz.drawing import annotated_png, annotated_zip

    originals = {image_digest(data): data for _, data in items}

    def full(r: RenderedImage) -> Image.Image:
        return load_image(originals[r.item.digest], r.item.name).image

    if len(rendered) == 1:
        return annotated_png(full(rendered[0]), rendered[0].shown)
    return annotated_zip([(r.item.name, full(r), r.shown) for r in rendered])


def results_for_export(results: Sequence[DetectedImage], rendered: Sequence[RenderedImage] = ()):
    """``(file, all detections or None, failure or None)`` rows for ``ssd.camtrap.results`` writers.

    Every image of the batch, with every candidate down to the floor (the writers apply it):
    downloads follow the MegaDetector rules, not what the slider shows, so another tool can
    re-threshold. ``rendered`` is accepted for older callers and not used.
    """
    return [(r.name, r.raw, None) if r.ok else (r.name, None, r.error) for r in results]


def timed(fn, *args, **kwargs) -> Tuple[Any, float]:
    """``(fn(*args, **kwargs), elapsed milliseconds)``."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t0) * 1000.0
