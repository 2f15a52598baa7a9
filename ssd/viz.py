"""Pictures and small analyses behind the app: boxes on images, anchor figures, the SSD diagram,
sample images, the detection cache. Knows nothing of Streamlit (the pages only wire widgets here).

Why things are done this way:

* **Draw on a preview, in original coordinates.** Detection boxes are in the original image's
  pixels. The app keeps a preview (at most ``PREVIEW_SIDE`` px) of each decoded image and draws
  boxes scaled by ``preview_scale``, so a slider move costs a copy and a few rectangles instead
  of decoding a 24-megapixel photo again. Full-resolution annotation (``annotated_png``) is only
  made when a person downloads it.
* **One network pass per (model, image bytes, NMS).** ``detect_images`` looks each image up in a
  ``DetectionCache`` (LRU, bounded in bytes, thread-safe: a Streamlit server shares it between
  sessions) and runs the network only for the misses, batched. A confidence slider or class
  filter then goes through ``RawDetections.filter`` alone.
* **Figures are ``matplotlib.figure.Figure`` objects** built without ``pyplot``, so a
  long-running server never accumulates figures in pyplot's global registry.
* **Paths come from the environment** (``SSD_MODELS_DIR``, ``SSD_DATA_DIR``) at call time, so
  tests point the app at temporary folders.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .anchors import AnchorConfig, all_anchors, anchor_labels, box_iou, cell_centres
from .errors import SSDError
from .fsutil import atomic_write_bytes, atomic_write_json

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREVIEW_SIDE = 1024          # longest side of the cached preview of an uploaded image
DISPLAY_MIN_SIDE = 512       # small images (the 256 px samples) are enlarged to this for display
SAMPLES_DIR = ".samples"     # inside the data folder: rendered synthetic validation images

# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def models_dir() -> str:
    """Where saved models live: ``$SSD_MODELS_DIR`` or the repository's ``models/``."""
    return os.path.abspath(os.environ.get("SSD_MODELS_DIR") or os.path.join(REPO_ROOT, "models"))


def data_dir() -> str:
    """Where datasets live: ``$SSD_DATA_DIR`` or the repository's ``data/`` (gitignored)."""
    return os.path.abspath(os.environ.get("SSD_DATA_DIR") or os.path.join(REPO_ROOT, "data"))


def model_key(model_path: str) -> Tuple[str, float]:
    """(path, mtime of meta.json and params): changes when a model is retrained in place."""
    from .store import META_FILE, PARAMS_FILE

    stamps = []
    for f in (META_FILE, PARAMS_FILE):
        try:
            stamps.append(os.stat(os.path.join(model_path, f)).st_mtime)
        except OSError:
            stamps.append(0.0)
    return os.path.abspath(model_path), max(stamps)


# --------------------------------------------------------------------------------------------
# colours and fonts
# --------------------------------------------------------------------------------------------

# Distinct, saturated colours (Tableau 10 + a second set); class i always gets PALETTE[i % n].
PALETTE: List[Tuple[int, int, int]] = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (0, 82, 204), (255, 196, 0), (0, 150, 100), (204, 0, 102), (102, 51, 0),
    (0, 204, 255), (153, 0, 255), (255, 80, 80), (80, 200, 80), (0, 0, 0),
]


def class_colour(class_id: int) -> Tuple[int, int, int]:
    """Stable colour of a class (its index in the model's class list)."""
    return PALETTE[int(class_id) % len(PALETTE)]


def class_colour_hex(class_id: int) -> str:
    return "#%02x%02x%02x" % class_colour(class_id)


def _text_colour(bg: Tuple[int, int, int]) -> Tuple[int, int, int]:
    r, g, b = bg
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


@lru_cache(maxsize=64)
def _font(size: int):
    try:
        return ImageFont.load_default(size=max(8, int(size)))
    except (TypeError, OSError, ImportError):  # Pillow without FreeType
        return ImageFont.load_default()


# --------------------------------------------------------------------------------------------
# drawing detections
# --------------------------------------------------------------------------------------------


def draw_detections(image: Image.Image, det, scale: float = 1.0, line_width: Optional[int] = None,
                    font_size: Optional[int] = None) -> Image.Image:
    """A copy of ``image`` with ``det``'s boxes: one colour per class, label and score on top.

    ``det.boxes`` are in original pixels; ``scale`` maps them onto ``image`` (a preview of the
    original has ``scale = preview.width / original width``). Lower scores are drawn first so
    the most confident box ends on top.
    """
    img = image.convert("RGB") if image.mode != "RGB" else image.copy()
    if det is None or len(det) == 0:
        return img
    w, h = img.size
    side = max(w, h)
    lw = line_width or max(2, int(round(side / 320)))
    font = _font(font_size or max(11, int(round(side / 42))))
    draw = ImageDraw.Draw(img)
    for i in range(len(det) - 1, -1, -1):
        cid = int(det.class_ids[i])
        x0, y0, x1, y1 = (float(v) * scale for v in det.boxes[i])
        x0, x1 = max(0.0, min(x0, w - 1)), max(0.0, min(x1, w - 1))
        y0, y1 = max(0.0, min(y0, h - 1)), max(0.0, min(y1, h - 1))
        colour = class_colour(cid)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=lw)
        name = det.classes[cid] if 0 <= cid < len(det.classes) else str(cid)
        text = f"{name} {float(det.scores[i]):.2f}"
        l, t, r, b = draw.textbbox((0, 0), text, font=font)
        tw, th = r - l, b - t
        pad = max(1, lw // 2 + 1)
        ty = y0 - th - 2 * pad if y0 - th - 2 * pad >= 0 else y0 + lw   # above the box, else inside
        tx = min(x0, max(0.0, w - tw - 2 * pad))
        draw.rectangle([tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad], fill=colour)
        draw.text((tx + pad - l, ty + pad - t), text, fill=_text_colour(colour), font=font)
    return img


def display_scale(size: Tuple[int, int], max_side: int = PREVIEW_SIDE, min_side: int = DISPLAY_MIN_SIDE) -> float:
    """Factor that brings an image's longest side within ``[min_side, max_side]``."""
    side = max(size)
    if side > max_side:
        return max_side / side
    if side < min_side:
        return min(min_side / side, 4.0)
    return 1.0


def make_preview(image: Image.Image, original_size: Tuple[int, int], max_side: int = PREVIEW_SIDE
                 ) -> Tuple[Image.Image, float]:
    """A copy of ``image`` at most ``max_side`` px, and its scale relative to ``original_size``."""
    s = min(1.0, max_side / max(image.size))
    img = image if s >= 1.0 else image.resize((max(1, round(image.width * s)), max(1, round(image.height * s))),
                                               Image.BILINEAR)
    if img is image:
        img = image.copy()
    return img, img.width / float(original_size[0])


def render_detections(preview: Image.Image, preview_scale: float, det, min_side: int = DISPLAY_MIN_SIDE
                      ) -> Image.Image:
    """What the Detect page shows: the preview (small ones enlarged) with ``det`` drawn on it."""
    up = display_scale(preview.size, max_side=max(preview.size), min_side=min_side)
    img = preview
    if up > 1.0:
        img = preview.resize((round(preview.width * up), round(preview.height * up)), Image.BILINEAR)
    return draw_detections(img, det, scale=preview_scale * up)


def annotated_png(image: Image.Image, det) -> bytes:
    """The original-resolution image with boxes, as PNG bytes (for downloads)."""
    buf = io.BytesIO()
    draw_detections(image, det).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def annotated_name(name: str) -> str:
    stem = os.path.splitext(os.path.basename(name))[0] or "image"
    return f"{stem}_detections.png"


def annotated_zip(items: Sequence[Tuple[str, Image.Image, Any]]) -> bytes:
    """ZIP of ``annotated_png`` for each ``(name, full image, detections)``; names made unique."""
    buf = io.BytesIO()
    used: Dict[str, int] = {}
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, image, det in items:
            arc = annotated_name(name)
            if arc in used:
                used[arc] += 1
                stem, ext = os.path.splitext(arc)
                arc = f"{stem}_{used[arc]}{ext}"
            else:
                used[arc] = 0
            zf.writestr(arc, annotated_png(image, det))
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# detection with a cache (the slider never runs the network)
# --------------------------------------------------------------------------------------------


@dataclass
class DetectedImage:
    """One input's outcome: raw detections (unfiltered) and a preview, or an error message."""

    name: str
    digest: str
    raw: Any = None                      # RawDetections or None
    error: Optional[str] = None
    preview: Optional[Image.Image] = None
    preview_scale: float = 1.0
    ran_network: bool = False            # True when this call ran the network for it
    nbytes: int = 0

    @property
    def ok(self) -> bool:
        return self.raw is not None


def image_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class DetectionCache:
    """LRU of ``DetectedImage`` keyed by (model key, image digest, NMS), bounded in bytes."""

    def __init__(self, max_bytes: int = 384 * 1024 * 1024, max_entries: int = 512) -> None:
        self.max_bytes, self.max_entries = int(max_bytes), int(max_entries)
        self._items: "OrderedDict[Tuple, DetectedImage]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Tuple) -> Optional[DetectedImage]:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: Tuple, item: DetectedImage) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = item
            self._bytes += item.nbytes
            while self._items and (self._bytes > self.max_bytes or len(self._items) > self.max_entries):
                _, ev = self._items.popitem(last=False)
                self._bytes -= ev.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def _copy(item: DetectedImage, **changes: Any) -> DetectedImage:
    vals = {f.name: getattr(item, f.name) for f in fields(item)}
    vals.update(changes)
    return DetectedImage(**vals)


def detect_images(detector, items: Sequence[Tuple[str, bytes]], nms: float, cache: Optional[DetectionCache] = None,
                  key: Any = "", batch_size: int = 8, preview_side: int = PREVIEW_SIDE) -> List[DetectedImage]:
    """Detect on ``(name, bytes)`` items, reusing ``cache``; one bad file never stops the others.

    Every candidate above the detector's floor is kept (``raw``), so any display threshold,
    class filter or count limit is a ``raw.filter(...)`` away. Errors (``ImageError`` and any
    unexpected decoding failure) are cached too, so a corrupt upload is not decoded on every rerun.
    """
    from .detection import DEFAULT_FLOOR
    from .images import load_image

    out: List[Optional[DetectedImage]] = [None] * len(items)
    todo = []   # (index, cache key, loaded image, digest)
    for i, (name, data) in enumerate(items):
        digest = image_digest(data)
        ck = (key, digest, round(float(nms), 4))
        hit = cache.get(ck) if cache is not None else None
        if hit is not None:
            out[i] = _copy(hit, name=name, ran_network=False)
            continue
        try:
            li = load_image(data, name, draft_to=max(int(detector.input_size), preview_side))
        except SSDError as err:
            out[i] = DetectedImage(name, digest, error=str(err))
        except Exception as err:  # noqa: BLE001 - an upload must never crash the page
            out[i] = DetectedImage(name, digest, error=f"'{name}' could not be read ({type(err).__name__}: {err})")
        if out[i] is not None:
            if cache is not None:
                cache.put(ck, out[i])
            continue
        todo.append((i, ck, li, digest))
    for start in range(0, len(todo), max(1, batch_size)):
        chunk = todo[start:start + batch_size]
        raws = detector.detect_many([li for _, _, li, _ in chunk], nms=nms, floor=DEFAULT_FLOOR)
        for (i, ck, li, digest), raw in zip(chunk, raws):
            preview, scale = make_preview(li.image, li.original_size, preview_side)
            item = DetectedImage(li.name, digest, raw=raw, preview=preview, preview_scale=scale,
                                 ran_network=True, nbytes=preview.width * preview.height * 3 + 64 * len(raw) + 1024)
            if cache is not None:
                cache.put(ck, item)
            out[i] = item
    return [o for o in out if o is not None]


@dataclass
class RenderedImage:
    item: DetectedImage
    shown: Any                       # filtered RawDetections
    picture: Image.Image             # preview with boxes


def render_batch(results: Sequence[DetectedImage], threshold: float, classes: Optional[Iterable[str]] = None,
                 max_detections: Optional[int] = None) -> List[RenderedImage]:
    """Filter every successful result and draw it: the whole cost of a slider move."""
    out = []
    for r in results:
        if not r.ok:
            continue
        shown = r.raw.filter(threshold, classes=classes, max_detections=max_detections)
        out.append(RenderedImage(r, shown, render_detections(r.preview, r.preview_scale, shown)))
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


def results_for_export(results: Sequence[DetectedImage], rendered: Sequence[RenderedImage]):
    """``(file, shown detections or None, failure or None)`` rows for ``ssd.results`` writers."""
    shown = {id(r.item): r.shown for r in rendered}
    by_name = {r.item.name: r.shown for r in rendered}
    rows = []
    for r in results:
        if r.ok:
            rows.append((r.name, shown.get(id(r), by_name.get(r.name)), None))
        else:
            rows.append((r.name, None, r.error))
    return rows


# --------------------------------------------------------------------------------------------
# sample images (the synthetic validation set, rendered on demand)
# --------------------------------------------------------------------------------------------


@dataclass
class Sample:
    name: str
    data: bytes                      # PNG bytes, as an upload would give
    label: np.ndarray                # (K, 5) [class, xmin, ymin, xmax, ymax] normalized

    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.data)).convert("RGB")

    def array(self) -> np.ndarray:
        return np.asarray(self.image())


def sample_images(n: int = 6, seed: int = 0, root: Optional[str] = None) -> List[Sample]:
    """The first ``n`` images of the synthetic Pikachu validation split for ``seed``.

    ``ssd.synth.render_example`` is deterministic, so these are exactly the validation images
    ``python -m ssd data synth --seed SEED`` writes. They are cached as PNGs under
    ``<data dir>/.samples/`` (about 10 ms each to render the first time); an unwritable data
    folder only means they are rendered again next time.
    """
    from .synth import render_example

    folder = os.path.join(root or data_dir(), SAMPLES_DIR, f"synth-val-seed{int(seed)}")
    labels_path = os.path.join(folder, "labels.json")
    labels: Dict[str, Any] = {}
    try:
        with open(labels_path, encoding="utf-8") as fh:
            labels = json.load(fh)
    except (OSError, ValueError):
        labels = {}
    out: List[Sample] = []
    changed = False
    for i in range(int(n)):
        name = f"pikachu_val_{i:03d}.png"
        path = os.path.join(folder, name)
        data = None
        if name in labels:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                data = None
        if data is None:
            img, lab = render_example(seed, i, "val")
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            data = buf.getvalue()
            labels[name] = lab.tolist()
            changed = True
            try:
                os.makedirs(folder, exist_ok=True)
                atomic_write_bytes(path, data)
            except OSError:
                pass
        out.append(Sample(name, data, np.asarray(labels[name], dtype=np.float32).reshape(-1, 5)))
    if changed:
        try:
            atomic_write_json(labels_path, labels)
        except OSError:
            pass
    return out


def sample_labels(n: int = 64, seed: int = 0) -> List[np.ndarray]:
    """Ground truth of the first ``n`` synthetic validation images (for anchor coverage)."""
    return [s.label for s in sample_images(n, seed)]


# --------------------------------------------------------------------------------------------
# datasets and runs (what the Train page lists)
# --------------------------------------------------------------------------------------------


def dataset_folders(root: Optional[str] = None) -> List[str]:
    """Sub-folders of the data folder that might be datasets (hidden ones skipped), sorted."""
    root = root or data_dir()
    if not os.path.isdir(root):
        return []
    return [os.path.join(root, d) for d in sorted(os.listdir(root))
            if not d.startswith(".") and os.path.isdir(os.path.join(root, d))]


def folder_stamp(path: str) -> float:
    """Newest mtime among a folder and its direct children (cache key for dataset summaries)."""
    try:
        stamps = [os.stat(path).st_mtime]
        with os.scandir(path) as it:
            for e in it:
                try:
                    stamps.append(e.stat().st_mtime)
                except OSError:
                    pass
        return max(stamps)
    except OSError:
        return 0.0


def run_folders(models_root: Optional[str] = None) -> List[str]:
    """Model folders that hold a training run (an event log), newest activity first."""
    from .events import EVENTS_FILE

    root = models_root or models_dir()
    found = []
    if os.path.isdir(root):
        for d in os.listdir(root):
            p = os.path.join(root, d, EVENTS_FILE)
            if not d.startswith(".") and os.path.isfile(p):
                found.append((os.stat(p).st_mtime, os.path.join(root, d)))
    return [p for _, p in sorted(found, reverse=True)]


def can_resume(run_dir: str) -> bool:
    from .training import CHECKPOINT_DIR

    return os.path.isfile(os.path.join(run_dir, CHECKPOINT_DIR, "checkpoint.json"))


def resume_config(run_dir: str):
    """The ``TrainConfig`` a run was started with, set to resume (from its meta.json)."""
    from .store import META_FILE
    from .training import TrainConfig

    try:
        with open(os.path.join(run_dir, META_FILE), encoding="utf-8") as fh:
            args = json.load(fh)["training"]["args"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SSDError(f"{run_dir}: cannot read the run's training arguments ({err})") from None
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in args.items() if k in known})
    cfg.resume = True
    cfg.out = run_dir
    return cfg


def valid_model_name(name: str) -> Optional[str]:
    """None when ``name`` can be a model folder name, else the reason it cannot."""
    import re

    if not name:
        return "give the model a name"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        return "use letters, digits, '.', '_' or '-' (at most 64 characters, not starting with a symbol)"
    return None


def progress_fraction(progress: Optional[Dict[str, Any]]) -> float:
    if not progress:
        return 0.0
    total = progress.get("total_iters") or 0
    return float(min(1.0, max(0.0, progress.get("global_iter", 0) / total))) if total else 0.0


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def model_overview(meta: Dict[str, Any]) -> List[Dict[str, str]]:
    """Key facts of a saved model as (field, value) rows."""
    anchors = meta.get("anchors") or {}
    ds = meta.get("dataset") or {}
    tr = meta.get("training") or {}
    best = (meta.get("metrics") or {}).get("best") or {}
    hist = (meta.get("metrics") or {}).get("history") or []
    args = tr.get("args") or {}
    rows = [
        ("architecture", meta.get("arch", "?")),
        ("classes", ", ".join(map(str, meta.get("classes", [])))),
        ("input size", f"{meta.get('input_size')}×{meta.get('input_size')}"),
        ("anchors", str(anchors.get("total", "?"))),
        ("status", str(meta.get("status", "?"))),
        ("epochs done", f"{len(hist)} of {args.get('epochs', '?')}"),
        ("best epoch", f"{best.get('epoch', '–')} (val mAP {best['val_map']:.4f})" if isinstance(
            best.get("val_map"), (int, float)) else str(best.get("epoch", "–"))),
        ("dataset", f"{ds.get('kind', '?')} at {ds.get('path', '?')} ({ds.get('num_train', '?')} train / "
                    f"{ds.get('num_val', '?')} val)"),
        ("trained on", str(tr.get("device", "?"))),
        ("saved", str(meta.get("finished") or meta.get("saved") or "?")),
        ("default model", "yes" if meta.get("default") else "no"),
        ("command", tr.get("command") or "(started from the app)"),
    ]
    return [{"field": k, "value": v} for k, v in rows]


# --------------------------------------------------------------------------------------------
# anchors
# --------------------------------------------------------------------------------------------


def parse_groups(text: str) -> List[List[float]]:
    """'0.2, 0.272; 0.37, 0.447' → [[0.2, 0.272], [0.37, 0.447]]; ``ValueError`` with the culprit."""
    groups = []
    for grp in str(text).split(";"):
        if not grp.strip():
            continue
        vals = []
        for v in grp.replace(" ", ",").split(","):
            if not v.strip():
                continue
            try:
                vals.append(float(v))
            except ValueError:
                raise ValueError(f"{v.strip()!r} is not a number (write groups like '0.2, 0.272; 0.37, 0.447')") from None
        groups.append(vals)
    if not groups:
        raise ValueError("no values given")
    return groups


def format_groups(groups: Sequence[Sequence[float]]) -> str:
    return "; ".join(", ".join(f"{v:g}" for v in g) for g in groups)


def anchor_config(arch: str = "tiny", input_size: int = 256, sizes: Optional[Sequence[Sequence[float]]] = None,
                  ratios: Optional[Sequence[Sequence[float]]] = None) -> AnchorConfig:
    """The network's anchor configuration with its feature maps (block built, not initialized).

    One ratio group is applied to every scale, as the CLI does. Raises ``ValueError`` for a
    configuration the network cannot have (counts differ, non-positive values, input too small).
    """
    from .model import build_model

    if ratios is not None and sizes is not None and len(ratios) == 1 and len(sizes) > 1:
        ratios = [list(ratios[0]) for _ in sizes]
    if sizes is not None and ratios is not None and len(sizes) != len(ratios):
        raise ValueError(f"{len(sizes)} size groups but {len(ratios)} ratio groups: give one ratio group per "
                         "scale, or a single group for all")
    if int(input_size) < 64 or int(input_size) % 8:
        raise ValueError("input size must be a multiple of 8 and at least 64")
    net = build_model(arch, 1, int(input_size), sizes=sizes, ratios=ratios)
    cfg = net.anchor_config
    return AnchorConfig(sizes=[list(s) for s in cfg.sizes], ratios=[list(r) for r in cfg.ratios],
                        feature_maps=list(cfg.feature_maps))


def anchor_table(config: AnchorConfig, input_size: int) -> List[Dict[str, Any]]:
    """One row per scale: feature map, cell size in input pixels, sizes, ratios, anchors."""
    rows = []
    for i, ((h, w), n) in enumerate(zip(config.feature_maps, config.counts())):
        rows.append({"scale": i, "feature map": f"{h}×{w}", "cell (px)": round(input_size / max(h, 1), 1),
                     "sizes": format_groups([config.sizes[i]]), "ratios": format_groups([config.ratios[i]]),
                     "anchors per cell": config.anchors_per_cell(i), "anchors": int(n)})
    return rows


@dataclass
class AnchorSet:
    """Every anchor of a network and its layout: feature maps × cells × anchors per cell.

    One shape for TinySSD (``MultiBoxPrior``, described by sizes and ratios) and GluonCV zoo
    SSDs (their own anchor generators), so the Anchors page draws either the same way.
    ``anchors`` are normalized corners in the order the heads predict them: feature map by
    feature map, row-major over cells, then the cell's anchors.
    """

    feature_maps: List[Tuple[int, int]]
    per_cell: List[int]
    cell_labels: List[List[str]]          # per feature map: a label per anchor of a cell
    anchors: np.ndarray                   # (N, 4)
    input_size: int
    rows: List[Dict[str, Any]]            # per feature map, for the page's table
    kind: str = "tiny"

    @property
    def num_scales(self) -> int:
        return len(self.feature_maps)

    def anchors_per_cell(self, scale: int) -> int:
        return int(self.per_cell[scale])

    def counts(self) -> List[int]:
        return [int(h * w * a) for (h, w), a in zip(self.feature_maps, self.per_cell)]

    def total(self) -> int:
        return int(sum(self.counts()))

    def cell(self, scale: int, row: int, col: int) -> np.ndarray:
        """The ``(A, 4)`` anchors of cell (row, col) of feature map ``scale``."""
        h, w = self.feature_maps[scale]
        if not (0 <= row < h and 0 <= col < w):
            raise IndexError(f"cell ({row}, {col}) is outside the {h}x{w} feature map")
        a = self.per_cell[scale]
        start = sum(self.counts()[:scale]) + (row * w + col) * a
        return self.anchors[start:start + a]


def anchor_set(config: AnchorConfig, input_size: int) -> AnchorSet:
    """TinySSD's anchors (MultiBoxPrior, exactly what the network makes) as an ``AnchorSet``."""
    labels = [[f"s={s:g}, r={r:g}" for s, r in anchor_labels(sz, rt)] for sz, rt in zip(config.sizes, config.ratios)]
    return AnchorSet(list(config.feature_maps), [config.anchors_per_cell(i) for i in range(config.num_scales)],
                     labels, all_anchors(config), int(input_size), anchor_table(config, input_size), "tiny")


def zoo_anchor_set(meta: Dict[str, Any]) -> AnchorSet:
    """A GluonCV zoo SSD's anchors (from its anchor generators, no forward pass)."""
    from .zoo import zoo_anchor_info, zoo_anchors

    size = int(meta.get("input_size") or 0) or None
    info = zoo_anchor_info(meta, size)
    size = int(size or round(info[0]["steps"] * info[0]["feature_hw"][0]))
    anchors = zoo_anchors(meta, size)
    labels, rows = [], []
    for i, layer in enumerate(info):
        sz, rt, d = layer["sizes_px"], layer["ratios"], int(layer["anchors_per_cell"])
        if len(sz) == 2 and len(rt) + 1 == d:   # GluonCV's order: s_k, sqrt(s_k s_k+1), then s_k at each other ratio
            lab = [f"{sz[0]:.0f}px, r=1", f"{sz[1]:.0f}px, r=1"] + [f"{sz[0]:.0f}px, r={r:.3g}" for r in rt[1:]]
        else:
            lab = [f"{w:.0f}×{h:.0f}px" for w, h in layer["cell_wh_px"]]
        labels.append(lab)
        h, w = layer["feature_hw"]
        rows.append({"scale": i, "feature map": f"{h}×{w}", "cell (px)": round(float(layer["steps"]), 1),
                     "sizes": ", ".join(f"{v:.1f}px" for v in sz), "ratios": format_groups([rt]),
                     "anchors per cell": d, "anchors": int(layer["count"])})
    return AnchorSet([tuple(l["feature_hw"]) for l in info], [int(l["anchors_per_cell"]) for l in info], labels,
                     np.asarray(anchors, dtype=np.float64), size, rows, "gluoncv")


def anchors_for_meta(meta: Dict[str, Any]) -> AnchorSet:
    """The anchors of a saved model (TinySSD or a GluonCV zoo SSD)."""
    from .zoo import is_zoo_arch

    if is_zoo_arch(meta.get("arch")):
        return zoo_anchor_set(meta)
    anchors = meta.get("anchors") or {}
    size = int(meta.get("input_size", 256))
    return anchor_set(anchor_config(meta.get("arch", "tiny"), size, anchors.get("sizes"), anchors.get("ratios")), size)


def as_anchor_set(obj, input_size: int = 256) -> AnchorSet:
    if isinstance(obj, AnchorSet):
        return obj
    if isinstance(obj, AnchorConfig):
        return anchor_set(obj, input_size)
    raise TypeError(f"expected an AnchorSet or AnchorConfig, got {type(obj).__name__}")


def anchor_index(anchors, index: int) -> Tuple[int, int, int, int]:
    """Global anchor index (the heads' order) → (scale, row, col, k within the cell)."""
    index = int(index)
    if isinstance(anchors, AnchorConfig):
        maps, per_cell = anchors.feature_maps, [anchors.anchors_per_cell(i) for i in range(anchors.num_scales)]
    else:
        maps, per_cell = anchors.feature_maps, anchors.per_cell
    for s, ((h, w), a) in enumerate(zip(maps, per_cell)):
        n = h * w * a
        if index < n:
            cell, k = divmod(index, a)
            r, c = divmod(cell, w)
            return s, r, c, k
        index -= n
    raise IndexError("anchor index out of range")


def cell_anchor_rows(anchors: AnchorSet, scale: int, row: int, col: int,
                     gt_boxes: Optional[np.ndarray] = None) -> List[Dict[str, Any]]:
    """The cell's anchors: label, width/height in input pixels and best IoU with ``gt_boxes``."""
    boxes = anchors.cell(scale, row, col)
    ious = None
    if gt_boxes is not None and len(gt_boxes):
        ious = box_iou(boxes, np.asarray(gt_boxes).reshape(-1, 4)).max(axis=1)
    rows = []
    for k, (b, label) in enumerate(zip(boxes, anchors.cell_labels[scale])):
        row_ = {"#": k, "anchor": label, "w px": round(float(b[2] - b[0]) * anchors.input_size, 1),
                "h px": round(float(b[3] - b[1]) * anchors.input_size, 1)}
        if ious is not None:
            row_["IoU"] = round(float(ious[k]), 3)
        rows.append(row_)
    return rows


def positive_anchors(config, gt_label: np.ndarray, overlap_threshold: float = 0.5) -> np.ndarray:
    """Indices of the anchors the training target assignment marks positive for ``gt_label``.

    ``config``: an ``AnchorConfig``, an ``AnchorSet`` or an ``(N, 4)`` array of anchors.
    Runs the same MXNet ``MultiBoxTarget`` as training (``ssd.targets.multibox_targets``) with
    zero class predictions and no hard negative mining: an anchor is positive when its IoU with
    a box reaches ``overlap_threshold``, and every box also claims its best anchor.
    """
    import mxnet as mx

    from .targets import multibox_targets

    lab = np.asarray(gt_label, dtype=np.float32).reshape(-1, 5)
    lab = lab[lab[:, 0] >= 0]
    if len(lab) == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(3, len(lab))
    padded = np.full((1, k, 5), -1.0, dtype=np.float32)
    padded[0, :len(lab)] = lab
    if isinstance(config, AnchorConfig):
        anchors = all_anchors(config)
    elif isinstance(config, AnchorSet):
        anchors = config.anchors
    else:
        anchors = np.asarray(config).reshape(-1, 4)
    anchors = anchors.astype(np.float32)
    num_classes = int(lab[:, 0].max()) + 1
    cls_preds = mx.nd.zeros((1, len(anchors), num_classes + 1))
    _, _, cls_target = multibox_targets(mx.nd, mx.nd.array(anchors[None]), mx.nd.array(padded), cls_preds,
                                        overlap_threshold=float(overlap_threshold))
    return np.flatnonzero(cls_target.asnumpy()[0] > 0)


def positive_rows(anchors: AnchorSet, positives: Sequence[int], gt_boxes: np.ndarray) -> List[Dict[str, Any]]:
    """Where each positive anchor sits (map, row, col, k) and its best IoU with the boxes."""
    idx = np.asarray(positives, dtype=np.int64)
    if not len(idx):
        return []
    ious = box_iou(anchors.anchors[idx], np.asarray(gt_boxes).reshape(-1, 4)).max(axis=1)
    rows = []
    for i, iou in zip(idx, ious):
        s, r, c, k = anchor_index(anchors, int(i))
        rows.append({"map": s, "row": r, "col": c, "anchor": anchors.cell_labels[s][k], "IoU": round(float(iou), 3)})
    return rows


def anchor_coverage(anchors: AnchorSet, gt_boxes: np.ndarray, iou_threshold: float = 0.5) -> Tuple[float, np.ndarray]:
    """``ssd.anchors.coverage`` for any ``AnchorSet``: (share of boxes reaching the IoU, best IoU per box)."""
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(gt) == 0:
        return 0.0, np.zeros(0)
    best = np.zeros(len(gt))
    for start in range(0, len(gt), 256):           # bounded memory for large datasets
        best[start:start + 256] = box_iou(gt[start:start + 256], anchors.anchors).max(axis=1)
    return float(np.mean(best >= iou_threshold)), best


def _image_axes(fig, image: np.ndarray):
    ax = fig.add_subplot(111)
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


_CORNERS = ("top-left", "bottom-right", "top-right", "bottom-left")


def _rect(ax, box_px, colour, lw=2.0, ls="-", label=None, text_colour="white", fontsize=8, corner="top-left"):
    """A box outline; its label sits just outside one corner (alternate corners keep labels apart)."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = box_px
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=lw, linestyle=ls))
    if label:
        top = corner.startswith("top")
        left = corner.endswith("left")
        ax.text(x0 if left else x1, y0 if top else y1, label, va="bottom" if top else "top",
                ha="left" if left else "right", fontsize=fontsize, color=text_colour,
                bbox=dict(facecolor=colour, edgecolor="none", pad=1.5, alpha=0.9), clip_on=True)


_ANCHOR_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                   "tab:olive", "tab:cyan", "black"]


def cell_anchors_figure(image: np.ndarray, anchors: AnchorSet, scale: int, row: int, col: int,
                        show_centres: bool = False, gt_boxes: Optional[np.ndarray] = None,
                        ious: Optional[Sequence[float]] = None, figsize=(6.0, 6.0)):
    """The anchors of one cell over ``image`` (TinySSD: n+m-1), each labelled ``s=…, r=…`` as in d2l.

    Anchors are normalized to the square network input, so on a non-square image they are
    stretched exactly as the network stretches the image. ``gt_boxes`` (normalized) are drawn
    dashed; ``ious`` (one per anchor) are added to the labels.
    """
    from matplotlib.figure import Figure

    h, w = image.shape[:2]
    scale_xy = np.array([w, h, w, h], dtype=np.float64)
    anchors = as_anchor_set(anchors)
    boxes = anchors.cell(scale, row, col) * scale_xy
    labels = anchors.cell_labels[scale]
    fig = Figure(figsize=figsize)
    ax = _image_axes(fig, image)
    fh, fw = anchors.feature_maps[scale]
    if show_centres:
        c = cell_centres((fh, fw)) * np.array([w, h])
        ax.scatter(c[:, 0], c[:, 1], s=max(2, 600 / max(fh * fw, 1)), c="white", edgecolors="black",
                   linewidths=0.3, zorder=3)
    if gt_boxes is not None:
        for g in np.asarray(gt_boxes).reshape(-1, 4):
            _rect(ax, g * scale_xy, "white", lw=2.0, ls="--", label="ground truth", text_colour="black",
                  corner="bottom-left")
    for k, (b, label) in enumerate(zip(boxes, labels)):
        text = label + (f", IoU {ious[k]:.2f}" if ious is not None else "")
        _rect(ax, b, _ANCHOR_COLOURS[k % len(_ANCHOR_COLOURS)], lw=2.0, label=text,
              corner=_CORNERS[k % len(_CORNERS)])
    cx, cy = (col + 0.5) / fw * w, (row + 0.5) / fh * h
    ax.plot([cx], [cy], marker="o", color="red", markersize=5, zorder=4)
    lo = np.minimum(boxes[:, :2].min(axis=0), 0)
    hi = np.maximum(boxes[:, 2:].max(axis=0), [w, h])
    ax.set_xlim(lo[0] - 2, hi[0] + 2)
    ax.set_ylim(hi[1] + 2, lo[1] - 2)
    ax.set_title(f"feature map {scale} ({fh}×{fw}), cell ({row}, {col}): {len(boxes)} anchors", fontsize=10)
    fig.tight_layout()
    return fig


def positives_figure(image: np.ndarray, anchors: AnchorSet, positives: Sequence[int],
                     gt_boxes: Optional[np.ndarray] = None, figsize=(6.0, 6.0)):
    """The anchors marked positive, coloured by feature map, with the ground truth dashed."""
    from matplotlib.lines import Line2D
    from matplotlib.figure import Figure

    h, w = image.shape[:2]
    scale_xy = np.array([w, h, w, h], dtype=np.float64)
    aset = as_anchor_set(anchors)
    fig = Figure(figsize=figsize)
    ax = _image_axes(fig, image)
    if gt_boxes is not None:
        for g in np.asarray(gt_boxes).reshape(-1, 4):
            _rect(ax, g * scale_xy, "white", lw=2.5, ls="--")
    used = {}
    for idx in positives:
        s, _, _, _ = anchor_index(aset, int(idx))
        colour = _ANCHOR_COLOURS[s % len(_ANCHOR_COLOURS)]
        used[s] = used.get(s, 0) + 1
        _rect(ax, aset.anchors[int(idx)] * scale_xy, colour, lw=1.5)
    handles = [Line2D([0], [0], color=_ANCHOR_COLOURS[s % len(_ANCHOR_COLOURS)], lw=2,
                      label=f"map {s} ({aset.feature_maps[s][0]}×{aset.feature_maps[s][1]}): {n}")
               for s, n in sorted(used.items())]
    handles.append(Line2D([0], [0], color="white", lw=2, ls="--", label="ground truth"))
    leg = ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.85)
    leg.get_frame().set_facecolor("#dddddd")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_title(f"{len(positives)} positive anchor(s) of {aset.total()}", fontsize=10)
    fig.tight_layout()
    return fig


def gt_boxes_of(labels: Iterable[np.ndarray]) -> np.ndarray:
    """All ground-truth corner boxes (normalized) of a list of labels, ``(M, 4)``."""
    parts = [np.asarray(l, dtype=np.float32).reshape(-1, 5) for l in labels]
    parts = [p[p[:, 0] >= 0][:, 1:5] for p in parts]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 4), np.float32)


def coverage_figure(best_ious: np.ndarray, threshold: float = 0.5, title: str = "", figsize=(6.0, 3.2)):
    """Histogram of each box's best anchor IoU, with the matching threshold."""
    from matplotlib.figure import Figure

    best = np.asarray(best_ious, dtype=np.float64)
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot(111)
    if best.size:
        ax.hist(best, bins=np.linspace(0, 1, 41), color="tab:blue", alpha=0.8)
        share = float(np.mean(best >= threshold))
        ax.axvline(threshold, color="tab:red", ls="--", label=f"IoU {threshold:g}: {share:.0%} of boxes reach it")
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no boxes", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_xlabel("best anchor IoU of each ground-truth box")
    ax.set_ylabel("boxes")
    ax.set_title(title or "anchor coverage", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# the SSD diagram (home page)
# --------------------------------------------------------------------------------------------


def ssd_diagram_figure(config=None, input_size: int = 256, num_classes: int = 1,
                       figsize=(11.0, 4.2)):
    """Backbone → multi-scale feature maps → anchors → class + offset predictions → NMS.

    Numbers (map sizes, anchors per cell, totals) come from ``config`` (TinySSD's by default).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    config = config or anchor_config("tiny", input_size)
    if isinstance(config, AnchorSet):
        input_size = config.input_size
    fig = Figure(figsize=figsize)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 110)
    ax.set_ylim(0, 46)
    ax.axis("off")

    def box(x, y, w, h, text, colour, fs=9):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.4", facecolor=colour, edgecolor="#333333",
                                    linewidth=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs, wrap=True)

    def arrow(x0, y0, x1, y1):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, color="#444444",
                                     linewidth=1.2))

    # input image
    ax.add_patch(Rectangle((1, 13), 14, 14, facecolor="#cfe8ff", edgecolor="#333333"))
    ax.add_patch(Rectangle((5, 16), 6, 8, facecolor="#fad624", edgecolor="#4a2e14"))
    ax.text(8, 10.5, f"image\n{input_size}×{input_size}", ha="center", va="top", fontsize=9)
    arrow(15.5, 20, 19, 20)
    box(19.5, 14, 12, 12, "backbone\n(conv blocks,\ndown-sampling)", "#e0e0e0")
    prev_bottom = 0.0
    # feature maps, shrinking
    n = config.num_scales
    ys = np.linspace(38, 4, n)
    gap = (34.0 / max(n - 1, 1)) * 0.85
    total = config.total()
    for i, ((h, w), y) in enumerate(zip(config.feature_maps, ys)):
        side = min(gap, 7.0 * (0.8 ** i) + 1.5)
        x = 38
        grid = min(h, 8)
        ax.add_patch(Rectangle((x, y - side / 2), side, side, facecolor="#d9f2d9", edgecolor="#2c7a2c"))
        for g in range(1, grid):
            ax.plot([x + side * g / grid] * 2, [y - side / 2, y + side / 2], color="#2c7a2c", lw=0.4)
            ax.plot([x, x + side], [y - side / 2 + side * g / grid] * 2, color="#2c7a2c", lw=0.4)
        a = config.anchors_per_cell(i)
        ax.text(x + side + 1.2, y, f"{h}×{w} map · {a} anchors/cell = {h * w * a}", va="center", fontsize=8)
        if i == 0:
            arrow(32, 20, x - 0.5, y)
        else:
            arrow(x + 1.5, prev_bottom, x + 1.5, y + side / 2)
        prev_bottom = y - side / 2
        arrow(68, y, 74, 20 + (y - 21) * 0.25)
    ax.text(38, 44.5, "multi-scale feature maps: each smaller than the one above; big maps see small objects", fontsize=9, ha="left", va="top")
    # predictions
    box(74.5, 23, 15, 9, f"class scores\n({num_classes} class(es) + background)\nper anchor", "#ffe3c4", fs=8)
    box(74.5, 8, 15, 9, "box offsets\n(Δx, Δy, Δw, Δh)\nper anchor", "#ffe3c4", fs=8)
    ax.text(82, 3, f"{total} anchors in all", ha="center", fontsize=8)
    arrow(90.5, 27, 94, 21)
    arrow(90.5, 12, 94, 19)
    box(94.5, 14, 13, 12, "decode +\nnon-maximum\nsuppression\n→ boxes", "#f2d0f2")
    return fig


def demo_detection_figure(samples: Sequence[Sample], detections: Sequence[Any], figsize=(11.0, 3.0)):
    """A row of sample images with detections drawn (home page's 'what it does')."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    n = max(1, len(samples))
    for i, (s, det) in enumerate(zip(samples, detections)):
        ax = fig.add_subplot(1, n, i + 1)
        ax.imshow(np.asarray(draw_detections(s.image().resize((512, 512), Image.BILINEAR), det, scale=2.0,
                                             line_width=3, font_size=22)))
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig


def timed(fn, *args, **kwargs) -> Tuple[Any, float]:
    """``(fn(*args, **kwargs), elapsed milliseconds)``."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t0) * 1000.0


def demo_sample_order(samples: Sequence[Sample]) -> List[int]:
    """Sample indices, clearest first: characters fully inside the frame, larger ones first."""
    def score(s: Sample) -> float:
        lab = s.label[s.label[:, 0] >= 0]
        if not len(lab):
            return -1.0
        x0, y0, x1, y1 = (float(v) for v in lab[0, 1:5])
        inside = x0 > 0.02 and y0 > 0.02 and x1 < 0.98 and y1 < 0.98
        return (x1 - x0) * (y1 - y0) + (1.0 if inside else 0.0)

    return sorted(range(len(samples)), key=lambda i: -score(samples[i]))


def demo_sample_index(samples: Sequence[Sample]) -> int:
    """The sample best suited to explain anchors: a large character fully inside the frame."""
    order = demo_sample_order(samples)
    return order[0] if order else 0


def best_anchor_cell(anchors, gt_box: Sequence[float]) -> Tuple[int, int, int]:
    """(scale, row, col) of the anchor that overlaps ``gt_box`` (normalized corners) the most."""
    aset = as_anchor_set(anchors)
    ious = box_iou(np.asarray(gt_box, dtype=np.float64).reshape(1, 4), aset.anchors)[0]
    s, r, c, _ = anchor_index(aset, int(np.argmax(ious)))
    return s, r, c


def dataset_labels(path: str, split: str = "val") -> Tuple[List[np.ndarray], str]:
    """Labels of a dataset split (falls back to train when there is no val), and the split used."""
    from .datasets import open_dataset

    splits = open_dataset(path)
    ds = splits.val if split == "val" and splits.val is not None and len(splits.val) else splits.train
    used = "val" if ds is splits.val else "train"
    return [np.asarray(l, dtype=np.float32).reshape(-1, 5) for l in ds.labels()], used
