"""Decode-once training cache: camera-trap photos are decoded and resized one time, not per epoch.

A 1920×1080 JPEG costs tens of milliseconds to decode, far more than a TinySSD step needs
per image at 256×256, so an epoch over ENA24 that re-decodes every file is dominated by JPEG
decoding. The cache decodes each image once — with PIL's JPEG *draft* mode, which lets
libjpeg decode directly at 1/2, 1/4 or 1/8 scale — resizes it to ``size``×``size`` and
stores all of them as one uint8 ``.npy`` array ``(N, size, size, 3)`` that is memory-mapped
read-only afterwards (the OS page cache keeps it hot; RAM is not required to hold it).

Files in ``cache_dir`` (one cache per folder; older ones are removed after a rebuild):

* ``cache-<key>.npy`` — the pixels, written sequentially to a temp file and moved into place
  (``ssd.base.atomic.atomic_path``). Sequential ``write`` rather than a writable memmap, because a
  full disk then raises ``OSError`` instead of killing the process with SIGBUS.
* ``cache-<key>.json`` — labels, classes and which source images made it in, written last:
  it is the commit marker, so a killed build never leaves a cache that looks valid.

The key (``dataset_fingerprint``) covers the target size, the split name and the sources
(size + mtime of the JSON and of every image file), so editing, replacing or adding an image,
or re-downloading the JSON, invalidates the cache. Labels are keyed too where the dataset
can give them without decoding.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.errors import DatasetError, ImageError
from ssd.base.json_file import MAX_STATE_BYTES, read_json_file
from ssd.data.dataset import DetectionDataset, InMemoryDataset, Sample
from ssd.data.decoding import PIL_ERRORS, strict_decoding, upright_rgb
from ssd.data.image_formats import open_image
from ssd.data.pixels import load_declared
from ssd.data.skip_reasons import SKIP_CORRUPT, SKIP_MISSING

CACHE_VERSION = 2

Progress = Callable[[int, int], None]   # progress(done, total)

_STALE_TMP_S = 3600.0   # a temp file untouched this long belongs to a killed build


class _Rows(Sequence):
    """Read-only, index-mapped view of the cached array (so ``.images`` works like a list)."""

    def __init__(self, array: np.ndarray, indices: Sequence[int]) -> None:
        self._array, self._indices = array, indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return np.asarray(self._array[self._indices[i]])


class CachedDataset(InMemoryDataset):
    """Images served from a memory-mapped cache file: ``(read-only uint8 view, label copy)``.

    An ``InMemoryDataset`` so code that skips pre-decoding for in-memory data also skips it
    here. The image views are read-only: augmentations must produce new arrays (which they
    do anyway when cropping/resizing), never edit the cache in place.

    ``indices[i]`` is the index in the source dataset of cached item ``i``; images that
    failed to decode are absent and counted in ``skipped``. Pickling re-opens the file by
    path instead of copying gigabytes into worker processes.
    """

    def __init__(self, npy_path: str, indices: Sequence[int], labels: Sequence[np.ndarray],
                 classes: Sequence[str], name: str, key: str, size: int,
                 skipped: Optional[Dict[str, int]] = None) -> None:
        # InMemoryDataset.__init__ would list() the images; a memmap must stay lazy.
        self.npy_path = npy_path
        self.indices = [int(i) for i in indices]
        self._labels = [np.asarray(l, dtype=np.float32).reshape(-1, 5) for l in labels]
        self.classes = list(classes)
        self.name = name
        self.key = key
        self.size = int(size)
        self.skipped = dict(skipped or {})
        self._open()

    def _open(self) -> None:
        self._array = np.load(self.npy_path, mmap_mode="r")
        self.images = _Rows(self._array, self.indices)  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int) -> Sample:
        return np.asarray(self._array[self.indices[idx]]), self._labels[idx].copy()

    def labels(self) -> List[np.ndarray]:
        return [l.copy() for l in self._labels]

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_array", None)
        state.pop("images", None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open()


# --------------------------------------------------------------------------------------------
# Fingerprint
# --------------------------------------------------------------------------------------------

def _stat(path: str) -> List[Any]:
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


def _labels_are_cheap(dataset: DetectionDataset) -> bool:
    """The base ``labels()`` decodes every image; only use labels when a subclass overrides it."""
    return type(dataset).labels is not DetectionDataset.labels


# Single-file datasets (e.g. ssd.data.recordio's ``rec_path``) name their file in one of these.
_PATH_ATTRS = ("json_path", "rec_path", "idx_path", "source_path", "path")


def _source_files(dataset: DetectionDataset) -> List[str]:
    """``dataset.source_files()`` when defined, else whichever well-known path attributes it has."""
    sources = getattr(dataset, "source_files", None)
    if callable(sources):
        return [str(p) for p in sources()]
    out = []
    for attr in _PATH_ATTRS:
        value = getattr(dataset, attr, None)
        if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
            out.append(os.fspath(value))
    return out


def dataset_fingerprint(dataset: DetectionDataset, size: int, split_name: str = "") -> str:
    """A key that changes whenever the cached pixels or labels would.

    Covers: cache format version, target size, split name, the dataset's type, name, length
    and classes; each source file's path, size and mtime (``dataset.source_files()``: for CCT
    the JSON then every image, so a split change shows up as a different file list; else a
    ``rec_path``/``idx_path``/``path``-style attribute naming its file); and a hash of the
    labels when they can be had without decoding. A dataset with neither is keyed on labels
    and metadata only — pixel edits it cannot see.
    """
    h = hashlib.sha256()

    def feed(obj: Any) -> None:
        h.update(json.dumps(obj, sort_keys=True, default=str).encode("utf-8"))
        h.update(b"\n")

    feed({"version": CACHE_VERSION, "size": int(size), "split": split_name,
          "type": f"{type(dataset).__module__}.{type(dataset).__qualname__}",
          "name": getattr(dataset, "name", ""), "len": len(dataset), "classes": list(dataset.classes)})
    for path in _source_files(dataset):
        feed(_stat(os.path.abspath(path)))
    if _labels_are_cheap(dataset):
        for lab in dataset.labels():
            arr = np.ascontiguousarray(np.asarray(lab, dtype=np.float32).reshape(-1, 5))
            h.update(str(arr.shape[0]).encode())
            h.update(arr.tobytes())
    return h.hexdigest()[:24]


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

def _decode_resized(path: str, size: int) -> np.ndarray:
    """Decode ``path`` straight to ``size``×``size`` RGB uint8.

    ``draft`` asks libjpeg for the smallest DCT scale (1/2, 1/4, 1/8) that is still at
    least ``size`` on both sides — for 1920×1080 -> 256 that is 480×270, roughly 10× less
    work than a full decode — then a bilinear resize finishes the job (the same squash to a
    square that ``InMemoryDataset.from_dataset`` does, so normalized boxes stay valid).
    """
    from PIL import Image

    with strict_decoding(), open_image(path) as im:  # a truncated JPEG must fail, not decode grey
        if im.format == "JPEG":
            im.draft("RGB", (size, size))
        load_declared(im)   # a 16-bit PNG's depth, which load() forgets
        rgb = upright_rgb(im)  # as detection sees it: turned, depth, transparency, colour profile
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def _resize_array(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    img = np.asarray(img, dtype=np.uint8)
    if img.shape[:2] != (size, size):
        img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    return img


# --------------------------------------------------------------------------------------------
# Build / reuse
# --------------------------------------------------------------------------------------------

def _paths(cache_dir: str, key: str) -> tuple:
    return (os.path.join(cache_dir, f"cache-{key}.npy"), os.path.join(cache_dir, f"cache-{key}.json"))


def _open_existing(cache_dir: str, key: str, size: int) -> Optional[CachedDataset]:
    """The cache for ``key`` if it is complete and consistent, else None (it will be rebuilt)."""
    npy, meta_path = _paths(cache_dir, key)
    if not (os.path.isfile(npy) and os.path.isfile(meta_path)):
        return None
    try:
        meta = read_json_file(meta_path, MAX_STATE_BYTES)
        if meta.get("version") != CACHE_VERSION or meta.get("key") != key or meta.get("size") != size:
            return None
        arr = np.load(npy, mmap_mode="r")
        total = int(meta["total"])
        if arr.dtype != np.uint8 or arr.shape != (total, size, size, 3):
            return None
        indices = meta["indices"]
        if len(indices) != len(meta["labels"]) or any(not 0 <= i < total for i in indices):
            return None
        return CachedDataset(npy, indices, [np.asarray(l, dtype=np.float32) for l in meta["labels"]],
                             meta.get("classes", []), meta.get("name", ""), key, size, meta.get("skipped", {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_cache(dataset: DetectionDataset, size: int, cache_dir: str, key: str,
                progress: Optional[Progress] = None) -> CachedDataset:
    """Return the cache of ``dataset`` at ``size`` for ``key``, building it if needed.

    Reuses ``cache_dir/cache-<key>.*`` when complete; otherwise decodes every image once
    (JPEG draft + resize for datasets exposing ``image_path(i)``, else ``dataset[i]`` +
    resize), skipping and counting images that fail to decode, and writes the cache
    atomically. ``progress(done, total)`` is called after each image of a build. Other
    caches in ``cache_dir`` are removed after a successful build (they are stale versions).
    """
    size = int(size)
    if size <= 0:
        raise ValueError(f"cache size must be positive, got {size}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", key or ""):
        raise ValueError(f"cache key must be a plain file-name token, got {key!r}")
    os.makedirs(cache_dir, exist_ok=True)
    hit = _open_existing(cache_dir, key, size)
    if hit is not None:
        return hit

    npy, meta_path = _paths(cache_dir, key)
    _check_space(cache_dir, len(dataset), size)
    indices, labels, skipped = _write_pixels(dataset, size, npy, progress)
    atomic_write_json(meta_path, {
        "version": CACHE_VERSION, "key": key, "size": size, "total": len(dataset),
        "name": getattr(dataset, "name", ""), "classes": list(dataset.classes),
        "indices": indices, "labels": [l.tolist() for l in labels], "skipped": skipped,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    _prune(cache_dir, key)
    return CachedDataset(npy, indices, labels, dataset.classes, getattr(dataset, "name", ""), key, size, skipped)


def _check_space(cache_dir: str, total: int, size: int) -> None:
    """Refuse a build the disk cannot hold, before writing a byte of it."""
    need = total * size * size * 3 + 1024 * 1024
    free = shutil.disk_usage(cache_dir).free
    if need > free:
        raise DatasetError(f"not enough disk space for the training cache in {cache_dir}: it needs "
                           f"{need / 1e9:.2f} GB ({total} images at {size}×{size}), {free / 1e9:.2f} GB is free; "
                           "free some space, choose a smaller input size or another cache folder")


def _write_pixels(dataset: DetectionDataset, size: int, npy: str, progress: Optional[Progress]):
    """Decode every image into the ``.npy`` file, row ``i`` at offset ``i``; ``(indices, labels, skipped)``.

    An image that fails to decode keeps a zero row (so offsets stay put) and is simply not indexed.
    """
    total = len(dataset)
    decode = _row_decoder(dataset, size)
    zero_row = bytes(size * size * 3)
    indices: List[int] = []
    labels: List[np.ndarray] = []
    skipped: Dict[str, int] = {}
    try:
        with atomic_path(npy) as tmp, open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "|u1", "fortran_order": False, "shape": (total, size, size, 3)})
            for i in range(total):
                try:
                    img, lab = decode(i)
                except FileNotFoundError:
                    skipped[SKIP_MISSING] = skipped.get(SKIP_MISSING, 0) + 1
                    img = None
                except (ImageError,) + PIL_ERRORS:
                    skipped[SKIP_CORRUPT] = skipped.get(SKIP_CORRUPT, 0) + 1
                    img = None
                if img is None:
                    fh.write(zero_row)
                else:
                    fh.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
                    indices.append(i)
                    labels.append(np.asarray(lab, dtype=np.float32).reshape(-1, 5))
                if progress is not None:
                    progress(i + 1, total)
    except OSError as err:
        raise DatasetError(f"could not write the training cache {npy}: {err.strerror or err}") from err
    return indices, labels, skipped


def _row_decoder(dataset: DetectionDataset, size: int) -> Callable[[int], tuple]:
    """``i -> (size×size RGB, label)``: JPEG draft from the file when the dataset names its paths."""
    path_of = getattr(dataset, "image_path", None)
    if callable(path_of):
        labels_src = dataset.labels()
        return lambda i: (_decode_resized(path_of(i), size), labels_src[i])

    def from_dataset(i: int) -> tuple:
        raw, lab = dataset[i]
        return _resize_array(raw, size), lab

    return from_dataset


def _prune(cache_dir: str, keep_key: str) -> None:
    """Remove other caches of this folder and temp files left by killed builds (best effort)."""
    keep = set(_paths(cache_dir, keep_key))
    now = time.time()
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        try:
            if name.startswith("cache-") and name.endswith((".npy", ".json")) and path not in keep:
                os.remove(path)
            elif name.startswith(".cache-") and name.endswith(".tmp") and now - os.path.getmtime(path) > _STALE_TMP_S:
                os.remove(path)
        except OSError:
            pass  # in use (Windows) or already gone: harmless, retried next build


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "split"


def cached_dataset(dataset: DetectionDataset, size: int, cache_root: str, split_name: str,
                   progress: Optional[Progress] = None) -> CachedDataset:
    """Fingerprint ``dataset`` and return its cache under ``cache_root/<split>-<size>/``.

    One folder per split and size, so a train and a val cache (or 256 and 512 versions)
    coexist; use one ``cache_root`` per dataset (e.g. ``<dataset>/.ssd-cache``) — two
    datasets sharing a root and split name would evict each other's caches.
    """
    key = dataset_fingerprint(dataset, size, split_name)
    return build_cache(dataset, size, os.path.join(cache_root, f"{_safe_name(split_name)}-{int(size)}"),
                       key, progress)
