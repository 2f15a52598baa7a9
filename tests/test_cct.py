"""COCO Camera Traps loader: counts and skip reasons, class mapping, geometry, split, errors."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

try:
    from cct_fixture import ENA24_CLASSES, make_ena24_like
except ImportError:  # tests/ became a package
    from tests.cct_fixture import ENA24_CLASSES, make_ena24_like

from ssd.data import cct
from ssd.data.dataset import DatasetSplits, DetectionDataset, open_dataset
from ssd.base.errors import DatasetError, ImageError


@pytest.fixture(scope="module")
def ena(tmp_path_factory):
    return make_ena24_like(str(tmp_path_factory.mktemp("ena24")))


@pytest.fixture(scope="module")
def splits(ena):
    return cct.load_cct(ena["json_path"])


def _by_name(s):
    out = {}
    for ds in (s.train, s.val):
        if ds is None:
            continue
        for i, r in enumerate(ds.records):
            out[r.file_name] = (ds, i)
    return out


def test_counts_and_skip_reasons(ena, splits):
    assert isinstance(splits, DatasetSplits)
    assert splits.kind == "coco-camera-traps"
    assert len(splits.train) + len(splits.val) == ena["n_usable"]
    assert splits.skipped == ena["skipped"]
    # the reasons a person will read
    assert splits.skipped["image file missing"] == 2
    assert splits.skipped["corrupt image"] == 1
    assert splits.skipped["box with non-positive size"] == 2
    assert splits.skipped["box clipped"] == 1
    assert splits.skipped["box outside image"] == 1
    assert splits.skipped["category without boxes: Human"] == 1
    labels = splits.train.labels() + splits.val.labels()
    assert sum(l.shape[0] for l in labels) == ena["boxes_total"]
    assert sum(l.shape[0] == 0 for l in labels) == ena["empty_images"] > 0   # negatives kept
    names = _by_name(splits)
    for f in ena["missing_files"] + [ena["corrupt_file"]]:
        assert f not in names
    assert ena["truncated_file"] in names   # header is fine; the cache counts it at decode time


def test_class_mapping_drops_human(ena, splits):
    assert splits.classes == ena["classes"]
    assert "Human" not in splits.classes and len(splits.classes) == 22
    mapping = cct.class_mapping(splits)
    assert [m["index"] for m in mapping] == list(range(22))
    assert [m["id"] for m in mapping] == ena["class_ids"]
    assert mapping[8] == {"index": 8, "id": 9, "name": "Vehicle"}     # ids after Human shift by one
    assert mapping[-1] == {"index": 21, "id": 22, "name": "American Black Bear"}
    assert cct.class_mapping(splits.train) == mapping
    # ordered by original id although the JSON lists categories shuffled
    assert splits.classes == [n for c, n in enumerate(ENA24_CLASSES) if c != 8]


def test_class_mapping_fallback_for_other_datasets():
    from ssd.data.dataset import InMemoryDataset

    ds = InMemoryDataset([], [], ["pikachu"])
    assert cct.class_mapping(ds) == [{"index": 0, "id": 0, "name": "pikachu"}]


def test_known_box_normalized_and_image_decodes(ena, splits):
    ds, i = _by_name(splits)[ena["known"]["file_name"]]
    lab = ds.labels()[i]
    np.testing.assert_allclose(lab, [ena["known"]["label"]], atol=1e-6)
    assert lab.dtype == np.float32
    img, lab2 = ds[i]
    assert img.shape == (1080, 1920, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(lab, lab2)
    # the "animal" is drawn where the box says: centre pixel is the class colour, corner is not
    assert np.abs(img[540, 960].astype(int) - img[20, 20].astype(int)).sum() > 100


def test_clipped_box_and_missing_size(ena, splits):
    ds, i = _by_name(splits)[ena["clipped"]["file_name"]]
    lab = ds.labels()[i]
    assert lab.shape[0] >= 2  # the drawn box(es) + the clipped one
    assert any(np.allclose(row, ena["clipped"]["label"], atol=1e-6) for row in lab)
    assert lab[:, 1:].min() >= 0 and lab[:, 1:].max() <= 1
    ds, i = _by_name(splits)["0010.jpg"]            # no width/height in the JSON
    assert (ds.records[i].width, ds.records[i].height) == ena["size"]


def test_labels_do_not_decode(splits, monkeypatch):
    def boom(path):
        raise AssertionError("labels() decoded an image")

    monkeypatch.setattr(cct, "decode_rgb", boom)
    assert len(splits.train.labels()) == len(splits.train)
    labs = splits.train.labels()
    if labs[0].size:
        labs[0][0, 1] = 99.0   # caller edits its copy...
    assert splits.train.labels()[0].max() <= 22   # ...the dataset is unchanged


def test_truncated_image_raises_image_error(ena, splits):
    ds, i = _by_name(splits)[ena["truncated_file"]]
    with pytest.raises(ImageError, match=ena["truncated_file"]):
        ds[i]


def test_split_deterministic_and_sequence_consistent(ena):
    a = cct.load_cct(ena["json_path"], seed=0)
    b = cct.load_cct(ena["json_path"], seed=0)
    names = lambda ds: [r.file_name for r in ds.records]  # noqa: E731
    assert names(a.train) == names(b.train) and names(a.val) == names(b.val)
    assert set(names(a.train)).isdisjoint(names(a.val))
    vals = set()
    for seed in range(6):
        s = cct.load_cct(ena["json_path"], seed=seed, check_images=False)
        val_names = names(s.val)
        vals.add(tuple(val_names))
        n = len(s.train) + len(s.val)
        assert 0.1 * n <= len(s.val) <= 0.35 * n
        train_seqs = {ena["seq_of"][f] for f in names(s.train)} - {None}
        val_seqs = {ena["seq_of"][f] for f in val_names} - {None}
        assert train_seqs.isdisjoint(val_seqs), f"seed {seed}: a sequence straddles the split"
    assert len(vals) > 1, "different seeds should give different splits"


def test_val_fraction_zero_and_invalid(ena):
    s = cct.load_cct(ena["json_path"], val_fraction=0.0, check_images=False)
    assert s.val is None
    # without the header check the garbage file is not detected at load (it is at decode)
    assert len(s.train) == ena["n_usable"] + 1 and "corrupt image" not in s.skipped
    with pytest.raises(DatasetError, match="val_fraction"):
        cct.load_cct(ena["json_path"], val_fraction=1.0)


def test_human_dropped_when_its_images_are_missing(ena, tmp_path):
    """The real ENA24 metadata lists human annotations whose images are gone."""
    doc = json.load(open(ena["json_path"]))
    doc["images"].append({"id": "h1", "file_name": "human_1.jpg", "width": 1920, "height": 1080})
    doc["annotations"].append({"id": "h1a", "image_id": "h1", "category_id": 8, "bbox": [10, 10, 100, 200]})
    p = tmp_path / "ena24.json"
    p.write_text(json.dumps(doc))
    s = cct.load_cct(str(p), ena["image_root"], check_images=False)
    assert "Human" not in s.classes
    assert s.skipped["image file missing"] == 3
    assert s.skipped["category without boxes: Human"] == 1


def test_dataset_types(splits):
    assert isinstance(splits.train, DetectionDataset)
    assert splits.train.classes == splits.classes
    assert splits.train.source_files()[0] == splits.json_path


# ----------------------------------------------------------------------------- detection & registry

def test_detect_and_open_dataset(ena, tmp_path):
    assert cct.detect(ena["root"])
    assert not cct.detect(str(tmp_path))
    (tmp_path / "results.json").write_text(json.dumps(
        {"info": {}, "detection_categories": {"1": "animal"}, "images": []}))   # MegaDetector output
    assert not cct.detect(str(tmp_path))
    s = open_dataset(ena["root"])
    assert s.kind == "coco-camera-traps" and s.image_root == ena["image_root"]
    assert len(s.train) + len(s.val) == ena["n_usable"]


def test_several_json_files(ena, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(ena["root"], root)
    shutil.copy(root / "ena24.json", root / "other.json")
    assert cct.find_cct_json(str(root)).endswith("ena24.json")   # clearly named wins
    os.rename(root / "ena24.json", root / "second.json")
    with pytest.raises(DatasetError, match="several COCO Camera Traps files"):
        cct.open_cct(str(root))


# ----------------------------------------------------------------------------- malformed input

@pytest.mark.parametrize("content, message", [
    ('{"images": [], "annotations": [', "not valid JSON"),
    ("", "is empty"),
    ("[1, 2, 3]", "top level is a list"),
    ('{"images": [], "annotations": []}', "missing 'categories'"),
    ('{"images": {}, "annotations": [], "categories": []}', "'images' must be a list"),
    ('{"images": [{"id": 1}], "annotations": [], "categories": []}', r"images\[0\] has no 'file_name'"),
    ('{"images": [], "annotations": [], "categories": [{"id": 1}]}', r"categories\[0\] has no 'name'"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1, "category_id": 1}],'
     ' "categories": [{"id": 1, "name": "x"}]}', r"annotations\[0\] has no 'image_id'"),
])
def test_malformed_json(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(DatasetError, match=message) as err:
        cct.load_cct(str(p))
    assert str(p) in str(err.value)


def test_missing_json_and_no_images(ena, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        cct.load_cct(str(tmp_path / "nope.json"))
    shutil.copy(ena["json_path"], tmp_path / "ena24.json")
    with pytest.raises(DatasetError, match="no usable images"):
        cct.load_cct(str(tmp_path / "ena24.json"))
