"""Training augmentation and batching, in numpy/PIL so it can run in a background thread.

SSD's accuracy leans on augmentation (seed 004): a random crop that must still overlap the
objects by some minimum IoU (so the network sees objects at new scales and partly cut),
horizontal flips, and photometric jitter. Labels follow the image exactly.
"""
from __future__ import annotations

import threading
import queue
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .anchors import box_iou
from .errors import ImageError

# ImageNet statistics: TinySSD does not need them, but GluonCV's pretrained bases do, and one
# convention for every architecture keeps the Detector simple.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MIN_LABEL_ROWS = 3  # MultiBoxTarget's GPU kernel wants at least three label rows per image
_CROP_MIN_IOUS = (None, 0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass
class AugmentConfig:
    crop: bool = True
    flip: bool = True
    color: bool = True
    crop_prob: float = 0.5       # chance to try an IoU-constrained crop at all
    min_scale: float = 0.3
    max_attempts: int = 50


def random_iou_crop(img: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                    cfg: AugmentConfig) -> Tuple[np.ndarray, np.ndarray]:
    """SSD crop: a random window whose IoU with every kept box is at least a random minimum.

    Boxes whose centre leaves the window are dropped; the rest are clipped and renormalized.
    If no window satisfies the constraint in ``max_attempts`` tries, the image is unchanged.
    """
    if rng.random() > cfg.crop_prob:
        return img, label
    min_iou = _CROP_MIN_IOUS[rng.integers(len(_CROP_MIN_IOUS))]
    if min_iou is None:
        return img, label
    h, w = img.shape[:2]
    boxes = label[:, 1:5]
    for _ in range(cfg.max_attempts):
        scale = rng.uniform(cfg.min_scale, 1.0)
        ratio = rng.uniform(max(0.5, scale ** 2), min(2.0, 1 / scale ** 2))
        cw, ch = scale * np.sqrt(ratio), scale / np.sqrt(ratio)
        if cw > 1 or ch > 1:
            continue
        x0, y0 = rng.uniform(0, 1 - cw), rng.uniform(0, 1 - ch)
        win = np.array([x0, y0, x0 + cw, y0 + ch])
        if len(boxes):
            if box_iou(boxes, win[None]).min() < min_iou:
                continue
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            keep = np.all((centres > win[:2]) & (centres < win[2:]), axis=1)
            if not keep.any():
                continue
            new = label[keep].copy()
            new[:, 1:5] = (np.clip(new[:, 1:5], np.tile(win[:2], 2), np.tile(win[2:], 2))
                           - np.tile(win[:2], 2)) / np.array([cw, ch, cw, ch])
        else:
            new = label
        px = (int(x0 * w), int(y0 * h), max(int(x0 * w) + 1, int((x0 + cw) * w)),
              max(int(y0 * h) + 1, int((y0 + ch) * h)))
        return img[px[1]:px[3], px[0]:px[2]], new.astype(np.float32)
    return img, label


def random_flip(img: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    if rng.random() < 0.5:
        return img, label
    label = label.copy()
    label[:, [1, 3]] = 1.0 - label[:, [3, 1]]
    return img[:, ::-1], label


def color_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation jitter (±30 %), each applied with probability 0.5."""
    out = img.astype(np.float32)
    if rng.random() < 0.5:
        out += rng.uniform(-0.3, 0.3) * 255 * 0.25
    if rng.random() < 0.5:
        m = out.mean()
        out = (out - m) * rng.uniform(0.7, 1.3) + m
    if rng.random() < 0.5:
        grey = out.mean(axis=2, keepdims=True)
        out = (out - grey) * rng.uniform(0.7, 1.3) + grey
    return np.clip(out, 0, 255).astype(np.uint8)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.BILINEAR))


def augment(img: np.ndarray, label: np.ndarray, size: int, rng: np.random.Generator,
            cfg: Optional[AugmentConfig]) -> Tuple[np.ndarray, np.ndarray]:
    """Full training transform of one sample; ``cfg=None`` means resize only (validation)."""
    if cfg is not None:
        if cfg.crop:
            img, label = random_iou_crop(img, label, rng, cfg)
        if cfg.flip:
            img, label = random_flip(img, label, rng)
    img = resize(img, size)
    if cfg is not None and cfg.color:
        img = color_jitter(img, rng)
    return img, label


def normalize_batch(images: np.ndarray, mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> np.ndarray:
    """uint8 ``(B, H, W, 3)`` → float32 ``(B, 3, H, W)`` normalized network input."""
    x = images.astype(np.float32) * (1.0 / 255.0)
    x -= np.asarray(mean, dtype=np.float32)
    x *= 1.0 / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def pad_labels(labels: Sequence[np.ndarray], min_rows: int = MIN_LABEL_ROWS) -> np.ndarray:
    """Stack variable-length labels into ``(B, K, 5)`` padded with -1 rows."""
    k = max([min_rows] + [len(l) for l in labels])
    out = -np.ones((len(labels), k, 5), dtype=np.float32)
    for i, l in enumerate(labels):
        out[i, :len(l)] = l
    return out


class BatchLoader:
    """Yields ``(x float32 (B,3,S,S), y float32 (B,K,5))`` batches, prepared in a background thread.

    The thread overlaps numpy/PIL work (which releases the GIL) with MXNet's compute.
    Order and augmentation are drawn from ``np.random.default_rng((seed, epoch))`` so an
    epoch is reproducible — and a resumed run sees the same epochs it would have seen.
    """

    def __init__(self, dataset, batch_size: int, size: int, augment_cfg: Optional[AugmentConfig] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False, prefetch: int = 2,
                 mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> None:
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.dataset, self.batch_size, self.size = dataset, batch_size, size
        self.augment_cfg, self.shuffle, self.seed = augment_cfg, shuffle, seed
        self.drop_last, self.prefetch = drop_last, prefetch
        self.mean, self.std = mean, std
        self.skipped: dict = {}  # dataset index -> times it failed to decode

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batches(self, epoch: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            imgs, labs = [], []
            for i in idx:
                try:
                    img, lab = self.dataset[int(i)]
                except ImageError:
                    # a photo that no longer decodes (truncated on disk, say) is skipped and
                    # counted, never fatal: one bad file must not end a long training run
                    self.skipped[int(i)] = self.skipped.get(int(i), 0) + 1
                    continue
                img, lab = augment(img, lab, self.size, rng, self.augment_cfg)
                imgs.append(img)
                labs.append(lab)
            if imgs:
                yield normalize_batch(np.stack(imgs), self.mean, self.std), pad_labels(labs)

    def epoch(self, epoch: int = 0) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Iterate one epoch with a producer thread ``prefetch`` batches ahead."""
        q: "queue.Queue" = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()

        def produce() -> None:
            try:
                for item in self._batches(epoch):
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(done)
            except BaseException as err:  # surface loader errors in the consumer
                q.put(err)

        t = threading.Thread(target=produce, daemon=True, name="ssd-batch-loader")
        t.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            t.join(timeout=5)
