"""Procedural "synthetic Pikachu": a stand-in for the official Pikachu set, made offline.

The official Pikachu RecordIO files may no longer be hosted, and tests and demos must not
need the network, so this module pastes a yellow cartoon character (head, pointed ears with
black tips, red cheeks, eyes, body, arms, feet, lightning-bolt tail, drawn with PIL by
``ssd.data.synthetic_character``) onto varied backgrounds and writes the same RecordIO
detection format as the official set.

Design choices and why:

* **Exact boxes.** The character is drawn on its own transparent sprite; the box is the
  tight bounding box of the sprite pixels that are at least half covered (alpha >= 128)
  *after* rotation, scaling and placement, clipped to the image. No hand-made box can drift
  from the drawing.
* **Shape, not colour.** Backgrounds include yellow blobs, triangles and red discs, so a
  detector that only looks for "yellow" fails; it must learn the configuration of parts.
* **Hard cases.** Sizes are log-uniform over 10 %–60 % of the image side (more small
  characters, which SSD finds hardest), poses vary (rotation, mirror, squash, ear angles,
  closed eyes, open mouth), and about a fifth of the characters are cut off by the frame.
* **Determinism.** Image ``i`` of a split is drawn from ``numpy.random.default_rng([seed,
  split, i])`` alone, so a seed always reproduces identical labels and image bytes, the
  first ``N`` images do not depend on how many are generated, and train and val never share
  a random stream.
"""
from __future__ import annotations

import math
import os
from typing import Callable, Dict, Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ssd.base.atomic import atomic_write_json
from ssd.base.errors import DatasetError
from ssd.data.staging import staged_dir
from ssd.data.synthetic_character import ALPHA_ON, Colour, jitter, sprite

GENERATOR = "ssd.synth"

__all__ = ["CLASSES", "render_example", "generate"]

CLASSES = ["pikachu"]
_SPLITS = {"train": 0, "val": 1}
_MIN_SIZE = 64           # below this the smallest characters would be a few pixels wide


# --------------------------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------------------------

_YELLOWS = [(250, 214, 36), (240, 200, 30), (255, 230, 80), (230, 190, 60), (250, 180, 20)]


def _random_colour(rng: np.random.Generator) -> Colour:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A varied background: gradient, smooth colour field, stripes or noise, then shapes."""
    kind = int(rng.integers(0, 4))
    xx = (np.arange(size, dtype=np.float32) / size)[None, :]   # broadcast, not a full grid
    yy = xx.T
    if kind == 0:                                      # linear gradient
        a = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(a) + yy * math.sin(a))
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        c1, c2 = np.array(_random_colour(rng), np.float32), np.array(_random_colour(rng), np.float32)
        arr = c1 * (1 - t[..., None]) + c2 * t[..., None]
    elif kind == 1:                                    # smooth colour field
        g = int(rng.integers(2, 7))
        small = Image.fromarray(rng.integers(0, 256, (g, g, 3), dtype=np.uint8))
        arr = np.asarray(small.resize((size, size), Image.BICUBIC), dtype=np.float32)
    elif kind == 2:                                    # stripes
        a = rng.uniform(0, math.pi)
        f = rng.uniform(2, 14)
        t = np.sin(2 * math.pi * f * (xx * math.cos(a) + yy * math.sin(a))) > rng.uniform(-0.5, 0.5)
        c1, c2 = np.array(_random_colour(rng), np.float32), np.array(_random_colour(rng), np.float32)
        arr = np.where(t[..., None], c1, c2)
    else:                                              # noisy flat colour
        c = np.array(_random_colour(rng), np.float32)
        arr = c + rng.standard_normal((size, size, 3), dtype=np.float32) * np.float32(rng.uniform(10, 40))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")

    d = ImageDraw.Draw(img)
    n_shapes = int(rng.integers(0, 7))
    n_yellow = int(rng.integers(1, 4)) if rng.random() < 0.6 else 0
    for i in range(n_shapes + n_yellow):
        distractor = i >= n_shapes
        if distractor:
            colour = jitter(rng, _YELLOWS[int(rng.integers(0, len(_YELLOWS)))], 12)
            if rng.random() < 0.25:
                colour = jitter(rng, (228, 52, 40), 20)  # red discs, like cheeks
        else:
            colour = _random_colour(rng)
        r = rng.uniform(0.04, 0.25) * size
        cx, cy = rng.uniform(0, size, 2)
        form = int(rng.integers(0, 4))
        if form == 0:
            d.ellipse([cx - r, cy - r * rng.uniform(0.5, 1.0), cx + r, cy + r * rng.uniform(0.5, 1.0)], fill=colour)
        elif form == 1:
            d.rectangle([cx - r, cy - r * rng.uniform(0.3, 1.0), cx + r, cy + r], fill=colour)
        elif form == 2:
            pts = [(cx + r * math.cos(a), cy + r * math.sin(a))
                   for a in np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(3, 6))))]
            d.polygon(pts, fill=colour)
        else:
            d.line([(cx - r, cy - r * rng.uniform(-1, 1)), (cx + r, cy + r * rng.uniform(-1, 1))],
                   fill=colour, width=int(rng.integers(2, max(3, size // 25))))
    return img


# --------------------------------------------------------------------------------------------
# one example
# --------------------------------------------------------------------------------------------

def _place(rng: np.random.Generator, sprite: Image.Image, size: int) -> Tuple[int, int, np.ndarray]:
    """Pick the top-left corner; a quarter of the time, try to let the frame cut the character.

    A cut pushes 10 %–55 % of the sprite past one edge (sometimes two, a corner). It is kept
    only if at least 45 % of the character's pixels stay visible, so every box shows a
    recognisable part. Returns the corner and the visibility mask (alpha >= 128) clipped to
    the image.
    """
    sw, sh = sprite.size
    on = np.asarray(sprite.getchannel("A")) >= ALPHA_ON
    total = max(1, int(on.sum()))

    def visible(x: int, y: int) -> np.ndarray:
        return on[max(0, -y):min(sh, size - y), max(0, -x):min(sw, size - x)]

    if rng.random() < 0.25:
        for _ in range(8):
            x = int(rng.integers(0, max(0, size - sw) + 1))
            y = int(rng.integers(0, max(0, size - sh) + 1))
            edges = rng.permutation(4)[: 2 if rng.random() < 0.25 else 1]
            for e in edges.tolist():
                cut = rng.uniform(0.1, 0.55)
                if e == 0:
                    x = -int(cut * sw)
                elif e == 1:
                    x = size - sw + int(cut * sw)
                elif e == 2:
                    y = -int(cut * sh)
                else:
                    y = size - sh + int(cut * sh)
            vis = visible(x, y)
            if vis.sum() >= 0.45 * total and min(vis.shape) >= 4:
                return x, y, vis
    x = int(rng.integers(0, max(0, size - sw) + 1))
    y = int(rng.integers(0, max(0, size - sh) + 1))
    return x, y, visible(x, y)


def render_example(seed: int = 0, index: int = 0, split: str = "train", size: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """Image ``index`` of ``split`` for ``seed``: ``(uint8 (size, size, 3) RGB, float32 (1, 5) label)``.

    Depends on nothing but its arguments, so any single example can be re-created.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    rng = np.random.default_rng([int(seed), _SPLITS[split], int(index)])
    bg = _background(rng, size)
    target = size * math.exp(rng.uniform(math.log(0.10), math.log(0.60)))
    character = sprite(rng, target)
    x, y, vis = _place(rng, character, size)
    bg.paste(character, (x, y), character)

    rows, cols = np.nonzero(vis.any(axis=1))[0], np.nonzero(vis.any(axis=0))[0]
    x0, y0 = max(0, x) + int(cols[0]), max(0, y) + int(rows[0])
    x1, y1 = max(0, x) + int(cols[-1]) + 1, max(0, y) + int(rows[-1]) + 1
    label = np.array([[0, x0 / size, y0 / size, x1 / size, y1 / size]], dtype=np.float32)

    return _photometric(rng, bg), label


def _photometric(rng: np.random.Generator, img: Image.Image) -> np.ndarray:
    """Blur, brightness/contrast and sensor noise over the whole picture, character included.

    Applied after the box is measured: these change pixel values, not where the character is
    (the blur radius stays below one pixel).
    """
    if rng.random() < 0.15:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    arr = np.asarray(img, dtype=np.float32)
    gain, bias = rng.uniform(0.75, 1.2), rng.uniform(-20, 20)
    arr = arr * np.float32(gain) + np.float32(bias)
    if rng.random() < 0.4:
        arr = arr + rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(2, 10))
    return np.clip(arr, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# a whole dataset
# --------------------------------------------------------------------------------------------

def generate(out_dir: str, num_train: int = 1000, num_val: int = 100, seed: int = 0, size: int = 256,
             progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, object]:
    """Write ``train.rec/.idx``, ``val.rec/.idx`` and ``dataset.json`` into ``out_dir``.

    Each file is written atomically; ``dataset.json`` comes last, so its presence with the
    expected counts means the set is complete. ``num_val=0`` writes an empty ``val.rec``
    (read as "no validation split") so a stale one from an earlier run cannot linger.
    ``progress(done, total)`` is called after every image. Returns the ``dataset.json`` dict.
    """
    from ssd.data.recordio_write import write_detection_rec

    if int(num_train) < 1 or int(num_val) < 0:
        raise DatasetError(f"need at least 1 training image and 0 or more validation images, "
                           f"got {num_train} and {num_val}")
    if int(size) < _MIN_SIZE or int(size) > 4096:
        raise DatasetError(f"image size must be within {_MIN_SIZE}..4096 pixels, got {size}")
    if int(seed) < 0:
        raise DatasetError(f"seed must be 0 or positive, got {seed}")
    num_train, num_val, seed, size = int(num_train), int(num_val), int(seed), int(size)
    total, done = num_train + num_val, 0

    def stream(split: str, n: int):
        nonlocal done
        for i in range(n):
            yield render_example(seed, i, split, size)
            done += 1
            if progress is not None:
                progress(done, total)

    info: Dict[str, object] = {"name": "synthetic-pikachu", "classes": list(CLASSES), "num_train": num_train,
                               "num_val": num_val, "seed": seed, "size": size, "generator": GENERATOR,
                               "complete": True}
    with staged_dir(out_dir, GENERATOR) as stage:   # the folder appears whole, or not at all
        for split, n in (("train", num_train), ("val", num_val)):
            write_detection_rec(os.path.join(stage, f"{split}.rec"), stream(split, n),
                                os.path.join(stage, f"{split}.idx"))
        atomic_write_json(os.path.join(stage, "dataset.json"), info)
    return info

