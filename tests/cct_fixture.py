"""A small COCO Camera Traps folder shaped like ENA24, with the mess real LILA metadata has.

``make_ena24_like`` writes real 1920×1080 JPEGs (coloured ellipses where the boxes are, so a
tiny model could in principle learn them) and an ``ena24.json`` with ENA24's 23 categories
(id 8 "Human" has no annotation, as in the real set where human images were removed), plus:
listed-but-missing files, a garbage file, a truncated JPEG (readable header, fails full
decode), images without boxes, a box of zero width, one of negative height, one partly and one
fully outside its image, an image-level annotation without bbox, an image without width/height
in the JSON, and ``seq_id`` on most images. It returns what a correct loader must report.
"""
from __future__ import annotations

import io
import json
import os
from typing import Any, Dict, List

import numpy as np
from PIL import Image, ImageDraw

ENA24_CLASSES = [
    "Bird", "Eastern Gray Squirrel", "Eastern Chipmunk", "Woodchuck", "Wild Turkey", "White_Tailed_Deer",
    "Virginia Opossum", "Eastern Cottontail", "Human", "Vehicle", "Striped Skunk", "Red Fox",
    "Eastern Fox Squirrel", "Northern Raccoon", "Grey Fox", "Horse", "Dog", "American Crow", "Chicken",
    "Domestic Cat", "Coyote", "Bobcat", "American Black Bear",
]
HUMAN_ID = 8

# Image roles by index (only those < n_images are used).
KNOWN = 0            # one Vehicle box at the centre half of the image
ZERO_WIDTH = 1       # + a box of width 0
NEG_HEIGHT = 2       # + a box of negative height
CLIPPED = 4          # + a box running off the right edge
OUTSIDE = 6          # + a box entirely right of the image
IMAGE_LEVEL = 7      # + an annotation without bbox
NO_SIZE = 9          # width/height absent from the JSON
CORRUPT = 11         # garbage bytes: fails at header check
TRUNCATED = 23       # valid header, truncated data: fails only at full decode
MISSING = (5, 17)    # listed, not on disk
EMPTY = (3, 8, 14, 29)
N_NO_SEQ = 4         # the last images have no seq_id (split per image)


def _colour(cid: int) -> tuple:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((cid * 0.137) % 1.0, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _background(size: tuple, seed: int) -> np.ndarray:
    """A smooth, slightly textured green-brown scene: cheap to make and to JPEG-encode."""
    w, h = size
    rng = np.random.RandomState(seed)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    wave = 0.5 + 0.5 * np.sin(6 * xx + 3 * yy + rng.rand() * 6)
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = 70 + 50 * yy + 20 * wave
    img[..., 1] = 90 + 40 * (1 - yy) + 25 * wave
    img[..., 2] = 50 + 20 * wave
    return np.clip(img, 0, 255).astype(np.uint8)


def make_ena24_like(root: str, n_images: int = 40, seed: int = 0, size: tuple = (1920, 1080)) -> Dict[str, Any]:
    """Write ``root/ena24.json`` and ``root/images/*.jpg``; return paths and expected results.

    Returned keys: ``json_path``, ``root``, ``image_root``, ``n_listed``, ``n_usable``
    (images the loader keeps with ``check_images=True``), ``n_decodable`` (also decodable in
    full), ``classes`` (kept class names in index order), ``class_ids`` (their original ids),
    ``boxes_total``, ``boxes_per_class`` (name -> count), ``empty_images``, ``skipped``
    (reason -> count, as ``ssd.data.skip_reasons`` spells them), ``missing_files``, ``corrupt_file``,
    ``truncated_file``, ``known`` / ``clipped`` (``file_name`` and expected label row),
    ``seq_of`` (file_name -> seq_id or None), ``size``.
    """
    W, H = size
    rng = np.random.RandomState(seed)
    image_dir = os.path.join(root, "images")
    os.makedirs(image_dir, exist_ok=True)
    base = _background(size, seed)

    animal_ids = [c for c in range(len(ENA24_CLASSES)) if c != HUMAN_ID]
    next_cls = iter(np.tile(animal_ids, 100).tolist())

    images: List[Dict[str, Any]] = []
    annotations: List[Dict[str, Any]] = []
    skipped: Dict[str, int] = {}
    boxes_per_class: Dict[int, int] = {}
    seq_of: Dict[str, Any] = {}
    missing_files, corrupt_file, truncated_file = [], None, None
    empty_images = 0
    boxes_total = 0
    n_seq_images = max(n_images - N_NO_SEQ, 0)

    def bump(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    def ann(iid: str, cid: int, bbox: Any = None) -> None:
        a: Dict[str, Any] = {"id": f"ann{len(annotations)}", "image_id": iid, "category_id": cid}
        if bbox is not None:
            a["bbox"] = bbox
        annotations.append(a)

    for i in range(n_images):
        fname = f"{i + 1:04d}.jpg"
        iid = f"ena24_{i + 1:04d}"
        entry: Dict[str, Any] = {"id": iid, "file_name": fname, "width": W, "height": H,
                                 "location": f"loc{i % 5}", "datetime": f"2020-06-{1 + i % 28:02d} 12:00:00"}
        seq = f"seq{i // 3:03d}" if i < n_seq_images else None
        if seq is not None:
            entry["seq_id"] = seq
            entry["frame_num"] = i % 3
        seq_of[fname] = seq
        if i == NO_SIZE:
            del entry["width"], entry["height"]
        images.append(entry)

        usable = i not in MISSING and i != CORRUPT
        valid: List[tuple] = []        # (cid, x1, y1, x2, y2) pixels as drawn and expected
        if i == KNOWN:
            valid.append((9, W // 4, H // 4, W // 4 + W // 2, H // 4 + H // 2))
        elif i not in EMPTY:
            for _ in range(1 + int(rng.rand() < 0.4)):
                bw = int(W * rng.uniform(0.06, 0.35))
                bh = int(H * rng.uniform(0.08, 0.4))
                x = int(rng.randint(0, W - bw))
                y = int(rng.randint(0, H - bh))
                valid.append((next(next_cls), x, y, x + bw, y + bh))
        for cid, x1, y1, x2, y2 in valid:
            ann(iid, cid, [x1, y1, x2 - x1, y2 - y1])

        if i == ZERO_WIDTH:
            ann(iid, 0, [100, 100, 0, 50])
            if usable:
                bump("box with non-positive size")
        if i == NEG_HEIGHT:
            ann(iid, 1, [100, 100, 50, -20])
            if usable:
                bump("box with non-positive size")
        if i == CLIPPED:
            bx, by, bw, bh = int(W * 0.9), int(H * 0.3), int(W * 0.2), int(H * 0.2)
            ann(iid, 2, [bx, by, bw, bh])
            valid.append((2, bx, by, W, by + bh))
            if usable:
                bump("box clipped")
        if i == OUTSIDE:
            ann(iid, 3, [W + 10, 10, 50, 50])
            if usable:
                bump("box outside image")
        if i == IMAGE_LEVEL:
            ann(iid, 4)   # image-level label, as LILA sets have
            if usable:
                bump("annotation without bbox (image-level label)")

        path = os.path.join(image_dir, fname)
        if i in MISSING:
            missing_files.append(fname)
            bump("image file missing")
            continue
        if i == CORRUPT:
            with open(path, "wb") as fh:
                fh.write(b"this is not a JPEG\n" + rng.bytes(2000))
            corrupt_file = fname
            bump("corrupt image")
            continue

        canvas = Image.fromarray(base)
        draw = ImageDraw.Draw(canvas)
        for cid, x1, y1, x2, y2 in valid:
            draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=_colour(cid), outline=(20, 20, 20), width=4)
        for cid, *_ in valid:
            boxes_per_class[cid] = boxes_per_class.get(cid, 0) + 1
        boxes_total += len(valid)
        empty_images += not valid
        buf = io.BytesIO()
        canvas.save(buf, format="JPEG", quality=80)
        data = buf.getvalue()
        if i == TRUNCATED:
            data = data[: len(data) * 2 // 5]
            truncated_file = fname
        with open(path, "wb") as fh:
            fh.write(data)

    kept_ids = sorted(boxes_per_class)
    for cid in range(len(ENA24_CLASSES)):
        if cid not in boxes_per_class:
            bump(f"category without boxes: {ENA24_CLASSES[cid]}")

    categories = [{"id": c, "name": n} for c, n in enumerate(ENA24_CLASSES)]
    order = rng.permutation(len(categories))   # ids out of order: the loader must sort them
    doc = {
        "info": {"version": "fixture", "description": "ENA24-like COCO Camera Traps fixture"},
        "categories": [categories[k] for k in order],
        "images": images,
        "annotations": annotations,
    }
    json_path = os.path.join(root, "ena24.json")
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)

    n_bad_files = sum(1 for i in MISSING if i < n_images) + int(CORRUPT < n_images)
    clipped = None
    if CLIPPED < n_images:
        clipped = {"file_name": f"{CLIPPED + 1:04d}.jpg",
                   "label": [kept_ids.index(2), int(W * 0.9) / W, int(H * 0.3) / H, 1.0,
                             (int(H * 0.3) + int(H * 0.2)) / H]}
    return {
        "json_path": json_path,
        "root": root,
        "image_root": image_dir,
        "size": size,
        "n_listed": n_images,
        "n_usable": n_images - n_bad_files,
        "n_decodable": n_images - n_bad_files - int(TRUNCATED < n_images),
        "classes": [ENA24_CLASSES[c] for c in kept_ids],
        "class_ids": kept_ids,
        "boxes_total": boxes_total,
        "boxes_per_class": {ENA24_CLASSES[c]: boxes_per_class[c] for c in kept_ids},
        "empty_images": empty_images,
        "skipped": skipped,
        "missing_files": missing_files,
        "corrupt_file": corrupt_file,
        "truncated_file": truncated_file,
        "known": {"file_name": f"{KNOWN + 1:04d}.jpg",
                  "label": [kept_ids.index(9) if 9 in kept_ids else -1, 0.25, 0.25, 0.75, 0.75]},
        "clipped": clipped,
        "seq_of": seq_of,
    }
