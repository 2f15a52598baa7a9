"""Training batches: augmented, normalized images and -1-padded labels, made in a producer thread.

The thread overlaps numpy/PIL work (which releases the GIL) with MXNet's compute.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from ssd.base.errors import ImageError
from ssd.data.augment import AugmentConfig, augment
from ssd.data.preprocess import MEAN, STD, normalize_batch

MIN_LABEL_ROWS = 3  # MultiBoxTarget's GPU kernel wants at least three label rows per image


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
