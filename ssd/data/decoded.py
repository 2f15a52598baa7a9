"""A split ready for many epochs: decoded once, in memory for small images, on disk for photos.

Training reads every image once per epoch; decoding a 1920×1080 JPEG costs more than TinySSD's
forward pass on it, so small images are decoded into memory and large camera-trap photos into
the decode-once cache (``ssd.data.cache``), resized to the network's input.
"""
from __future__ import annotations

import os
from typing import Optional

from ssd.data.cache import cached_dataset
from ssd.data.cct import KIND as COCO_KIND
from ssd.data.dataset import InMemoryDataset
from ssd.data.voc import KIND as VOC_KIND

#: Datasets of photos on disk, decoded once into the on-disk cache (the others fit in memory).
PHOTO_KINDS = (COCO_KIND, VOC_KIND)


def prepare_split(ds, size: int, kind: str, data_root: str, split: str, limit: Optional[int],
                   cache: bool = True):
    """Decode a split once: in memory for small images, the on-disk cache for large photos.

    With ``cache=False`` large photos are decoded from disk every epoch (the baseline the
    cache benchmark compares against).
    """
    if ds is None or limit == 0:
        return None
    if limit is not None and limit < len(ds):
        ds = _Subset(ds, limit)
    if kind in PHOTO_KINDS:
        if not cache:
            return ds
        return _keep_ignored(cached_dataset(ds, size, _cache_root(data_root), split), ds)
    return _keep_ignored(InMemoryDataset.from_dataset(ds), ds)


#: Per-item lists evaluation reads beside the labels: what it ignores (Pascal VOC, COCO).
IGNORED = ("difficult_masks", "crowd_regions")


def _keep_ignored(prepared, source):
    """``prepared`` with the source's ``difficult_masks`` and ``crowd_regions`` for the items it kept.

    Why: validation during training scores the prepared split, and VOC07 mAP ignores difficult boxes,
    COCO's scoring crowd regions."""
    kept = getattr(prepared, "indices", None)
    if getattr(source, "crowd_classes", None) is not None:
        prepared.crowd_classes = list(source.crowd_classes)   # what the regions' class indices name
    for name in IGNORED:
        per_item = getattr(source, name, None)
        if per_item is not None:
            setattr(prepared, name, [per_item[i] for i in (kept if kept is not None else range(len(prepared)))])
    return prepared


def _cache_root(data_root: str) -> str:
    """``<folder>/.ssd_cache``; for a set named by its JSON file, ``.ssd_cache-<stem>`` beside it
    (a folder holding train.json and val.json keeps one cache per file)."""
    if os.path.isdir(data_root):
        return os.path.join(data_root, ".ssd_cache")
    folder, name = os.path.split(os.path.abspath(data_root))
    return os.path.join(folder, f".ssd_cache-{os.path.splitext(name)[0]}")


class _Subset:
    def __init__(self, ds, n: int) -> None:
        self.ds, self.n = ds, n
        self.classes, self.name = ds.classes, getattr(ds, "name", "")
        if getattr(ds, "crowd_classes", None) is not None:
            self.crowd_classes = ds.crowd_classes
        for name in IGNORED:
            if getattr(ds, name, None) is not None:
                setattr(self, name, getattr(ds, name)[:n])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if i >= self.n:
            raise IndexError(i)
        return self.ds[i]

    def labels(self):
        return [self.ds[i][1] for i in range(self.n)] if not hasattr(self.ds, "labels") else self.ds.labels()[:self.n]
