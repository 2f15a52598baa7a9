"""The d2l banana-detection layout (the Pikachu set's successor in the d2l book).

``banana-detection/bananas_{train,val}/label.csv`` with rows
``img_name,label,xmin,ymin,xmax,ymax`` (pixels of 256×256 images) and the images in
``bananas_{split}/images/``. One object per image, class 0 "banana".
"""
from __future__ import annotations

import csv
import os
from typing import List, Optional

import numpy as np

from ssd.data.dataset import DatasetSplits, DetectionDataset, Sample, register_format
from ssd.base.errors import DatasetError, ImageError

SPLITS = {"train": "bananas_train", "val": "bananas_val"}


def _root(path: str) -> Optional[str]:
    for cand in (path, os.path.join(path, "banana-detection")):
        if os.path.isfile(os.path.join(cand, SPLITS["train"], "label.csv")):
            return cand
    return None


class BananaDataset(DetectionDataset):
    def __init__(self, split_dir: str, classes: List[str]) -> None:
        self.split_dir, self.classes, self.name = split_dir, classes, os.path.basename(split_dir)
        csv_path = os.path.join(split_dir, "label.csv")
        self.items: List[tuple] = []
        try:
            with open(csv_path, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError) as err:
            raise DatasetError(f"{csv_path}: cannot read ({err})") from None
        if not rows or [c.strip() for c in rows[0][:6]] != ["img_name", "label", "xmin", "ymin", "xmax", "ymax"]:
            raise DatasetError(f"{csv_path}: expected the header img_name,label,xmin,ymin,xmax,ymax")
        for n, row in enumerate(rows[1:], start=2):
            try:
                name, cls, *box = row[:6]
                self.items.append((name, int(cls), [float(v) for v in box]))
            except (ValueError, TypeError):
                raise DatasetError(f"{csv_path}, line {n}: malformed row {row!r}") from None
        self._labels = [np.array([[c, *(np.asarray(b) / 256.0)]], dtype=np.float32) for _, c, b in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> Sample:
        from ssd.data.images import load_image

        name = self.items[idx][0]
        path = os.path.join(self.split_dir, "images", name)
        try:
            img = load_image(path).image
        except (ImageError, OSError) as err:
            raise DatasetError(f"{path}: {err}") from None
        w, h = img.size
        lab = self._labels[idx].copy()
        if (w, h) != (256, 256):  # labels are pixels of the image as stored
            lab[:, 1:5] *= np.array([256 / w, 256 / h, 256 / w, 256 / h], dtype=np.float32)
        return np.asarray(img), lab

    def labels(self) -> List[np.ndarray]:
        return list(self._labels)


def open_banana(path: str, **_: object) -> DatasetSplits:
    root = _root(path)
    if root is None:
        raise DatasetError(f"{path}: no bananas_train/label.csv")
    classes = ["banana"]
    train = BananaDataset(os.path.join(root, SPLITS["train"]), classes)
    val_dir = os.path.join(root, SPLITS["val"])
    val = BananaDataset(val_dir, classes) if os.path.isfile(os.path.join(val_dir, "label.csv")) else None
    return DatasetSplits(train, val, classes, "banana", path)


register_format("banana", lambda p: _root(p) is not None, open_banana)
