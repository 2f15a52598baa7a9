"""The train/val split of a camera-trap set: by trigger sequence, stable, roughly class-stratified."""
from __future__ import annotations

import hashlib
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from ssd.data.cct_labels import CCTImage


def split_indices(records: Sequence[CCTImage], n_classes: int, val_fraction: float,
                  seed: int) -> Tuple[List[int], List[int]]:
    """Deterministic, sequence-consistent, roughly class-stratified train/val split.

    Images are grouped by ``seq_id`` (an image without one is its own group): frames of one
    trigger are near duplicates and must not straddle the split. Each group is ranked by a
    hash of ``(seed, group key)``, so a group's rank does not depend on the other groups and
    adding images barely moves existing ones between splits. Groups are stratified by their
    rarest class, and within that order a running quota sends a group to validation whenever
    that brings the validation share closer to ``val_fraction``, so every common class gets
    some validation images, and no class is left to validation alone. Returns (train, val)
    indices in the original order.
    """
    if val_fraction <= 0 or not records:
        return list(range(len(records))), []
    groups: Dict[str, List[int]] = {}
    for i, r in enumerate(records):
        key = f"seq:{r.seq_id}" if r.seq_id is not None else f"image:{r.image_id!r}"
        groups.setdefault(key, []).append(i)
    if len(groups) < 2:
        return list(range(len(records))), []

    box_counts = np.zeros(max(n_classes, 1), dtype=np.int64)
    for r in records:
        for c in r.label[:, 0].astype(int):
            box_counts[c] += 1

    def stratum(idxs: List[int]) -> int:
        present = {int(c) for i in idxs for c in records[i].label[:, 0]}
        return min(present, key=lambda c: (box_counts[c], c)) if present else -1

    def rank(key: str) -> str:
        return hashlib.sha1(f"{seed}\0{key}".encode("utf-8")).hexdigest()

    ordered = sorted(groups, key=lambda k: (stratum(groups[k]), rank(k)))
    val_keys = set()
    seen = in_val = 0
    for k in ordered:
        n = len(groups[k])
        target = val_fraction * (seen + n)
        if abs(in_val + n - target) < abs(in_val - target):
            val_keys.add(k)
            in_val += n
        seen += n
    _train_sees_every_class(groups, val_keys, records, rank)
    if not val_keys:  # tiny dataset: still give validation one group, one training also sees if any
        val_keys.add(min(groups, key=lambda k: (bool(_classes(groups, records, k)
                                                      - _classes(groups, records, *(set(groups) - {k}))), rank(k))))
    if len(val_keys) == len(groups):
        val_keys.discard(max(groups, key=rank))
    val = sorted(i for k in val_keys for i in groups[k])
    val_set = set(val)
    return [i for i in range(len(records)) if i not in val_set], val


def _train_sees_every_class(groups: Dict[str, List[int]], val_keys: set, records: Sequence[CCTImage],
                            rank: Callable[[str], str]) -> None:
    """Move back to training the validation groups holding a class no training group holds.

    Why: a class the model never trains on scores AP 0 whatever the training does; with a fifth
    held out, a class of one or two sequences often landed wholly in validation.
    """
    in_train = _classes(groups, records, *(k for k in groups if k not in val_keys))
    for key in sorted(val_keys, key=rank):
        if _classes(groups, records, key) - in_train:
            val_keys.discard(key)
            in_train |= _classes(groups, records, key)


def _classes(groups: Dict[str, List[int]], records: Sequence[CCTImage], *keys: str) -> set:
    """The class indices of the boxes in the groups ``keys``."""
    return {int(c) for k in keys for i in groups[k] for c in records[i].label[:, 0]}
