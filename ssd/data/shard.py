"""A worker's share of a training set: a fixed list of indices into the full dataset.

Distributed training (``kvstore dist_sync``) gives each of N workers its own slice so that
together they read every image once per epoch. Synchronous training also needs every worker
to take the same number of steps, or the ones with more steps wait forever for the others'
gradients: so shards are equal in size, and the ``n mod N`` images left over are dropped
(and reported). The slice is strided (``rank, rank + N, …``) and depends only on
``(n, rank, N)``: the same on every machine, every run and every resume.
"""
from __future__ import annotations

from typing import Iterable, List, Set

import numpy as np

from ssd.base.errors import SSDError
from ssd.data.dataset import DetectionDataset, Sample


def shard_indices(n: int, rank: int, num_workers: int) -> List[int]:
    """Indices of worker ``rank``'s shard of ``n`` images: equal sizes, the remainder dropped."""
    if num_workers < 1 or not 0 <= rank < num_workers:
        raise SSDError(f"worker rank {rank} is outside 0..{num_workers - 1}")
    usable = n - n % num_workers
    if usable == 0:
        raise SSDError(f"the training split has {n} image(s): too few for {num_workers} workers "
                       "(each worker needs at least one)")
    return list(range(rank, usable, num_workers))


class Shard(DetectionDataset):
    """The images ``indices`` of ``dataset``, renumbered from 0; records which it was asked for.

    ``seen`` holds the indices (of the full dataset) that were read through this shard, so a
    test can prove a worker never touched another worker's images. ``image_path`` and
    ``source_files`` are passed through when the dataset has them, so the decode-once cache
    builds a shard's cache from file paths just as it would the whole split's.
    """

    def __init__(self, dataset: DetectionDataset, indices: Iterable[int], label: str = "") -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.classes = list(dataset.classes)
        self.name = f"{getattr(dataset, 'name', '')}{label}"
        self.seen: Set[int] = set()
        if callable(getattr(dataset, "image_path", None)):
            self.image_path = self._image_path
        if callable(getattr(dataset, "source_files", None)):
            self.source_files = dataset.source_files

    def __len__(self) -> int:
        return len(self.indices)

    def _global(self, idx: int) -> int:
        if not -len(self.indices) <= idx < len(self.indices):
            raise IndexError(idx)
        g = self.indices[idx]
        self.seen.add(g)
        return g

    def __getitem__(self, idx: int) -> Sample:
        return self.dataset[self._global(int(idx))]

    def _image_path(self, idx: int) -> str:
        return self.dataset.image_path(self._global(int(idx)))

    def labels(self) -> List[np.ndarray]:
        """The shard's labels, without decoding images where the dataset allows it."""
        if type(self.dataset).labels is DetectionDataset.labels:  # would decode every image
            return [self[i][1] for i in range(len(self))]
        every = self.dataset.labels()
        return [every[i] for i in self.indices]


def first_images(dataset: DetectionDataset, n: int) -> DetectionDataset:
    """The first ``n`` images (``--limit-train``), or the dataset itself when it is not larger."""
    return dataset if n is None or n >= len(dataset) else Shard(dataset, range(n))
