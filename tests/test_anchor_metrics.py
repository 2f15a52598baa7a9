"""The ENA24 tutorial's micro-F1 and accuracy over anchors: its own per-class loop reproduced, and
``eval`` reporting them from the same forward as VOC mAP."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT
from ssd.inference.anchor_metrics import AnchorCounts

MODEL = os.path.join(REPO_ROOT, "models", "tiny-pikachu")


def _tutorial_micro_f1(pred, true, num_classes):
    """The tutorial's MicroF1Score, loop for loop: classes 1..C, sums, then precision/recall/F1."""
    tp = fp = fn = 0.0
    for i in range(1, num_classes + 1):
        p, t = pred == i, true == i
        tp += float((p * t).sum())
        fp += float(((true != i) * p).sum())
        fn += float((t * (pred != i)).sum())
    precision = tp / (tp + fp) if tp + fp else 0
    recall = tp / (tp + fn) if tp + fn else 0
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_counts_reproduce_the_tutorials_loop_and_accuracy():
    rng = np.random.RandomState(0)
    for classes in (1, 3, 23):
        true = np.where(rng.rand(4, 500) < 0.9, 0, rng.randint(1, classes + 1, (4, 500)))
        pred = np.where(rng.rand(4, 500) < 0.7, true, rng.randint(0, classes + 1, (4, 500)))
        c = AnchorCounts()
        c.add(pred[:2], true[:2])
        c.add(pred[2:], true[2:])                       # summed over batches = one count over all
        assert c.micro_f1 == pytest.approx(_tutorial_micro_f1(pred, true, classes), abs=1e-12)
        assert c.accuracy == pytest.approx((pred == true).mean(), abs=1e-12)
    # a hand case: true [0 1 1 2 0], predicted [0 1 2 2 1] → TP 2, FP 2, FN 1
    c = AnchorCounts()
    c.add(np.array([0, 1, 2, 2, 1]), np.array([0, 1, 1, 2, 0]))
    assert (c.tp, c.fp, c.fn, c.correct) == (2, 2, 1, 3)
    assert c.micro_f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)) and c.accuracy == 0.6
    assert AnchorCounts().micro_f1 == 0.0 and AnchorCounts().accuracy == 0.0


def test_eval_reports_micro_f1_from_the_same_forward_as_map(synth_dir, tmp_path):
    from ssd.data.dataset import open_dataset
    from ssd.inference.detector import Detector
    from ssd.inference.evaluation import evaluate
    from ssd.models.mining import anchor_roles
    from ssd.viz.heads import multibox_heads

    det = Detector.load(MODEL)
    val = open_dataset(synth_dir).val
    calls = det.forward_calls
    res = evaluate(det, val, batch_size=3, limit=6)
    assert det.forward_calls - calls == 2                 # 6 images in batches of 3: no extra forward
    expect = AnchorCounts()
    for i in range(6):
        img, label = val[i]
        heads = multibox_heads(det, img)
        target = np.maximum(anchor_roles(heads.anchors, label, heads.cls_preds, ratio=0).cls_target, 0)
        expect.add(heads.cls_preds.argmax(axis=-1), target)
    assert res.anchor_counts == expect.as_dict() and expect.anchors == 6 * 5444
    assert res.micro_f1 == pytest.approx(expect.micro_f1) and res.accuracy == pytest.approx(expect.accuracy)
    assert 0 < res.micro_f1 <= 1 and "micro-F1" in res.table()
    out = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "ssd", "eval", "--model", MODEL, "--data", synth_dir, "--limit", "6",
                        "--engine", "mxnet", "--json", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "micro-F1" in r.stdout and "accuracy" in r.stdout
    saved = json.loads(out.read_text())
    assert saved["micro_f1"] == pytest.approx(res.micro_f1) and saved["anchor_counts"]["anchors"] == 6 * 5444
