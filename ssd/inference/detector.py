"""Detection: run the network once per image, decode with ``MultiBoxDetection``, filter for free.

The expensive part (decode + resize + forward + NMS) happens once per (image, NMS setting) and
returns every candidate above a low floor as ``RawDetections``. A display threshold, a class
filter or a cap on the count are then pure numpy (``RawDetections.filter``), which is what
lets the app's confidence slider move without touching the network.

Gluon blocks are not safe to call from several threads at once (a Streamlit server is
multi-threaded), so each ``Detector`` serializes its forward calls with a lock.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ssd.data.preprocess import MEAN, STD, normalize_batch
from ssd.inference.thresholds import DEFAULT_NMS, EVAL_FLOOR
from ssd.models.registry import recipe_for

_NAIVE_LOCK = threading.Lock()  # shared by every Detector under MXNet's NaiveEngine
ENGINE_NAMES = {"mxnet": "MXNet", "onnxruntime": "ONNX Runtime"}   # engines as a page names them


@dataclass
class RawDetections:
    """Detections of one image in its original pixels, sorted by descending score."""

    class_ids: np.ndarray            # (N,) int
    scores: np.ndarray               # (N,) float
    boxes: np.ndarray                # (N, 4) float, xmin ymin xmax ymax, original pixels
    image_size: Tuple[int, int]      # (width, height) of the original image
    classes: List[str]
    name: str = ""
    timings_ms: Dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.scores)

    def filter(self, threshold: float = 0.0, classes: Optional[Iterable[str]] = None,
               max_detections: Optional[int] = None) -> "RawDetections":
        """Subset by score, class names and count (``ShownFilter``, shared with the Camera traps
        page) — no network involved."""
        from ssd.inference.filtering import ShownFilter

        shown = ShownFilter.of(threshold, classes, hide_suspect=False, max_detections=max_detections)
        idx = shown.indices(self.scores, [self.classes[int(c)] for c in self.class_ids])
        return RawDetections(self.class_ids[idx], self.scores[idx], self.boxes[idx], self.image_size,
                             self.classes, self.name, dict(self.timings_ms))

    def records(self) -> List[Dict[str, Any]]:
        """One dict per detection: class name, id, score, box in pixels."""
        return [{"class": self.classes[int(c)], "class_id": int(c), "score": float(s),
                 "box": [float(v) for v in b]}
                for c, s, b in zip(self.class_ids, self.scores, self.boxes)]

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for c in self.class_ids:
            out[self.classes[int(c)]] = out.get(self.classes[int(c)], 0) + 1
        return out


class _Tapped:
    """A network whose outputs are also handed to ``tap`` (decoders call ``net(x)`` once); every
    other attribute, read or set (a decoder's NMS settings), is the network's own."""

    __slots__ = ("_net", "_tap")

    def __init__(self, net, tap: Callable[[Any], None]) -> None:
        object.__setattr__(self, "_net", net)
        object.__setattr__(self, "_tap", tap)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._net, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._net, name, value)

    def __call__(self, x):
        outs = self._net(x)
        self._tap(outs if isinstance(outs, (list, tuple)) else [outs])
        return outs


class Detector:
    """A trained network ready for inference on PIL images of any size and mode."""

    engine = "mxnet"         # which inference engine runs the network ("mxnet", "onnxruntime")

    def __init__(self, net, meta: Dict[str, Any], ctx=None, hybridize: bool = True, warm: bool = True,
                 worker: bool = False, decoder=None, precision: str = "fp32") -> None:
        import mxnet as mx

        from ssd.base.engine import is_naive

        self._setup(meta, worker, precision)
        self.net = net
        self.ctx = ctx or mx.cpu()
        self.engine_version = mx.__version__
        self.device = "CPU" if self.ctx.device_type == "cpu" else f"GPU {self.ctx.device_id} (MXNet)"
        # MXNet's naive engine runs operators in the calling thread: no two forwards may overlap
        # anywhere in the process, so every Detector then shares one lock.
        self._lock = _NAIVE_LOCK if is_naive() else threading.Lock()
        # raw outputs → (ids, scores, boxes): the recipe's, or the graph form's (ssd.inference.precision)
        self._decode = decoder or recipe_for(meta["arch"]).decoder(meta)
        if hybridize:
            net.hybridize(static_alloc=True)
        if warm:
            self.predict_arrays(np.zeros((1, self.input_size, self.input_size, 3), np.uint8))
            self.forward_calls = 0

    def _setup(self, meta: Dict[str, Any], worker: bool, precision: str) -> None:
        """What every engine's Detector holds: the model's classes, input and normalization."""
        self.worker = worker     # run forwards on the process's one inference thread (servers)
        self.meta = meta
        self.classes: List[str] = list(meta["classes"])
        self.input_size = int(meta["input_size"])
        norm = meta.get("normalize") or {}
        self.mean = tuple(norm.get("mean", MEAN))
        self.std = tuple(norm.get("std", STD))
        self.forward_calls = 0   # counted so tests and the app can prove a slider costs no forward
        # Forwards of at most this many images (None: any). Why: the graph keeps memory for the largest
        # batch it has run (about 17 MiB an image for TinySSD at 256 px), so a server caps it.
        self.max_batch: Optional[int] = None
        self.precision = precision
        self.precision_note = precision
        self.engine_note = ""    # why this engine (a fallback's reason), set by ssd.inference.engines
        self.device_note = ""    # why not a GPU, when on the CPU

    def describe(self) -> str:
        """Engine, precision and device in one line: what every output says produced it."""
        line = f"{self.engine} {self.engine_version}, {self.precision_note}, on {self.device}"
        if self.device_note and not self.device.startswith("GPU"):
            line += f", not a GPU: {self.device_note}"
        return line + (f" ({self.engine_note})" if self.engine_note else "")

    def summary(self) -> str:
        """Engine · precision · device in plain words ("ONNX Runtime · INT8 · CPU (2 threads)"): a page's
        one-line caption, where ``describe``'s version, graph and reasons were too long to read at a
        glance (the page keeps that full line behind the caption's help)."""
        engine = ENGINE_NAMES.get(self.engine, self.engine)
        return f"{engine} · {str(self.precision).upper()} · {self.device}"

    def engine_info(self) -> Dict[str, str]:
        """The same as fields, for results files (``info``) and run records."""
        return {"engine": self.engine, "engine_version": str(self.engine_version), "precision": self.precision,
                "device": self.device, "device_note": self.device_note, "note": self.engine_note}

    @classmethod
    def load(cls, model_dir: str, ctx=None, precision: Optional[str] = None, worker: bool = False) -> "Detector":
        """A model folder at ``precision``: ``fp32`` (oneDNN-fused), ``int8`` (its stored quantized
        graph) or ``None`` for the model's default (``ssd.inference.precision.default_precision``).

        With ``worker`` the load, the warm-up and every later forward happen on the process's one
        inference thread (``ssd.inference.worker``).
        """
        if worker:
            from ssd.inference.worker import on_worker

            return on_worker(cls._load, model_dir, ctx, precision, True)
        return cls._load(model_dir, ctx, precision, False)

    @classmethod
    def _load(cls, model_dir: str, ctx, precision: Optional[str], worker: bool) -> "Detector":
        from ssd.inference.precision import prepare

        prepared, meta = prepare(model_dir, precision, ctx=ctx)
        det = cls(prepared.net, meta, ctx=ctx, hybridize=False, decoder=prepared.decoder,
                  precision=prepared.precision, worker=worker)
        det.precision_note = prepared.note
        det.model_dir = model_dir
        return det

    def predict_arrays(self, images: np.ndarray, nms: float = DEFAULT_NMS, floor: float = EVAL_FLOOR,
                       tap: Optional[Callable[[Any], None]] = None):
        """uint8 ``(B, S, S, 3)`` at the network size → ``[(ids, scores, boxes normalized)]``.

        ``tap`` (evaluation's anchor metrics) is handed the network's raw outputs of this same
        forward, before decoding: no second forward is run for them. A batch over ``max_batch``
        runs as several forwards (not with a ``tap``, which sees one forward: its caller batches).
        """
        if self.max_batch and len(images) > self.max_batch and tap is None:
            return [r for start in range(0, len(images), self.max_batch)
                    for r in self.predict_arrays(images[start:start + self.max_batch], nms, floor, tap)]
        if self.worker:
            from ssd.inference.worker import on_worker

            return on_worker(self._predict, images, nms, floor, tap)
        return self._predict(images, nms, floor, tap)

    def _predict(self, images: np.ndarray, nms: float, floor: float, tap: Optional[Callable[[Any], None]] = None):
        from mxnet import nd

        x = nd.array(normalize_batch(images, self.mean, self.std), ctx=self.ctx)
        net = self.net if tap is None else _Tapped(self.net, tap)
        with self._lock:
            self.forward_calls += 1
            return self._decode(net, x, nms, floor)

    def forward_raw(self, images: np.ndarray) -> List[np.ndarray]:
        """uint8 ``(B, S, S, 3)`` → the network's raw outputs as numpy, before any decoding.

        For the Learn pages' step-by-step views (mining, NMS), which need what ``predict_arrays``
        feeds its decoder; same normalization, same lock.
        """
        if self.worker:
            from ssd.inference.worker import on_worker

            return on_worker(self._forward_raw, images)
        return self._forward_raw(images)

    def _forward_raw(self, images: np.ndarray) -> List[np.ndarray]:
        from mxnet import nd

        x = nd.array(normalize_batch(images, self.mean, self.std), ctx=self.ctx)
        with self._lock:
            self.forward_calls += 1
            outs = self.net(x)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            return [o.asnumpy() for o in outs]

    def detect(self, image, nms: float = DEFAULT_NMS, floor: float = EVAL_FLOOR,
               name: Optional[str] = None) -> RawDetections:
        """All candidates ≥ ``floor`` for one image (path, bytes, file-like, PIL or LoadedImage)."""
        return self.detect_many([image], nms=nms, floor=floor, names=[name] if name else None)[0]

    def detect_many(self, images: Sequence, nms: float = DEFAULT_NMS, floor: float = EVAL_FLOOR,
                    names: Optional[Sequence[str]] = None) -> List[RawDetections]:
        """Batched detection; boxes come back in each original image's pixels."""
        from ssd.data.images import LoadedImage, from_pil, load_image, resize_for_network

        t0 = time.perf_counter()
        loaded: List[LoadedImage] = []
        for i, im in enumerate(images):
            nm = names[i] if names else None
            if isinstance(im, LoadedImage):
                loaded.append(im)
            elif hasattr(im, "mode") and hasattr(im, "size") and hasattr(im, "convert"):  # PIL image
                loaded.append(from_pil(im, nm))
            else:
                loaded.append(load_image(im, nm, draft_to=self.input_size))
        t1 = time.perf_counter()
        batch = np.stack([resize_for_network(li.image, self.input_size) for li in loaded])
        t2 = time.perf_counter()
        decoded = self.predict_arrays(batch, nms=nms, floor=floor)
        t3 = time.perf_counter()
        out = []
        for li, (ids, scores, boxes) in zip(loaded, decoded):
            w, h = li.original_size
            px = boxes * np.array([w, h, w, h], dtype=np.float32)
            timings = {"load": (t1 - t0) * 1000 / len(loaded), "preprocess": (t2 - t1) * 1000 / len(loaded),
                       "network": (t3 - t2) * 1000 / len(loaded)}
            timings["total"] = sum(timings.values())
            out.append(RawDetections(ids, scores, px, (w, h), self.classes, li.name, timings))
        return out
