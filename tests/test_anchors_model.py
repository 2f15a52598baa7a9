"""Anchors and TinySSD reproduce the numbers the d2l book's "Single Shot Multibox Detection" prints."""
import mxnet as mx
import numpy as np
import pytest

from ssd.models.anchors import AnchorConfig, anchor_labels, all_anchors, cell_anchors, cell_centres, multibox_prior
from ssd.models.anchor_set import coverage
from ssd.base.boxes import box_iou
from ssd.base.errors import SSDError
from ssd.models.registry import recipe_for
from ssd.models.tiny import TinySSD


def test_multibox_prior_matches_the_d2l_books_first_anchor_of_cell_20_20():
    a = multibox_prior((40, 40), sizes=[0.5, 0.25, 0.1], ratios=[1, 2, 0.5])
    assert a.shape == (40, 40, 5, 4)  # n + m - 1 = 3 + 3 - 1 anchors per cell
    np.testing.assert_allclose(a[20, 20, 0], [0.2625, 0.2625, 0.7625, 0.7625], atol=1e-6)


def test_anchor_order_and_labels_follow_multiboxprior():
    a = multibox_prior((2, 2), sizes=[0.5, 0.25], ratios=[1, 2])
    labels = anchor_labels([0.5, 0.25], [1, 2])
    assert labels == [(0.5, 1.0), (0.25, 1.0), (0.5, 2.0)]
    w = a[0, 0, :, 2] - a[0, 0, :, 0]
    h = a[0, 0, :, 3] - a[0, 0, :, 1]
    # size s, ratio r -> w = s*sqrt(r), h = s/sqrt(r) (square map, so no aspect correction)
    np.testing.assert_allclose(w, [0.5, 0.25, 0.5 * np.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(h, [0.5, 0.25, 0.5 / np.sqrt(2)], atol=1e-6)


def test_tinyssd_shapes_and_5444_anchors():
    net = TinySSD(num_classes=1)
    net.initialize()
    anchors, cls_preds, bbox_preds = net(mx.nd.zeros((2, 3, 256, 256)))
    assert anchors.shape == (1, 5444, 4)
    assert cls_preds.shape == (2, 5444, 2)
    assert bbox_preds.shape == (2, 21776)
    assert net.feature_map_shapes() == [(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)]
    assert net.anchors_per_scale() == [4096, 1024, 256, 64, 4]
    assert net.num_anchors == 5444


def test_hybridized_network_gives_same_output_and_anchor_helper_agrees():
    net = TinySSD(num_classes=3)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(1, 3, 256, 256))
    a1, c1, b1 = net(x)
    net.hybridize()
    a2, c2, b2 = net(x)
    np.testing.assert_allclose(c1.asnumpy(), c2.asnumpy(), rtol=1e-4, atol=1e-5)
    assert c2.shape == (1, 5444, 4)
    np.testing.assert_allclose(all_anchors(net.anchor_config), a2.asnumpy()[0], atol=1e-6)


def test_feature_maps_follow_input_size_and_custom_anchors():
    net = TinySSD(2, input_size=512, sizes=[[0.1], [0.3], [0.6]], ratios=[[1, 2]])
    assert net.feature_map_shapes() == [(64, 64), (32, 32), (1, 1)]
    assert net.anchor_config.anchors_per_cell(0) == 2
    net.initialize()
    anchors, cls_preds, _ = net(mx.nd.zeros((1, 3, 512, 512)))
    assert anchors.shape[1] == net.num_anchors == (64 * 64 + 32 * 32 + 1) * 2
    with pytest.raises(SSDError, match="unknown architecture"):
        recipe_for("nope")


def test_cell_anchors_centres_iou_and_coverage():
    cfg = TinySSD(1).anchor_config
    cell = cell_anchors(cfg, 0, 5, 7)
    assert cell.shape == (4, 4)
    centre = (cell[:, :2] + cell[:, 2:]) / 2
    np.testing.assert_allclose(centre, [[(7 + 0.5) / 32, (5 + 0.5) / 32]] * 4, atol=1e-6)
    assert cell_centres((32, 32)).shape == (1024, 2)
    with pytest.raises(IndexError):
        cell_anchors(cfg, 4, 1, 0)
    iou = box_iou(np.array([[0, 0, 1, 1], [0, 0, 0.5, 0.5]]), np.array([[0, 0, 0.5, 1]]))
    np.testing.assert_allclose(iou[:, 0], [0.5, 0.5])
    share, best = coverage(cfg, np.array([[0.3, 0.3, 0.5, 0.5], [0.0, 0.0, 0.01, 0.9]]))
    assert share == 0.5 and best[0] >= 0.5 > best[1]


def test_anchor_config_validation_and_round_trip():
    with pytest.raises(ValueError):
        AnchorConfig(sizes=[[0.2]], ratios=[[1], [2]])
    with pytest.raises(ValueError):
        AnchorConfig(sizes=[[-0.2]], ratios=[[1]])
    cfg = TinySSD(1).anchor_config
    again = AnchorConfig.from_dict(cfg.to_dict())
    assert again.total() == 5444
