"""``python -m ssd eval --split``: which split of a set is scored, and saying which one it was.

Sets are built in tmp_path: a Roboflow COCO download (``train/ valid/ test/``) whose ``test/`` is held
out from training, and sets without a test split, where asking for one is a clear error.
"""
from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from ssd.cli.main import main


def _roboflow_split(folder, n, name="pikachu"):
    os.makedirs(folder, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        Image.fromarray(np.full((48, 64, 3), 40 * i % 255, np.uint8)).save(os.path.join(folder, f"im{i}.jpg"))
        images.append({"id": i, "file_name": f"im{i}.jpg", "width": 64, "height": 48})
        anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 30, 20], "iscrowd": 0})
    with open(os.path.join(folder, "_annotations.coco.json"), "w") as fh:
        json.dump({"images": images, "annotations": anns,
                   "categories": [{"id": 0, "name": "all"}, {"id": 1, "name": name}]}, fh)


def test_eval_scores_the_roboflow_test_folder_and_says_so(tmp_path, tiny_model_dir, capsys):
    for split, n in (("train", 4), ("valid", 2), ("test", 3)):
        _roboflow_split(str(tmp_path / "set" / split), n)
    out = str(tmp_path / "e.json")
    assert main(["eval", "--model", tiny_model_dir, "--data", str(tmp_path / "set"), "--split", "test",
                 "--engine", "mxnet", "--json", out]) == 0
    res = json.loads(open(out).read())
    assert res["num_images"] == 3 and res["split"] == "test"
    assert "test split (set/test, 3 images)" in capsys.readouterr().out
    assert main(["eval", "--model", tiny_model_dir, "--data", str(tmp_path / "set"), "--engine", "mxnet",
                 "--json", out]) == 0                                  # the default is still val
    assert json.loads(open(out).read())["num_images"] == 2
    assert "val split (set/val, 2 images)" in capsys.readouterr().out


def test_asking_for_a_test_split_a_set_lacks_names_the_splits_it_has(tmp_path, tiny_model_dir, capsys):
    for split, n in (("train", 3), ("valid", 2)):
        _roboflow_split(str(tmp_path / "set" / split), n)
    assert main(["eval", "--model", tiny_model_dir, "--data", str(tmp_path / "set"), "--split", "test",
                 "--engine", "mxnet"]) == 2
    assert "has no test split to evaluate (it has: train, val)" in capsys.readouterr().err


def test_a_broken_test_folder_never_blocks_training_and_eval_says_why(tmp_path, tiny_model_dir, capsys):
    from ssd.data.dataset import open_dataset

    for split, n in (("train", 3), ("valid", 2), ("test", 2)):
        _roboflow_split(str(tmp_path / "set" / split), n)
    for name in os.listdir(tmp_path / "set" / "test"):
        if name.endswith(".jpg"):
            os.remove(tmp_path / "set" / "test" / name)            # the photos were not downloaded
    splits = open_dataset(str(tmp_path / "set"))
    assert (len(splits.train), len(splits.val), splits.test) == (3, 2, None)
    assert any(reason.startswith("test/ left out") for reason in splits.skipped)
    assert main(["eval", "--model", tiny_model_dir, "--data", str(tmp_path / "set"), "--split", "test",
                 "--engine", "mxnet"]) == 2
    err = capsys.readouterr().err
    assert "has no test split" in err and "no usable images" in err
