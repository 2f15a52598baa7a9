"""Evaluation's numbers against cases worked out by hand, and against a model whose classes differ.

A fake detector returns fixed boxes per image (recognised by its grey level), so the VOC07 11-point AP
of each class can be computed on paper and compared with what ``evaluate`` reports.
"""
import numpy as np
import pytest

from ssd.data.dataset import InMemoryDataset
from ssd.inference.evaluation import evaluate


class BoxesByGrey:
    """``predict_arrays`` that answers each image with the boxes listed for its grey level."""

    input_size = 32

    def __init__(self, classes, answers):
        self.classes = list(classes)
        self.answers = answers          # grey level -> [(class id, score, [x1, y1, x2, y2] normalized), ...]

    def predict_arrays(self, images, nms=0.45, floor=0.01, tap=None):
        out = []
        for im in images:
            rows = self.answers[int(round(float(im.mean())))]
            ids = np.array([r[0] for r in rows], np.float32).reshape(-1)
            scores = np.array([r[1] for r in rows], np.float32).reshape(-1)
            boxes = np.array([r[2] for r in rows], np.float32).reshape(-1, 4)
            out.append((ids, scores, boxes))
        return out


def _image(grey, w, h):
    return np.full((h, w, 3), grey, np.uint8)


def _two_images(classes):
    """Image A (100×80, grey 50): a cat and a dog; image B (60×120, grey 200): a cat."""
    labels = [np.array([[0, 0.1, 0.1, 0.5, 0.5], [1, 0.6, 0.6, 0.9, 0.9]], np.float32),
              np.array([[0, 0.2, 0.2, 0.6, 0.6]], np.float32)]
    return InMemoryDataset([_image(50, 100, 80), _image(200, 60, 120)], labels, classes)


def test_map_matches_a_case_worked_by_hand():
    # cat: a hit at 0.9 and a false box at 0.8 in A, nothing in B -> recall 1/2 at precision 1 then 1/2:
    #   11-point AP = (points 0, .1, .2, .3, .4, .5 at precision 1) / 11 = 6/11
    # dog: its one box found -> AP 1;  mAP = (6/11 + 1) / 2 = 17/22
    det = BoxesByGrey(["cat", "dog"], {
        50: [(0, 0.9, [0.1, 0.1, 0.5, 0.5]), (0, 0.8, [0.7, 0.0, 0.9, 0.2]), (1, 0.6, [0.6, 0.6, 0.9, 0.9])],
        200: []})
    res = evaluate(det, _two_images(["cat", "dog"]))
    assert res.per_class_ap == pytest.approx({"cat": 6 / 11, "dog": 1.0})
    assert res.map == pytest.approx(17 / 22)
    assert (res.num_images, res.num_boxes) == (2, 3)


def test_half_overlap_decides_hit_or_miss():
    # B's cat predicted shifted right by 0.12 of the image: IoU = 0.112 / 0.208 = 0.54 -> a hit (AP 6/11:
    # recall 1/2 at precision 1); shifted by 0.14: IoU = 0.104 / 0.216 = 0.48 -> a miss (AP 0)
    for shift, ap in ((0.12, 6 / 11), (0.14, 0.0)):
        det = BoxesByGrey(["cat", "dog"], {50: [], 200: [(0, 0.7, [0.2 + shift, 0.2, 0.6 + shift, 0.6])]})
        res = evaluate(det, _two_images(["cat", "dog"]))
        assert res.per_class_ap["cat"] == pytest.approx(ap)
        assert res.per_class_ap["dog"] == 0.0 and res.map == pytest.approx(ap / 2)


def test_classes_are_matched_by_name_when_the_model_lists_them_otherwise():
    # the model was trained with ["dog", "cat"]; the set calls them ["cat", "dog"]; every box is found
    det = BoxesByGrey(["dog", "cat"], {
        50: [(1, 0.9, [0.1, 0.1, 0.5, 0.5]), (0, 0.8, [0.6, 0.6, 0.9, 0.9])], 200: [(1, 0.7, [0.2, 0.2, 0.6, 0.6])]})
    res = evaluate(det, _two_images(["cat", "dog"]))
    assert res.per_class_ap == pytest.approx({"dog": 1.0, "cat": 1.0}) and res.map == pytest.approx(1.0)
    assert res.num_boxes == 3 and res.unscored_boxes == 0


def test_boxes_of_classes_the_model_lacks_are_left_out_and_said():
    # the set's "dog" is not a class of the model: its box can be neither found nor missed
    det = BoxesByGrey(["cat"], {50: [(0, 0.9, [0.1, 0.1, 0.5, 0.5])], 200: [(0, 0.7, [0.2, 0.2, 0.6, 0.6])]})
    res = evaluate(det, _two_images(["cat", "dog"]))
    assert res.per_class_ap == pytest.approx({"cat": 1.0})
    assert res.map == pytest.approx(1.0)                    # the mean of the APs the table shows
    assert (res.num_boxes, res.unscored_boxes) == (2, 1)
    assert "1 box of classes the model lacks left out" in res.table()


def test_without_a_shared_name_ids_are_compared_and_extra_ids_left_out():
    # a renamed set ("pika" for the model's "pikachu"): index 0 is compared with index 0; index 1 has no match
    det = BoxesByGrey(["pikachu"], {50: [(0, 0.9, [0.1, 0.1, 0.5, 0.5])], 200: []})
    res = evaluate(det, _two_images(["pika", "other"]))
    assert res.per_class_ap == pytest.approx({"pikachu": 6 / 11}) and res.map == pytest.approx(6 / 11)
    assert (res.num_boxes, res.unscored_boxes) == (2, 1)


def _model_trained_on_half_a_camera_trap_set(tmp_path, tiny_model_dir):
    """A copy of the tiny model whose record says it trained on ``tmp_path/set`` (20 camera-trap
    images) with --seed 3 --val-fraction 0.5, and that set's held-out split."""
    import json
    import shutil

    from ssd.data.dataset import open_dataset
    from test_cct_messy import _images, _write

    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 30, 30]} for i in range(20)]
    _write(tmp_path / "set", _images(20), anns, [{"id": 1, "name": "pikachu"}])
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    meta = json.loads((model / "meta.json").read_text())
    meta["training"]["args"].update(seed=3, val_fraction=0.5)
    (model / "meta.json").write_text(json.dumps(meta))
    return model, open_dataset(str(tmp_path / "set"), seed=3, val_fraction=0.5).val


def test_eval_holds_out_the_images_the_model_was_validated_on(tmp_path, tiny_model_dir):
    # a model trained on a camera-trap set with --val-fraction 0.5 --seed 3: eval must score the same
    # held-out half, not the default fifth drawn with seed 0 (which mixes in training images)
    import json

    from ssd.cli.main import main

    model, held_out = _model_trained_on_half_a_camera_trap_set(tmp_path, tiny_model_dir)
    assert main(["eval", "--model", str(model), "--data", str(tmp_path / "set"), "--engine", "mxnet",
                 "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["num_images"] == len(held_out) == 10


def test_class_names_match_whatever_their_case_or_spacing():
    # one camera-trap set writes "Cat " and "DOG" where the model says "cat" and "dog"
    from ssd.inference.evaluation import class_index_map

    det = BoxesByGrey(["dog", "cat"], {
        50: [(1, 0.9, [0.1, 0.1, 0.5, 0.5]), (0, 0.8, [0.6, 0.6, 0.9, 0.9])], 200: [(1, 0.7, [0.2, 0.2, 0.6, 0.6])]})
    res = evaluate(det, _two_images(["Cat ", "DOG"]))
    assert res.map == pytest.approx(1.0) and res.unscored_boxes == 0
    # an exact name still wins over a folded one
    assert class_index_map(["Deer", "deer"], ["deer", "Deer"]).tolist() == [1, 0]


def test_learn_pages_evaluate_the_models_own_held_out_images(tmp_path, tiny_model_dir, monkeypatch):
    # the Learn · Evaluation page drew the default fifth with seed 0 whatever the model was trained on
    from app_pages import _learn
    from ssd.workspace import model_key

    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    model, held_out = _model_trained_on_half_a_camera_trap_set(tmp_path, tiny_model_dir)
    res = _learn.split_evaluation(*model_key(str(model)), str(tmp_path / "set"), 0.0, 500, 0.45, 0.01, 0.5)
    assert res.num_images == len(held_out) == 10
    split = _learn.split_detections(*model_key(str(model)), str(tmp_path / "set"), 0.0, 500, 0.45, 0.01)
    assert sorted(split.indices) == list(range(len(held_out)))
