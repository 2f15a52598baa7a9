"""Targets and losses: the assignment, hard negative mining and focal loss behave as SSD says."""
import mxnet as mx
import numpy as np
import pytest

from ssd.models.losses import SSDTrainLoss, class_loss
from ssd.models.tiny import TinySSD
from ssd.models.targets import multibox_targets


def _setup(num_classes=1):
    net = TinySSD(num_classes)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 3, 256, 256))
    anchors, cls_preds, box_preds = net(x)
    labels = mx.nd.array([[[0, 0.1, 0.1, 0.5, 0.5], [-1] * 5, [-1] * 5],
                          [[0, 0.4, 0.2, 0.9, 0.8], [0, 0.0, 0.0, 0.2, 0.3], [-1] * 5]])
    return anchors, cls_preds, box_preds, labels


def test_targets_mark_positive_anchors_with_class_plus_one():
    anchors, cls_preds, _, labels = _setup()
    box_t, box_m, cls_t = multibox_targets(mx.nd, anchors, labels, cls_preds)
    cls_t = cls_t.asnumpy()
    assert cls_t.shape == (2, 5444)
    assert set(np.unique(cls_t)) <= {0.0, 1.0}
    assert (cls_t[0] == 1).sum() >= 1 and (cls_t[1] == 1).sum() >= 2
    # the mask is 1 exactly on the 4 offsets of positive anchors
    mask = box_m.asnumpy().reshape(2, -1, 4)
    np.testing.assert_array_equal(mask[..., 0], (cls_t == 1).astype(np.float32))


def test_hard_negative_mining_keeps_three_negatives_per_positive():
    anchors, cls_preds, _, labels = _setup()
    _, _, cls_t = multibox_targets(mx.nd, anchors, labels, cls_preds, negative_mining_ratio=3)
    cls_t = cls_t.asnumpy()
    for row in cls_t:
        pos, neg = (row > 0).sum(), (row == 0).sum()
        assert neg == 3 * pos
        assert (row == -1).sum() == row.size - 4 * pos


def test_focal_loss_downweights_easy_examples():
    preds = mx.nd.array([[[8.0, -8.0], [0.2, 0.0]]])  # anchor 0 easy background, anchor 1 uncertain
    target = mx.nd.array([[0, 0]])
    ce, _ = class_loss(mx.nd, preds, target, "ce")
    fl, _ = class_loss(mx.nd, preds, target, "focal")
    ce, fl = ce.asnumpy()[0], fl.asnumpy()[0]
    assert fl[0] / ce[0] < 1e-4 < fl[1] / ce[1]
    with pytest.raises(ValueError):
        SSDTrainLoss(cls_kind="hinge")


@pytest.mark.parametrize("cls_kind,box_kind,ratio", [("ce", "l1", -1), ("focal", "smooth_l1", 3)])
def test_train_loss_hybridized_matches_imperative(cls_kind, box_kind, ratio):
    anchors, cls_preds, box_preds, labels = _setup()
    loss = SSDTrainLoss(cls_kind, box_kind, negative_mining_ratio=ratio)
    imperative = [o.asnumpy() for o in loss(anchors, cls_preds, box_preds, labels)]
    loss.hybridize()
    hybrid = [o.asnumpy() for o in loss(anchors, cls_preds, box_preds, labels)]
    for a, b in zip(imperative, hybrid):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    total, cls_l, box_l, correct, count, _, all_correct, all_count = hybrid
    np.testing.assert_allclose(total, cls_l + box_l, rtol=1e-5)
    assert (correct <= count).all() and (count > 0).all()
    assert (all_correct <= all_count).all() and (all_count == 5444).all()


def test_positive_normalization_divides_by_the_number_of_positives():
    anchors, cls_preds, box_preds, labels = _setup()
    d2l = SSDTrainLoss("ce", "l1", negative_mining_ratio=3)
    ssd_style = SSDTrainLoss("ce", "l1", negative_mining_ratio=3, normalization="positives")
    _, c1, b1, _, count, _, _, _ = [o.asnumpy() for o in d2l(anchors, cls_preds, box_preds, labels)]
    _, c2, b2, _, _, _, _, _ = [o.asnumpy() for o in ssd_style(anchors, cls_preds, box_preds, labels)]
    num_pos = count / 4  # 3:1 mining keeps 4 labelled anchors per positive
    np.testing.assert_allclose(c2, c1 * count / num_pos, rtol=1e-4)
    np.testing.assert_allclose(b2, b1 * 4 * 5444 / num_pos, rtol=1e-4)
    with pytest.raises(ValueError):
        SSDTrainLoss(normalization="batch")
