"""COCO Camera Traps files as people actually hand them over: repeated category names, files of
tens of megabytes in COCO's own key order, truncated downloads."""
import json
import os

import pytest
from PIL import Image

from ssd.base.errors import DatasetError
from ssd.data.dataset import detect_format, open_dataset
from ssd.data.summary import format_summary, summarize


def _write(root, images, annotations, categories, files=None, order=("images", "annotations", "categories")):
    """``root/data.json`` with its sections in ``order``, and a small JPEG for each listed file."""
    root.mkdir(parents=True, exist_ok=True)
    for name in files if files is not None else [im["file_name"] for im in images]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (90, 110, 70)).save(path, format="JPEG")
    data = {"images": images, "annotations": annotations, "categories": categories}
    (root / "data.json").write_text(json.dumps({k: data[k] for k in order}))
    return root / "data.json"


def _images(n):
    return [{"id": i, "file_name": f"cam/{i}.jpg", "width": 64, "height": 48} for i in range(n)]


def test_categories_sharing_a_name_keep_their_own_counts(tmp_path):
    # ids 1 and 2 are both called "deer" (two sets merged): 2 boxes of id 1, 4 of id 2
    anns = [{"id": i, "image_id": i, "category_id": 1 if i < 2 else 2, "bbox": [1, 1, 10, 10]} for i in range(6)]
    _write(tmp_path / "set", _images(6), anns, [{"id": 1, "name": "deer"}, {"id": 2, "name": "deer"}])
    splits = open_dataset(str(tmp_path / "set"))
    assert len(set(splits.classes)) == 2                              # two classes, told apart
    totals = {c: v["total"] for c, v in summarize(splits)["boxes_per_class"].items()}
    assert sorted(totals.values()) == [2, 4]
    by_id = {m["id"]: m["name"] for m in splits.class_mapping}
    assert totals[by_id[1]] == 2 and totals[by_id[2]] == 4
    assert "deer" in by_id[1] and "deer" in by_id[2]


def test_large_file_in_coco_key_order_is_recognised(tmp_path):
    # COCO writers put images, annotations, categories in that order; with 3,000 entries the
    # "annotations" key sits far from both ends of the file
    n = 3000
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(n)]
    path = _write(tmp_path / "big", _images(n), anns, [{"id": 1, "name": "deer"}],
                  files=[f"cam/{i}.jpg" for i in range(5)])
    assert os.path.getsize(path) > 4 * 64 * 1024
    assert detect_format(str(tmp_path / "big")) == "coco-camera-traps"
    splits = open_dataset(str(tmp_path / "big"))
    assert len(splits.train) + len(splits.val) == 5


def test_cut_json_says_so(tmp_path):
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(6)]
    path = _write(tmp_path / "cut", _images(6), anns, [{"id": 1, "name": "deer"}])
    text = path.read_text()
    path.write_text(text[: len(text) * 2 // 3])                     # the download stopped part way
    with pytest.raises(DatasetError, match="not valid JSON.*may be truncated"):
        open_dataset(str(tmp_path / "cut"))
