"""Training augmentation in numpy/PIL, so that it runs in a background thread.

SSD's accuracy leans on augmentation (as "a PyTorch Tutorial to Object Detection" stresses): a
random crop that must still overlap the objects by some minimum IoU (so the network sees objects
at new scales and partly cut), horizontal flips, and photometric jitter. Labels follow the image
exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ssd.base.boxes import box_iou
from ssd.data.preprocess import resize

_CROP_MIN_IOUS = (None, 0.1, 0.3, 0.5, 0.7, 0.9)
_THIRDS = np.full(3, 1 / 3, dtype=np.float32)


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
    If none of ``max_attempts`` random windows satisfies the constraint, the image is unchanged.
    """
    if rng.random() > cfg.crop_prob:
        return img, label
    min_iou = _CROP_MIN_IOUS[rng.integers(len(_CROP_MIN_IOUS))]
    if min_iou is None:
        return img, label
    found = _first_window(label[:, 1:5], min_iou, rng, cfg)
    if found is None:
        return img, label
    win, keep = found
    cw, ch = win[2] - win[0], win[3] - win[1]
    new = label
    if len(label):
        new = label[keep].copy()
        new[:, 1:5] = (np.clip(new[:, 1:5], np.tile(win[:2], 2), np.tile(win[2:], 2))
                       - np.tile(win[:2], 2)) / np.array([cw, ch, cw, ch])
    h, w = img.shape[:2]
    x0, y0 = win[0], win[1]
    px = (int(x0 * w), int(y0 * h), max(int(x0 * w) + 1, int((x0 + cw) * w)),
          max(int(y0 * h) + 1, int((y0 + ch) * h)))
    return img[px[1]:px[3], px[0]:px[2]], new.astype(np.float32)


def _first_window(boxes: np.ndarray, min_iou: float, rng: np.random.Generator, cfg: AugmentConfig):
    """The first of ``max_attempts`` random windows that meets the crop's constraint, with the
    mask of boxes it keeps; None when none does.

    All attempts are drawn and tested at once (one IoU matrix): the same distribution as trying
    them one by one, at a tenth of the cost, which matters because it runs beside the network.
    """
    n = cfg.max_attempts
    scale = rng.uniform(cfg.min_scale, 1.0, n)
    ratio = rng.uniform(np.maximum(0.5, scale ** 2), np.minimum(2.0, 1 / scale ** 2))
    cw, ch = scale * np.sqrt(ratio), scale / np.sqrt(ratio)
    x0 = rng.uniform(0.0, np.clip(1 - cw, 0.0, None))
    y0 = rng.uniform(0.0, np.clip(1 - ch, 0.0, None))
    wins = np.stack([x0, y0, x0 + cw, y0 + ch], axis=1)
    ok = (cw <= 1) & (ch <= 1)
    if len(boxes):
        ok &= box_iou(boxes, wins).min(axis=0) >= min_iou
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = np.all((centres[:, None] > wins[None, :, :2]) & (centres[:, None] < wins[None, :, 2:]), axis=2)
        ok &= inside.any(axis=0)
    hits = np.flatnonzero(ok)
    if not len(hits):
        return None
    i = int(hits[0])
    return wins[i], (inside[:, i] if len(boxes) else None)


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
        out += np.float32(rng.uniform(-0.3, 0.3) * 255 * 0.25)
    if rng.random() < 0.5:                      # (x - m) c + m, in place
        m, c = np.float32(out.mean()), np.float32(rng.uniform(0.7, 1.3))
        out *= c
        out += m * (1 - c)
    if rng.random() < 0.5:                      # (x - grey) s + grey, in place
        grey = (out @ _THIRDS)[..., None]      # the channel mean; 25× faster than mean(axis=2)
        s = np.float32(rng.uniform(0.7, 1.3))
        out *= s
        grey *= 1 - s
        out += grey
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


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
