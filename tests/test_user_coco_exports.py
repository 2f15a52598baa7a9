"""A user's own labelled photos in the COCO files that labelling tools write (CVAT, Roboflow, Label Studio).

Each test builds the export the way the tool lays it out, in ``tmp_path``, and checks what training sees.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
from PIL import Image

from ssd.data.cache import cached_dataset
from ssd.data.dataset import open_dataset


def _photo(path: str, w: int, h: int, orientation: int = 0) -> None:
    """A black photo whose top-left quadrant (as stored) is white, optionally with an EXIF orientation."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.zeros((h, w, 3), np.uint8)
    pixels[: h // 2, : w // 2] = 255
    im = Image.fromarray(pixels)
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, exif=exif.tobytes(), quality=95)
    else:
        im.save(path, quality=95)


def _coco(path: str, images, annotations, categories) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, fh)


def _box_mean(img: np.ndarray, label: np.ndarray) -> float:
    h, w = img.shape[:2]
    _, x1, y1, x2, y2 = label[0]
    return float(img[int(round(y1 * h)):int(round(y2 * h)), int(round(x1 * w)):int(round(x2 * w))].mean())


def _exif_rotated_set(root: str) -> None:
    """A phone photo stored 64×48 with orientation 6 (shown 48×64), boxed as a labelling tool shows it.

    Turned upright (90° clockwise) the white quadrant is the top-right 24×32 of the 48×64 picture.
    """
    _photo(os.path.join(root, "images", "phone.jpg"), 64, 48, orientation=6)
    _coco(os.path.join(root, "coco.json"),
          [{"id": 1, "file_name": "phone.jpg", "width": 48, "height": 64}],
          [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [24, 0, 24, 32]}],
          [{"id": 1, "name": "white"}])


def test_exif_rotated_photo_is_trained_upright_as_labelled(tmp_path):
    _exif_rotated_set(str(tmp_path))
    splits = open_dataset(str(tmp_path), val_fraction=0)
    img, label = splits.train[0]
    assert img.shape[:2] == (64, 48)               # upright, as the labelling tool and Detect show it
    assert _box_mean(img, label) > 200             # the box lies on the white quadrant
    assert not splits.skipped                      # its size agrees with the JSON once upright


def test_exif_rotated_photo_is_cached_upright(tmp_path):
    _exif_rotated_set(str(tmp_path / "set"))
    splits = open_dataset(str(tmp_path / "set"), val_fraction=0)
    cached = cached_dataset(splits.train, 32, str(tmp_path / "cache"), "train")
    img, label = cached[0]
    assert _box_mean(img, label) > 200


def test_cvat_coco_export_with_annotations_and_images_folders(tmp_path):
    """CVAT's "COCO 1.0" (and COCO's own layout): annotations/instances_default.json beside images/."""
    images, anns = [], []
    for i in range(3):
        _photo(str(tmp_path / "images" / f"frame_{i:06d}.png"), 64, 48)
        images.append({"id": i + 1, "width": 64, "height": 48, "file_name": f"frame_{i:06d}.png",
                       "license": 0, "flickr_url": "", "coco_url": "", "date_captured": 0})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "segmentation": [], "area": 512.0,
                     "bbox": [0, 0, 32, 24], "iscrowd": 0, "attributes": {"occluded": False}})
    _coco(str(tmp_path / "annotations" / "instances_default.json"), images, anns,
          [{"id": 1, "name": "car", "supercategory": ""}])
    for path in (tmp_path, tmp_path / "annotations", tmp_path / "annotations" / "instances_default.json"):
        splits = open_dataset(str(path), val_fraction=0)
        assert len(splits.train) == 3, path
        assert splits.classes == ["car"]
        assert not splits.skipped


def test_crowd_regions_are_not_trained_as_objects(tmp_path):
    """COCO's ``iscrowd: 1`` marks a region of many objects: it is not one box to learn (COCO ignores it)."""
    _photo(str(tmp_path / "a.jpg"), 64, 48)
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 24], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 20, 30, 20], "iscrowd": 1,
             "segmentation": {"counts": [0, 5], "size": [48, 64]}}]
    _coco(str(tmp_path / "coco.json"), [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}], anns,
          [{"id": 1, "name": "person"}])
    splits = open_dataset(str(tmp_path), val_fraction=0)
    assert splits.train.labels()[0].shape == (1, 5)
    assert sum(v for k, v in splits.skipped.items() if "crowd" in k) == 1


def _roboflow_split(folder: str, classes_by_image, categories) -> None:
    """One split of a Roboflow "COCO" download: photos and _annotations.coco.json in one folder."""
    images, anns = [], []
    for i, cid in enumerate(classes_by_image):
        name = f"img{i}_jpg.rf.{i:04x}.jpg"
        _photo(os.path.join(folder, name), 64, 48)
        images.append({"id": i, "license": 1, "file_name": name, "height": 48, "width": 64})
        anns.append({"id": i, "image_id": i, "category_id": cid, "bbox": [1.5, 2.5, 20.25, 10], "area": 202.5,
                     "segmentation": [], "iscrowd": 0})
    _coco(os.path.join(folder, "_annotations.coco.json"), images, anns, categories)


def test_roboflow_download_uses_its_own_train_and_valid_splits(tmp_path):
    """Roboflow's COCO download: train/, valid/ (and test/) each with _annotations.coco.json.

    The folder opens as one set whose validation is valid/, with one class list for both splits; a
    class boxed only in valid/ is kept (evaluation must show it) and said to have no training box.
    """
    cats = [{"id": 0, "name": "animals", "supercategory": "none"},
            {"id": 1, "name": "Red Fox", "supercategory": "animals"},
            {"id": 2, "name": "deer", "supercategory": "animals"},
            {"id": 3, "name": "badger", "supercategory": "animals"}]
    _roboflow_split(str(tmp_path / "train"), [1, 2, 1, 2, 1], cats)
    _roboflow_split(str(tmp_path / "valid"), [2, 3], cats)
    _roboflow_split(str(tmp_path / "test"), [1], cats)
    splits = open_dataset(str(tmp_path), val_fraction=0.5)
    assert (len(splits.train), len(splits.val)) == (5, 2)
    assert splits.classes == ["Red Fox", "deer", "badger"]
    assert [int(lab[0, 0]) for lab in splits.train.labels()] == [0, 1, 0, 1, 0]
    assert [int(lab[0, 0]) for lab in splits.val.labels()] == [1, 2]
    assert splits.train.classes == splits.val.classes == splits.classes
    assert any("badger" in reason for reason in splits.skipped)
    assert [m["id"] for m in splits.class_mapping] == [1, 2, 3]


def test_roboflow_test_folder_is_the_test_split_with_its_own_class_names(tmp_path):
    """``test/`` is held out from training and validation, and opened as the set's test split (for
    ``eval --split test``); its boxes keep their names, which evaluation matches to the model's."""
    cats = [{"id": 0, "name": "animals"}, {"id": 1, "name": "fox"}, {"id": 2, "name": "deer"},
            {"id": 3, "name": "otter"}]
    _roboflow_split(str(tmp_path / "train"), [1, 2, 1], cats)
    _roboflow_split(str(tmp_path / "valid"), [2], cats)
    _roboflow_split(str(tmp_path / "test"), [2, 3], cats)
    splits = open_dataset(str(tmp_path))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3, 1, 2)
    assert splits.test.classes == ["deer", "otter"] and splits.classes == ["fox", "deer"]
    assert splits.test.name.endswith("/test") and "1 test" not in splits.describe() and "2 test" in splits.describe()
    from ssd.data.summary import summarize

    summary = summarize(splits)                                       # data info
    assert summary["images"]["test"] == 2 and summary["boxes_per_class"]["deer"]["test"] == 1
    assert summary["boxes_with_unknown_class"] == 1                  # the otter, named by test/ alone
    shutil.rmtree(tmp_path / "test")
    assert open_dataset(str(tmp_path)).test is None
