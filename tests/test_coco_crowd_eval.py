"""COCO crowd regions (``iscrowd: 1``) in evaluation, as COCO's own evaluation (pycocotools) treats them.

A crowd region is never a positive to find; a detection inside one (intersection over the detection's
own area at least the IoU threshold) that matches no real box is ignored, neither a true nor a false
positive. The loader keeps the regions beside the labels (never in them: they are not trained on).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from ssd.data.dataset import InMemoryDataset, open_dataset
from ssd.data.decoded import prepare_split
from ssd.inference.evaluation import evaluate


class _Fixed:
    """A detector that answers every image with the same boxes (normalized ``(class, score, box)`` rows)."""

    input_size = 32

    def __init__(self, rows, classes=("cat", "dog")):
        self.rows, self.classes = rows, list(classes)

    def predict_arrays(self, images, nms=0.45, floor=0.01, tap=None):
        ids = np.array([r[0] for r in self.rows], np.float32).reshape(-1)
        scores = np.array([r[1] for r in self.rows], np.float32).reshape(-1)
        boxes = np.array([r[2] for r in self.rows], np.float32).reshape(-1, 4)
        return [(ids, scores, boxes) for _ in images]


def _image_with_crowd(crowd_class=0):
    """One 100×100 image: a real cat at 0.1..0.4 and a crowd region of ``crowd_class`` over 0.5..1.0."""
    ds = InMemoryDataset([np.zeros((100, 100, 3), np.uint8)],
                         [np.array([[0, 0.1, 0.1, 0.4, 0.4]], np.float32)], ["cat", "dog"])
    ds.crowd_regions = [np.array([[crowd_class, 0.5, 0.5, 1.0, 1.0]], np.float32)]
    return ds


HIT = (0, 0.9, [0.1, 0.1, 0.4, 0.4])
IN_CROWD = (0, 0.95, [0.6, 0.6, 0.7, 0.7])          # small: IoU with the region 0.04, all of it inside


def test_detection_inside_a_crowd_region_is_neither_hit_nor_false_alarm():
    res = evaluate(_Fixed([HIT, IN_CROWD]), _image_with_crowd())
    assert res.map == pytest.approx(1.0)                # without the region it is a false alarm: AP 0.5
    assert res.num_boxes == 1 and res.crowd_regions == 1
    assert "1 crowd region" in res.table()


def test_a_crowd_region_is_never_a_positive_to_find():
    res = evaluate(_Fixed([HIT]), _image_with_crowd())
    assert res.map == pytest.approx(1.0) and res.num_boxes == 1


def test_mostly_outside_the_region_or_of_another_class_still_counts_as_false():
    mostly_out = (0, 0.95, [0.3, 0.6, 0.6, 0.9])    # a third of it inside the region
    assert evaluate(_Fixed([HIT, mostly_out]), _image_with_crowd()).map == pytest.approx(0.5)
    dog_region = _image_with_crowd(crowd_class=1)
    assert evaluate(_Fixed([HIT, IN_CROWD]), dog_region).map == pytest.approx(0.5)


def test_a_real_box_inside_a_crowd_region_is_still_found_first():
    ds = InMemoryDataset([np.zeros((100, 100, 3), np.uint8)],
                         [np.array([[0, 0.6, 0.6, 0.7, 0.7]], np.float32)], ["cat", "dog"])
    ds.crowd_regions = [np.array([[0, 0.5, 0.5, 1.0, 1.0]], np.float32)]
    dup = (0, 0.5, [0.6, 0.6, 0.7, 0.7])             # a second detection of the same cat, inside the region
    res = evaluate(_Fixed([(0, 0.9, [0.6, 0.6, 0.7, 0.7]), dup]), ds)
    assert res.map == pytest.approx(1.0)
    assert evaluate(_Fixed([(0, 0.9, [0.6, 0.6, 0.7, 0.7])]), InMemoryDataset(
        [np.zeros((100, 100, 3), np.uint8)], [np.zeros((0, 5), np.float32)], ["cat", "dog"])).map == 0.0


def _coco_folder(root, crowd_bbox=(50, 40, 50, 40)):
    os.makedirs(root, exist_ok=True)
    for n in range(2):
        Image.fromarray(np.full((80, 100, 3), 90, np.uint8)).save(os.path.join(root, f"{n}.jpg"))
    anns = [{"id": 1, "image_id": 0, "category_id": 7, "bbox": [10, 8, 30, 24], "iscrowd": 0},
            {"id": 2, "image_id": 0, "category_id": 7, "bbox": list(crowd_bbox), "iscrowd": 1,
             "segmentation": {"counts": [0, 5], "size": [80, 100]}},
            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [0, 0, 20, 20], "iscrowd": 0}]
    with open(os.path.join(root, "coco.json"), "w") as fh:
        json.dump({"images": [{"id": n, "file_name": f"{n}.jpg", "width": 100, "height": 80} for n in range(2)],
                   "annotations": anns, "categories": [{"id": 7, "name": "person"}]}, fh)


def test_the_coco_loader_keeps_crowd_regions_beside_the_labels(tmp_path):
    _coco_folder(str(tmp_path))
    ds = open_dataset(str(tmp_path), val_fraction=0).train
    assert [lab.shape[0] for lab in ds.labels()] == [1, 1]            # not trained on
    regions = ds.crowd_regions
    assert regions[0].tolist()[0] == pytest.approx([0, 0.5, 0.5, 1.0, 1.0]) and regions[1].shape == (0, 5)
    prepared = prepare_split(ds, 32, "coco-camera-traps", str(tmp_path), "train", None)
    assert prepared.crowd_regions[0].tolist()[0] == pytest.approx([0, 0.5, 0.5, 1.0, 1.0])
    assert prepare_split(ds, 32, "coco-camera-traps", str(tmp_path), "t", 1).crowd_regions[0].shape == (1, 5)


def test_roboflow_splits_keep_crowd_regions_with_the_joint_class_indices(tmp_path):
    _coco_folder(str(tmp_path / "train"))
    _coco_folder(str(tmp_path / "valid"))
    splits = open_dataset(str(tmp_path))
    assert splits.val.crowd_regions[0].tolist()[0] == pytest.approx([0, 0.5, 0.5, 1.0, 1.0])


def _crowd_only_folder(root, person_box=False):
    """A cat box on each of two images, and on the first a crowd region of "person", a category
    with no ordinary box (unless ``person_box``: then the second image has one)."""
    os.makedirs(root, exist_ok=True)
    for n in range(2):
        Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(os.path.join(root, f"{n}.jpg"))
    anns = [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [10, 10, 30, 30], "iscrowd": 0},
            {"id": 2, "image_id": 0, "category_id": 2, "bbox": [50, 50, 50, 50], "iscrowd": 1},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "iscrowd": 0}]
    if person_box:
        anns.append({"id": 4, "image_id": 1, "category_id": 2, "bbox": [60, 60, 20, 20], "iscrowd": 0})
    with open(os.path.join(root, "coco.json"), "w") as fh:
        json.dump({"images": [{"id": n, "file_name": f"{n}.jpg", "width": 100, "height": 100} for n in range(2)],
                   "annotations": anns, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "person"}]}, fh)


def test_a_category_with_only_crowd_regions_keeps_them_and_has_no_ap_as_in_pycocotools(tmp_path):
    """pycocotools: "person" has no positives (AP -1, out of the mean) and a person detection inside
    its crowd region is ignored. The loader used to drop the category and its regions with it."""
    _crowd_only_folder(str(tmp_path))
    ds = open_dataset(str(tmp_path), val_fraction=0).train
    assert ds.classes == ["cat"]                                   # nothing to train on for "person"
    assert ds.crowd_classes == ["cat", "person"]
    assert ds.crowd_regions[0].tolist() == [pytest.approx([1, 0.5, 0.5, 1.0, 1.0])]
    person_in_crowd = (1, 0.95, [0.6, 0.6, 0.7, 0.7])
    res = evaluate(_Fixed([HIT, person_in_crowd], classes=("cat", "person")), ds)
    assert res.crowd_regions == 1
    assert res.per_class_ap["cat"] == pytest.approx(1.0) and res.per_class_ap["person"] != res.per_class_ap["person"]
    assert res.map == pytest.approx(1.0)                           # the mean leaves "person" out
    prepared = prepare_split(ds, 32, "coco-camera-traps", str(tmp_path), "train", None)
    assert prepared.crowd_classes == ["cat", "person"]
    assert evaluate(_Fixed([HIT, person_in_crowd], classes=("cat", "person")), prepared).crowd_regions == 1
    assert evaluate(_Fixed([HIT], classes=("cat",)), ds).crowd_regions == 0   # a model without "person"


def test_roboflow_validation_keeps_crowd_regions_of_a_class_boxed_only_in_training(tmp_path):
    _crowd_only_folder(str(tmp_path / "train"), person_box=True)
    _crowd_only_folder(str(tmp_path / "valid"))
    splits = open_dataset(str(tmp_path))
    assert splits.classes == ["cat", "person"]
    assert splits.val.crowd_regions[0].tolist() == [pytest.approx([1, 0.5, 0.5, 1.0, 1.0])]
    assert splits.val.crowd_classes == ["cat", "person"]
