"""Decode-once cache: built once, reused without decoding, invalidated by source changes, atomic."""
from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest

try:
    from cct_fixture import make_ena24_like
except ImportError:  # tests/ became a package
    from tests.cct_fixture import make_ena24_like

from ssd.data import cache
from ssd.data import cct
from ssd.data.dataset import InMemoryDataset

SIZE = 64


@pytest.fixture(scope="module")
def ena_master(tmp_path_factory):
    return make_ena24_like(str(tmp_path_factory.mktemp("ena_master")), n_images=30)


@pytest.fixture
def ena(ena_master, tmp_path):
    """A private copy: these tests edit files."""
    root = tmp_path / "ena"
    shutil.copytree(ena_master["root"], root)
    out = dict(ena_master)
    out.update(root=str(root), json_path=str(root / "ena24.json"), image_root=str(root / "images"))
    return out


@pytest.fixture
def decodes(monkeypatch):
    """Count calls of the cache's decoder."""
    calls = []
    real = cache._decode_resized

    def counting(path, size):
        calls.append(path)
        return real(path, size)

    monkeypatch.setattr(cache, "_decode_resized", counting)
    return calls


def _all(ena):
    return cct.load_cct(ena["json_path"], val_fraction=0.0).train


def test_built_once_then_reused_without_decoding(ena, tmp_path, decodes):
    ds = _all(ena)
    root = str(tmp_path / "cache")
    progress = []
    c1 = cache.cached_dataset(ds, SIZE, root, "train", progress=lambda d, t: progress.append((d, t)))
    assert len(decodes) == len(ds)
    assert progress[-1] == (len(ds), len(ds))
    assert isinstance(c1, InMemoryDataset)
    img, lab = c1[0]
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    assert not img.flags.writeable          # a view of the read-only memmap

    # a fresh load of the same, unchanged folder: no decoding at all
    ds2 = _all(ena)
    c2 = cache.cached_dataset(ds2, SIZE, root, "train")
    assert len(decodes) == len(ds)
    assert c2.key == c1.key and len(c2) == len(c1)
    for i in range(len(c1)):
        np.testing.assert_array_equal(c1[i][0], c2[i][0])
        np.testing.assert_array_equal(c1[i][1], c2[i][1])
    # labels match the source for every cached item
    src = ds.labels()
    for i, j in enumerate(c2.indices):
        np.testing.assert_array_equal(c2.labels()[i], src[j])


def test_cached_pixels_match_full_decode(ena, tmp_path):
    ds = _all(ena)
    c = cache.cached_dataset(ds, SIZE, str(tmp_path / "cache"), "train")
    ref = InMemoryDataset.from_dataset(_Subset(ds, c.indices[:3]), SIZE)
    for i in range(3):
        diff = np.abs(c[i][0].astype(int) - ref[i][0].astype(int)).mean()
        assert diff < 6, f"draft-mode decode differs too much from a full decode ({diff:.1f})"


class _Subset(InMemoryDataset):
    def __init__(self, ds, idx):  # decodes only a few images
        super().__init__([ds[i][0] for i in idx], [ds[i][1] for i in idx], ds.classes)


def test_corrupt_image_counted_at_build(ena, tmp_path):
    ds = _all(ena)
    c = cache.cached_dataset(ds, SIZE, str(tmp_path / "cache"), "train")
    assert c.skipped == {"corrupt image": 1}               # the truncated JPEG
    assert len(c) == len(ds) - 1 == ena["n_decodable"]
    bad = [r.file_name for r in ds.records].index(ena["truncated_file"])
    assert bad not in c.indices
    again = cache.cached_dataset(_all(ena), SIZE, str(tmp_path / "cache"), "train")
    assert again.skipped == {"corrupt image": 1}            # remembered by the reused cache


def test_invalidated_when_an_image_changes(ena, tmp_path, decodes):
    root = str(tmp_path / "cache")
    c1 = cache.cached_dataset(_all(ena), SIZE, root, "train")
    n = len(decodes)
    path = os.path.join(ena["image_root"], ena["known"]["file_name"])
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))   # re-saved / replaced
    c2 = cache.cached_dataset(_all(ena), SIZE, root, "train")
    assert c2.key != c1.key and len(decodes) == 2 * n
    # the stale cache was removed; only the new one remains
    assert sorted(os.listdir(os.path.dirname(c2.npy_path))) == sorted(
        [f"cache-{c2.key}.npy", f"cache-{c2.key}.json"])


def test_invalidated_when_json_changes(ena, tmp_path, decodes):
    root = str(tmp_path / "cache")
    c1 = cache.cached_dataset(_all(ena), SIZE, root, "train")
    with open(ena["json_path"], "a") as fh:
        fh.write("\n")                     # same content for the loader, new size + mtime
    c2 = cache.cached_dataset(_all(ena), SIZE, root, "train")
    assert c2.key != c1.key


def test_key_depends_on_size_and_split(ena):
    ds = _all(ena)
    k = cache.dataset_fingerprint(ds, SIZE, "train")
    assert k == cache.dataset_fingerprint(_all(ena), SIZE, "train")
    assert k != cache.dataset_fingerprint(ds, SIZE + 1, "train")
    assert k != cache.dataset_fingerprint(ds, SIZE, "val")
    s = cct.load_cct(ena["json_path"], seed=0)
    assert cache.dataset_fingerprint(s.train, SIZE, "train") != k     # different image list


def test_interrupted_build_leaves_nothing(ena, tmp_path, monkeypatch):
    root = str(tmp_path / "cache")
    real = cache._decode_resized
    calls = []

    def dies(path, size):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(path, size)

    monkeypatch.setattr(cache, "_decode_resized", dies)
    with pytest.raises(KeyboardInterrupt):
        cache.cached_dataset(_all(ena), SIZE, root, "train")
    leftovers = [f for d, _, fs in os.walk(root) for f in fs]
    assert leftovers == []
    monkeypatch.setattr(cache, "_decode_resized", real)
    c = cache.cached_dataset(_all(ena), SIZE, root, "train")
    assert len(c) == ena["n_decodable"]


def test_damaged_cache_is_rebuilt(ena, tmp_path, decodes):
    root = str(tmp_path / "cache")
    c1 = cache.cached_dataset(_all(ena), SIZE, root, "train")
    with open(c1.npy_path, "r+b") as fh:
        fh.truncate(1000)
    n = len(decodes)
    c2 = cache.cached_dataset(_all(ena), SIZE, root, "train")
    assert len(decodes) == 2 * n and len(c2) == len(c1)


def test_generic_dataset_and_pickle(tmp_path):
    rng = np.random.RandomState(0)
    imgs = [rng.randint(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(4)]
    labs = [np.array([[0, .1, .1, .5, .5]], np.float32)] * 3 + [np.zeros((0, 5), np.float32)]
    ds = InMemoryDataset(imgs, labs, ["thing"], name="mem")
    c = cache.cached_dataset(ds, 32, str(tmp_path), "train")
    assert len(c) == 4 and c[3][1].shape == (0, 5) and c[0][0].shape == (32, 32, 3)
    c2 = pickle.loads(pickle.dumps(c))
    assert len(pickle.dumps(c)) < 10_000        # pickles the path, not the pixels
    np.testing.assert_array_equal(c2[1][0], c[1][0])


def test_single_file_dataset_keyed_on_its_file(tmp_path):
    """A RecordIO-style dataset without source_files() is keyed on its rec_path's size + mtime."""
    rec = tmp_path / "train.rec"
    rec.write_bytes(b"x" * 10)
    ds = InMemoryDataset([np.zeros((8, 8, 3), np.uint8)], [np.zeros((0, 5), np.float32)], ["a"])
    ds.rec_path = str(rec)
    k1 = cache.dataset_fingerprint(ds, 32, "train")
    rec.write_bytes(b"y" * 11)
    assert cache.dataset_fingerprint(ds, 32, "train") != k1


def test_truncated_jpeg_is_counted_even_after_gluoncv_import(tmp_path):
    """GluonCV sets PIL's LOAD_TRUNCATED_IMAGES globally; the cache must still refuse cut files."""
    import gluoncv  # noqa: F401  (the import is the point)
    from PIL import Image, ImageFile

    from ssd.data.cache import _decode_resized

    ImageFile.LOAD_TRUNCATED_IMAGES = True
    path = tmp_path / "cut.jpg"
    buf = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(buf).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception):
        _decode_resized(str(path), 64)
