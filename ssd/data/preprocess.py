"""What every network input goes through: resize to the network's square, then normalize.

One convention for every architecture (ImageNet statistics: TinySSD does not need them, but
GluonCV's pretrained bases do) keeps the Detector and the exported graphs simple.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 → ``(size, size, 3)``, bilinear (unchanged when already that size)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.BILINEAR))


def normalize_batch(images: np.ndarray, mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> np.ndarray:
    """uint8 ``(B, H, W, 3)`` → float32 ``(B, 3, H, W)`` normalized network input.

    Written channel by channel into the output, in place: the same float32 arithmetic as
    ``(x / 255 - mean) / std`` without the three batch-sized temporaries (it runs for every
    training batch, beside the network, on the same cores)."""
    images = np.asarray(images)
    out = np.empty((images.shape[0], images.shape[3], images.shape[1], images.shape[2]), dtype=np.float32)
    mean = np.asarray(mean, dtype=np.float32)
    inv_std = np.float32(1.0) / np.asarray(std, dtype=np.float32)
    for c in range(images.shape[3]):
        ch = out[:, c]
        np.multiply(images[..., c], np.float32(1.0 / 255.0), out=ch, casting="unsafe")
        ch -= mean[c]
        ch *= inv_std[c]
    return out
