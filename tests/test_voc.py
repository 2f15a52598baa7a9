"""Pascal VOC XML folders: the VOC devkit, CVAT's "PASCAL VOC 1.1" export and LabelImg, built in tmp_path.

Each test writes the XMLs the way the tool does, with tiny JPEGs, and checks what training and
evaluation see: splits, classes, the 1-based box conversion, difficult boxes, and hostile files.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from ssd.data import skip_reasons as why
from ssd.data.dataset import InMemoryDataset, detect_format, open_dataset
from ssd.data.decoded import prepare_split
from ssd.data.voc_xml import XMLRefused, read_annotation
from ssd.inference.evaluation import evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _jpeg(path, w=40, h=20, grey=128):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((h, w, 3), grey, np.uint8)).save(path, quality=90)


def _xml(path, filename, objects=(), w=40, h=20, folder="JPEGImages"):
    """A VOC annotation; ``objects``: ``(name, xmin, ymin, xmax, ymax[, difficult[, truncated]])``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    objs = ""
    for name, x1, y1, x2, y2, *flags in objects:
        difficult, truncated = (list(flags) + [0, 0])[:2]
        objs += (f"<object><name>{name}</name><pose>Unspecified</pose><truncated>{truncated}</truncated>"
                 f"<difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                 f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"<annotation><folder>{folder}</folder><filename>{filename}</filename>"
                 f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
                 f"<segmented>0</segmented>{objs}</annotation>")


def _devkit(root, ids, objects_of, splits):
    """``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/<split>.txt`` as the VOC devkit and CVAT lay them out."""
    for i in ids:
        _jpeg(os.path.join(root, "JPEGImages", f"{i}.jpg"))
        _xml(os.path.join(root, "Annotations", f"{i}.xml"), f"{i}.jpg", objects_of(i))
    os.makedirs(os.path.join(root, "ImageSets", "Main"), exist_ok=True)
    for name, listed in splits.items():
        with open(os.path.join(root, "ImageSets", "Main", f"{name}.txt"), "w") as fh:
            fh.write("".join(f"{i}\n" for i in listed))


def _ids(ds):
    return sorted(r.image_id for r in ds.records)


def _alternating(i):
    return [("dog" if int(i) % 2 else "cat", 2, 2, 20, 15)]


def test_devkit_train_and_val_files_decide_the_split(tmp_path):
    ids = [f"2012_{n:06d}" for n in range(6)]
    _devkit(str(tmp_path), ids, _alternating,
            {"train": ids[:4], "val": ids[4:], "trainval": ids, "test": ["2012_999999"]})
    splits = open_dataset(str(tmp_path))
    assert splits.kind == "pascal-voc" and detect_format(str(tmp_path)) == "pascal-voc"
    assert splits.classes == ["cat", "dog"]                     # sorted, as VOC's own class list
    assert (_ids(splits.train), _ids(splits.val)) == (ids[:4], ids[4:])   # test.txt without XMLs is passed over
    assert splits.test is None


def test_devkit_with_annotated_test_set_validates_on_test(tmp_path):
    ids = [f"{n:06d}" for n in range(1, 7)]
    _devkit(str(tmp_path), ids, _alternating,
            {"train": ids[:2], "val": ids[2:4], "trainval": ids[:4], "test": ids[4:]})
    splits = open_dataset(str(tmp_path))
    assert (_ids(splits.train), _ids(splits.val)) == (ids[:4], ids[4:])
    assert splits.test is splits.val                                # what eval --split test scores


def test_cvat_voc_export_draws_the_split_like_coco(tmp_path):
    """CVAT's "PASCAL VOC 1.1": ImageSets/Main/default.txt only, so validation is drawn (seeded, every class trained)."""
    ids = [f"frame_{n:06d}" for n in range(20)]
    _devkit(str(tmp_path), ids, lambda i: [("zebra", 3, 3, 12.5, 9.5)] if i == ids[7] else _alternating(i[-2:]),
            {"default": ids})
    a = open_dataset(str(tmp_path), val_fraction=0.2, seed=3)
    b = open_dataset(str(tmp_path), val_fraction=0.2, seed=3)
    assert a.classes == ["cat", "dog", "zebra"]
    assert _ids(a.val) == _ids(b.val) and len(a.val) == 4 and len(a.train) == 16
    assert ids[7] in _ids(a.train)                               # the only zebra is never left to validation
    assert open_dataset(str(tmp_path), val_fraction=0).val is None


def test_labelimg_xml_beside_photos_and_in_a_separate_folder(tmp_path):
    beside, apart = tmp_path / "beside", tmp_path / "apart"
    for n in range(3):
        _jpeg(str(beside / f"IMG_{n}.jpg"))
        _xml(str(beside / f"IMG_{n}.xml"), f"IMG_{n}.jpg", [("Deer", 5, 5, 30, 18)], folder="beside")
        _jpeg(str(apart / "images" / f"IMG_{n}.jpg"))
        _xml(str(apart / "labels" / f"IMG_{n}.xml"), f"IMG_{n}.jpg", [("Deer", 5, 5, 30, 18)], folder="images")
    for root in (beside, apart):
        splits = open_dataset(str(root), val_fraction=0)
        assert splits.classes == ["Deer"] and len(splits.train) == 3 and not splits.skipped
        img, label = splits.train[0]
        assert img.shape == (20, 40, 3) and label.shape == (1, 5)


def test_the_train_page_lists_a_voc_folder(tmp_path):
    from ssd.workspace import dataset_folders

    _devkit(str(tmp_path / "voc"), ["1"], _alternating, {"default": ["1"]})
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "other.xml").write_text("<config><x>1</x></config>")
    assert dataset_folders(str(tmp_path)) == [str(tmp_path / "voc")]


def test_one_based_boxes_become_zero_based_as_gluoncv_reads_them(tmp_path):
    _jpeg(str(tmp_path / "a.jpg"), 40, 20)
    _xml(str(tmp_path / "a.xml"), "a.jpg", [("cat", 1, 1, 10, 10)])
    label = open_dataset(str(tmp_path), val_fraction=0).train.labels()[0]
    np.testing.assert_allclose(label, [[0, 0 / 40, 0 / 20, 9 / 40, 9 / 20]], atol=1e-6)


def test_difficult_truncated_and_bad_boxes_follow_the_coco_rules(tmp_path):
    _jpeg(str(tmp_path / "a.jpg"), 40, 20)
    _xml(str(tmp_path / "a.xml"), "a.jpg", [("cat", 1, 1, 10, 10, 1), ("cat", 11, 1, 20, 10, 0, 1),
                                            ("cat", 20, 5, 10, 9),        # xmin > xmax
                                            ("cat", 7, 7, 7, 12),         # no width
                                            ("cat", 50, 30, 60, 40),      # outside the picture
                                            ("dog", 30, 10, 45, 25)])     # clipped to 40×20
    _jpeg(str(tmp_path / "empty.jpg"), 40, 20)
    _xml(str(tmp_path / "empty.xml"), "empty.jpg")                       # a negative: kept
    _xml(str(tmp_path / "gone.xml"), "gone.jpg", [("cat", 1, 1, 5, 5)])
    _jpeg(str(tmp_path / "small.jpg"), 20, 10)
    _xml(str(tmp_path / "small.xml"), "small.jpg", [("cat", 1, 1, 5, 5)], w=40, h=20)
    splits = open_dataset(str(tmp_path), val_fraction=0)
    train = splits.train
    assert _ids(train) == ["a", "empty", "small"]
    a = _ids(train).index("a")
    assert train.labels()[a][:, 0].tolist() == [0, 0, 1]
    np.testing.assert_allclose(train.labels()[a][2, 1:], [29 / 40, 9 / 20, 1, 1], atol=1e-6)
    assert train.difficult_masks[a].tolist() == [True, False, False]
    assert len(train.labels()[_ids(train).index("empty")]) == 0
    s = splits.skipped
    assert (s[why.SKIP_BAD_BOX], s[why.SKIP_OUTSIDE], s[why.NOTE_CLIPPED]) == (2, 1, 1)
    assert (s[why.NOTE_DIFFICULT], s[why.NOTE_TRUNCATED], s[why.SKIP_MISSING]) == (1, 1, 1)
    assert s[why.NOTE_SIZE_MISMATCH_XML] == 1 and why.NOTE_SIZE_MISMATCH not in s


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
                  + ']><annotation><filename>&lol9;</filename></annotation>')


def test_hostile_xml_is_refused_quickly_and_reads_nothing(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (tmp_path / "set").mkdir()
    _jpeg(str(tmp_path / "set" / "ok.jpg"))
    _xml(str(tmp_path / "set" / "ok.xml"), "ok.jpg", [("cat", 1, 1, 9, 9)])
    (tmp_path / "set" / "laughs.xml").write_text(BILLION_LAUGHS)
    (tmp_path / "set" / "external.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<annotation><filename>&x;</filename></annotation>")
    began = time.perf_counter()
    for name in ("laughs.xml", "external.xml"):
        with pytest.raises(XMLRefused):
            read_annotation(str(tmp_path / "set" / name))
    splits = open_dataset(str(tmp_path / "set"), val_fraction=0)
    assert time.perf_counter() - began < 2.0
    assert splits.skipped[why.SKIP_XML_REFUSED] == 2 and _ids(splits.train) == ["ok"]


def test_filename_leaving_the_folder_is_refused(tmp_path):
    _jpeg(str(tmp_path / "outside.jpg"))
    root = tmp_path / "set"
    _jpeg(str(root / "JPEGImages" / "ok.jpg"))
    _xml(str(root / "Annotations" / "ok.xml"), "ok.jpg", [("cat", 1, 1, 9, 9)])
    _jpeg(str(root / "JPEGImages" / "sneaky.jpg"))      # named like the XML: must not be used instead
    _xml(str(root / "Annotations" / "sneaky.xml"), "../../outside.jpg", [("cat", 1, 1, 9, 9)])
    splits = open_dataset(str(root), val_fraction=0)
    assert _ids(splits.train) == ["ok"]
    assert any(k.startswith(why.SKIP_OUTSIDE_FOLDER) for k in splits.skipped)


class _Fixed:
    """A detector answering every image with the same boxes ``(class, score, [x1, y1, x2, y2])``."""

    input_size = 32

    def __init__(self, rows):
        self.classes, self.rows = ["cat"], rows

    def predict_arrays(self, images, nms=0.45, floor=0.01, tap=None):
        ids = np.array([r[0] for r in self.rows], np.float32).reshape(-1)
        scores = np.array([r[1] for r in self.rows], np.float32).reshape(-1)
        boxes = np.array([r[2] for r in self.rows], np.float32).reshape(-1, 4)
        return [(ids, scores, boxes) for _ in images]


def _one_image(difficult):
    """A cat (found) and a difficult cat elsewhere; ``difficult=False`` makes it an ordinary box."""
    ds = InMemoryDataset([np.zeros((100, 100, 3), np.uint8)],
                         [np.array([[0, 0.1, 0.1, 0.4, 0.4], [0, 0.6, 0.6, 0.9, 0.9]], np.float32)], ["cat"])
    ds.difficult_masks = [np.array([False, difficult])]
    return ds


def test_eval_ignores_difficult_boxes_as_voc07():
    hit = (0, 0.9, [0.1, 0.1, 0.4, 0.4])
    on_difficult = (0, 0.95, [0.6, 0.6, 0.9, 0.9])
    missed = evaluate(_Fixed([hit]), _one_image(True))
    assert missed.map == pytest.approx(1.0) and missed.num_boxes == 1 and missed.difficult_boxes == 1
    assert "1 difficult box ignored" in missed.table()
    assert evaluate(_Fixed([hit, on_difficult]), _one_image(True)).map == pytest.approx(1.0)
    # the same boxes with nothing difficult: the miss counts (recall 1/2 -> 6/11)
    assert evaluate(_Fixed([hit]), _one_image(False)).map == pytest.approx(6 / 11)


def test_prepared_validation_split_keeps_difficult_flags(tmp_path):
    _devkit(str(tmp_path), ["a", "b", "c"], lambda i: [("cat", 1, 1, 9, 9, int(i == "b"))], {})
    ds = open_dataset(str(tmp_path), val_fraction=0).train
    prepared = prepare_split(ds, 32, "pascal-voc", str(tmp_path), "train", None)
    assert [m.tolist() for m in prepared.difficult_masks] == [[False], [True], [False]]
    assert [m.tolist() for m in prepare_split(ds, 32, "pascal-voc", str(tmp_path), "t", 2).difficult_masks] \
        == [[False], [True]]


def test_train_one_epoch_and_eval_a_voc_folder_through_the_cli(tmp_path):
    ids = [f"{n:06d}" for n in range(8)]
    _devkit(str(tmp_path / "voc"), ids, lambda i: [("cat", 5, 3, 30, 18, int(i == ids[6]))],
            {"train": ids[:6], "val": ids[6:]})
    out = tmp_path / "model"
    run = [sys.executable, "-m", "ssd"]
    r = subprocess.run(run + ["train", "--data", str(tmp_path / "voc"), "--out", str(out), "--epochs", "1",
                              "--batch-size", "4", "--input-size", "64", "--device", "cpu"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(run + ["eval", "--model", str(out), "--data", str(tmp_path / "voc"),
                              "--json", str(tmp_path / "e.json")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "e.json").read_text())
    assert (res["num_images"], res["num_boxes"], res["difficult_boxes"]) == (2, 1, 1)
    assert list(res["per_class_ap"]) == ["cat"]


def test_annotation_subfolders_are_walked_with_their_picture_subfolders(tmp_path):
    """Annotations/<sub>/x.xml describes JPEGImages/<sub>/x.jpg (the XML names only x.jpg); ids keep the subfolder."""
    root = tmp_path / "voc"
    for sub, n in (("cam1", "0001"), ("cam1", "0002"), ("cam2/day1", "0001")):
        _jpeg(str(root / "JPEGImages" / sub / f"IMG_{n}.JPG"))
        _xml(str(root / "Annotations" / sub / f"{n}.xml"), f"IMG_{n}.JPG", [("fox", 2, 2, 20, 15)])
    _xml(str(root / "Annotations" / ".hidden" / "0003.xml"), "0003.jpg", [("fox", 2, 2, 20, 15)])
    assert detect_format(str(root)) == "pascal-voc"
    splits = open_dataset(str(root), val_fraction=0)
    assert _ids(splits.train) == ["cam1/0001", "cam1/0002", "cam2/day1/0001"]
    assert sorted(r.file_name for r in splits.train.records) == ["cam1/IMG_0001.JPG", "cam1/IMG_0002.JPG",
                                                                   "cam2/day1/IMG_0001.JPG"]
    assert not splits.skipped
    os.makedirs(root / "ImageSets" / "Main")
    (root / "ImageSets" / "Main" / "train.txt").write_text("cam1/0001\ncam2/day1/0001\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("cam1/0002\n")
    splits = open_dataset(str(root))
    assert (_ids(splits.train), _ids(splits.val)) == (["cam1/0001", "cam2/day1/0001"], ["cam1/0002"])


def test_annotation_subfolders_never_lead_out_of_the_set(tmp_path):
    root, outside = tmp_path / "voc", tmp_path / "elsewhere"
    _jpeg(str(root / "JPEGImages" / "a" / "1.jpg"))
    _xml(str(root / "Annotations" / "a" / "1.xml"), "1.jpg", [("fox", 2, 2, 20, 15)])
    _xml(str(root / "Annotations" / "a" / "2.xml"), "../../../elsewhere/2.jpg", [("fox", 2, 2, 20, 15)])
    _jpeg(str(outside / "2.jpg"))
    _xml(str(outside / "Annotations" / "3.xml"), "3.jpg", [("fox", 2, 2, 20, 15)])
    _jpeg(str(outside / "JPEGImages" / "3.jpg"))
    os.symlink(outside / "Annotations", root / "Annotations" / "linked")     # a linked folder is not walked
    splits = open_dataset(str(root), val_fraction=0)
    assert _ids(splits.train) == ["a/1"]
    assert sum(v for k, v in splits.skipped.items() if k.startswith(why.SKIP_OUTSIDE_FOLDER)) == 1
