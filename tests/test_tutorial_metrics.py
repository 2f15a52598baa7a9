"""The d2l book's class err and bbox MAE, and the mined class err, on cases small enough to count by hand."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from conftest import REPO_ROOT
from ssd.models.losses import SSDTrainLoss
from ssd.models.metric_names import named_history, named_record
from ssd.models.recipe import StepStats
from ssd.training.metrics import EpochMeter, epoch_line


def _hand_case():
    """Eight anchors, one box exactly on anchor 0; the other anchors far away (IoU 0).

    Predictions (background, object): anchor 0 says object (right), anchor 1 says object
    (wrong, the hardest negative), anchors 2..7 say background with falling confidence.
    """
    anchors = np.array([[0.0, 0.0, 0.2, 0.2]] + [[0.5 + 0.06 * i, 0.5, 0.55 + 0.06 * i, 0.55] for i in range(7)],
                       np.float32)
    logits = np.array([[0, 5], [0, 4]] + [[1 + i, 0] for i in range(6)], np.float32)
    labels = np.array([[[0, 0.0, 0.0, 0.2, 0.2], [-1] * 5, [-1] * 5]], np.float32)
    box_preds = np.zeros((1, 32), np.float32)
    box_preds[0, :4] = [1.0, -1.0, 0.5, 0.0]  # offsets of anchor 0; its target is all zeros
    return mx.nd.array(anchors[None]), mx.nd.array(logits[None]), mx.nd.array(box_preds), mx.nd.array(labels)


def test_d2l_class_err_is_argmax_over_all_anchors_and_mined_err_over_counted_ones():
    anchors, cls_preds, box_preds, labels = _hand_case()
    out = [o.asnumpy()[0] for o in SSDTrainLoss(negative_mining_ratio=3)(anchors, cls_preds, box_preds, labels)]
    _, _, _, correct, count, abs_err, all_correct, all_count = out
    # the d2l book's class err: anchors 0, 2..7 right, anchor 1 wrong → 1/8
    assert (all_correct, all_count) == (7, 8)
    # mined: the positive + 3 hardest negatives (anchor 1 and the two least confident background) → 1/4
    assert (correct, count) == (3, 4)
    # bbox MAE: |1| + |-1| + |0.5| + 0 over 32 entries
    np.testing.assert_allclose(abs_err, 2.5 / 32, rtol=1e-6)


def test_without_mining_the_two_class_errors_agree():
    anchors, cls_preds, box_preds, labels = _hand_case()
    out = [o.asnumpy()[0] for o in SSDTrainLoss(negative_mining_ratio=-1)(anchors, cls_preds, box_preds, labels)]
    assert (out[3], out[4]) == (out[6], out[7]) == (7, 8)


def test_epoch_record_names_both_errors():
    meter = EpochMeter(0)
    meter.add(StepStats(1, np.array([1.0, 0.5, 0.5, 3, 4]), 0.01, np.array([7.0, 8.0])))
    rec = meter.record(0.1)
    assert rec["class_err"] == 1 - 7 / 8 and rec["mined_class_err"] == 1 - 3 / 4
    assert "class err 1.25e-01" in epoch_line(rec, 1) and "mined class err 2.50e-01" in epoch_line(rec, 1)
    unmined = EpochMeter(0)
    unmined.add(StepStats(1, np.array([1.0, 0.5, 0.5, 0, 0]), 0.01, np.array([7.0, 8.0])))
    assert unmined.record(0.1)["mined_class_err"] is None   # a plan that does not mine (GluonCV)


def test_old_histories_read_their_class_err_as_the_mined_one():
    with open(os.path.join(REPO_ROOT, "models", "tiny-pikachu", "meta.json")) as f:
        history = json.load(f)["metrics"]["history"]
    named = named_history(history)
    assert named[0]["mined_class_err"] == history[0]["class_err"] and named[0]["class_err"] is None
    assert named_record({"class_err": 0.1, "mined_class_err": 0.3})["class_err"] == 0.1
    assert "n/a" in epoch_line(history[0], 16)


def test_measured_metrics_of_a_saved_model_match_argmax_over_all_anchors(tiny_model_dir, synth_dir):
    from ssd.data.dataset import open_dataset
    from ssd.inference.detector import Detector
    from ssd.viz.heads import multibox_heads
    from ssd.viz.tutorial_metrics import measure_train_metrics
    from ssd.models.mining import anchor_roles

    det = Detector.load(tiny_model_dir)
    val = open_dataset(synth_dir).val
    m = measure_train_metrics(det, val, limit=4, batch_size=3)
    wrong = total = 0
    for i in range(4):
        img, label = val[i]
        heads = multibox_heads(det, img)
        target = np.maximum(anchor_roles(heads.anchors, label, heads.cls_preds, ratio=0).cls_target, 0)
        wrong += int((heads.cls_preds.argmax(axis=-1) != target).sum())
        total += len(target)
    assert m["images"] == 4 and m["class_err"] == pytest.approx(wrong / total, abs=1e-9)
    assert m["class_err"] < m["mined_class_err"]


def test_train_page_names_the_tutorial_of_class_err_and_bbox_mae_by_its_title(shipped_models_root, monkeypatch):
    """The notes under a saved model's metrics say whose definitions these are: the chapter by its title
    (Dive into Deep Learning's "Single Shot Multibox Detection"), not a nickname a newcomer cannot look up."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    notes = [c.value for c in at.caption if "**class err**" in c.value]
    helps = [m.help for m in at.metric if m.label in ("class err", "bbox MAE")]
    assert notes and len(helps) == 2
    for text in notes + helps:
        assert "d2l" not in text and "Dive into Deep Learning" in text and "Single Shot Multibox Detection" in text
