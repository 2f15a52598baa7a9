"""A ``VOCdevkit`` folder holding VOC2007 and VOC2012, opened as one set the standard way (GluonCV, the SSD
paper): VOC2007 trainval + VOC2012 trainval train, VOC2007 test validates and is the test split.

The devkits are built in tmp_path with tiny JPEGs, laid out as the VOC tarballs unpack.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from ssd.base.errors import DatasetError
from ssd.data.dataset import detect_format, open_dataset
from ssd.data.summary import summarize


def _year(root, year, lists, objects=lambda i: [("cat", 2, 2, 20, 15)]):
    """``root/<year>`` with an XML and a JPEG per listed id and ``ImageSets/Main/<name>.txt`` per entry of ``lists``."""
    ids = sorted({i for listed in lists.values() for i in listed})
    for i in ids:
        path = os.path.join(root, year, "JPEGImages", f"{i}.jpg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.full((20, 40, 3), 100, np.uint8)).save(path)
        os.makedirs(os.path.join(root, year, "Annotations"), exist_ok=True)
        objs = "".join(f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
                       f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>" for n, a, b, c, d in objects(i))
        with open(os.path.join(root, year, "Annotations", f"{i}.xml"), "w") as fh:
            fh.write(f"<annotation><filename>{i}.jpg</filename><size><width>40</width><height>20</height>"
                     f"</size>{objs}</annotation>")
    os.makedirs(os.path.join(root, year, "ImageSets", "Main"), exist_ok=True)
    for name, listed in lists.items():
        with open(os.path.join(root, year, "ImageSets", "Main", f"{name}.txt"), "w") as fh:
            fh.write("".join(f"{i}\n" for i in listed))


def _devkit(root):
    _year(root, "VOC2007", {"train": ["000001"], "val": ["000002"], "trainval": ["000001", "000002"],
                            "test": ["000003", "000004"]})
    _year(root, "VOC2012", {"train": ["2008_000001"], "val": ["2008_000002"],
                            "trainval": ["2008_000001", "2008_000002"]},
          objects=lambda i: [("dog", 2, 2, 20, 15)])


def _ids(ds):
    return sorted(r.image_id for r in ds.records)


def test_devkit_trains_on_both_trainvals_and_tests_on_voc2007_test(tmp_path):
    _devkit(str(tmp_path / "VOCdevkit"))
    root = str(tmp_path / "VOCdevkit")
    assert detect_format(root) == "pascal-voc"
    splits = open_dataset(root)
    assert _ids(splits.train) == ["VOC2007/000001", "VOC2007/000002", "VOC2012/2008_000001", "VOC2012/2008_000002"]
    assert _ids(splits.val) == ["VOC2007/000003", "VOC2007/000004"] and splits.test is splits.val
    assert splits.classes == ["cat", "dog"] and splits.val.classes == splits.classes
    assert [int(lab[0, 0]) for lab in splits.train.labels()] == [0, 0, 1, 1]
    img, label = splits.val[0]
    assert img.shape == (20, 40, 3) and label.shape == (1, 5)
    assert summarize(splits)["images"] == {"train": 4, "val": 2, "total": 6}          # data info


def test_the_train_page_lists_the_devkit_once(tmp_path):
    from ssd.workspace import dataset_folders

    _devkit(str(tmp_path / "VOCdevkit"))
    assert dataset_folders(str(tmp_path)) == [str(tmp_path / "VOCdevkit")]


def test_a_year_without_its_split_files_is_named(tmp_path):
    root = str(tmp_path / "VOCdevkit")
    _devkit(root)
    os.remove(os.path.join(root, "VOC2012", "ImageSets", "Main", "trainval.txt"))
    os.remove(os.path.join(root, "VOC2012", "ImageSets", "Main", "train.txt"))
    with pytest.raises(DatasetError, match=r"VOC2012.*trainval\.txt"):
        open_dataset(root)


def test_without_the_voc2007_test_set_there_is_no_test_split_and_it_says_why(tmp_path):
    root = str(tmp_path / "VOCdevkit")
    _year(root, "VOC2007", {"trainval": ["000001", "000002"]})
    _year(root, "VOC2012", {"trainval": ["2008_000001"]})
    splits = open_dataset(root)
    assert len(splits.train) == 3 and splits.val is None and splits.test is None
    assert any("VOC2007" in reason and "test" in reason for reason in splits.skipped)


def test_a_file_name_leaving_its_year_is_refused(tmp_path):
    root = str(tmp_path / "VOCdevkit")
    _devkit(root)
    xml = os.path.join(root, "VOC2007", "Annotations", "000001.xml")
    with open(xml) as fh:
        text = fh.read()
    with open(xml, "w") as fh:
        fh.write(text.replace("<filename>000001.jpg", "<filename>../../VOC2012/JPEGImages/2008_000001.jpg"))
    splits = open_dataset(root)
    assert "VOC2007/000001" not in _ids(splits.train) and len(splits.train) == 3
    assert any(reason.startswith("file_name outside the image folder") for reason in splits.skipped)


def test_train_and_eval_a_devkit_through_the_cli(tmp_path):
    import json
    import subprocess
    import sys

    root = str(tmp_path / "VOCdevkit")
    _devkit(root)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = [sys.executable, "-m", "ssd"]
    r = subprocess.run(run + ["train", "--data", root, "--out", str(tmp_path / "m"), "--epochs", "1",
                              "--batch-size", "4", "--input-size", "64", "--device", "cpu"],
                       cwd=repo, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(run + ["eval", "--model", str(tmp_path / "m"), "--data", root, "--split", "test",
                              "--json", str(tmp_path / "e.json")], cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "test split (VOCdevkit/test, 2 images)" in r.stdout
    res = json.loads((tmp_path / "e.json").read_text())
    assert (res["split"], res["num_images"], list(res["per_class_ap"])) == ("test", 2, ["cat", "dog"])
