"""Training augmentation in numpy/PIL, so that it runs in a background thread.

SSD's accuracy leans on augmentation (seed 004): a random crop that must still overlap the
objects by some minimum IoU (so the network sees objects at new scales and partly cut),
horizontal flips, and photometric jitter. Labels follow the image exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ssd.base.boxes import box_iou
from ssd.data.preprocess import resize

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
