"""The Learn pages' numbers come from the library's own anchors, losses, targets, NMS and evaluation."""
from __future__ import annotations

import numpy as np
import pytest

from ssd.models.registry import anchors_for_meta


@pytest.mark.parametrize("arch,size,total,formula", [
    ("ssd_300_vgg16_atrous", 300, 8732, "38²·4 + 19²·6 + 10²·6 + 5²·6 + 3²·4 + 1²·4 = 8732"),
    ("tiny", 256, 5444, "32²·4 + 16²·4 + 8²·4 + 4²·4 + 1²·4 = 5444"),
])
def test_per_layer_anchor_tables(arch, size, total, formula):
    from ssd.models.multiscale import count_formula, layer_table

    aset = anchors_for_meta({"arch": arch, "classes": ["x"], "input_size": size})
    rows = layer_table(aset)
    assert sum(r["anchors"] for r in rows) == total == len(aset.anchors)
    assert all(r["anchors"] == int(r["feature map"].split("×")[0]) ** 2 * r["anchors per cell"] for r in rows)
    assert count_formula(aset) == formula


def test_multiscale_anchors_are_multibox_prior_on_4_2_1_maps():
    from ssd.models.anchors import multibox_prior
    from ssd.models.multiscale import multiscale_anchors

    scales = multiscale_anchors()
    assert [s.total() for s in scales] == [48, 12, 3]
    np.testing.assert_array_equal(scales[0].boxes, multibox_prior((4, 4), [0.15], [1, 2, 0.5]))
    np.testing.assert_allclose(scales[2].boxes[0, 0, 0], [0.1, 0.1, 0.9, 0.9], atol=1e-6)  # 1×1, size 0.8


def test_loss_shapes_follow_the_d2l_formulas():
    from ssd.models.loss_shapes import box_loss_curve, class_loss_curve

    x = np.linspace(-2, 2, 41)
    for sigma in (0.5, 1.0, 3.0):
        expected = np.where(np.abs(x) < 1 / sigma ** 2, (sigma * x) ** 2 / 2, np.abs(x) - 0.5 / sigma ** 2)
        np.testing.assert_allclose(box_loss_curve(x, "smooth_l1", sigma), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(box_loss_curve(x, "l1"), np.abs(x), atol=1e-6)
    p = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(class_loss_curve(p, "ce"), -np.log(p), rtol=1e-4)
    for gamma in (0.0, 1.0, 5.0):
        np.testing.assert_allclose(class_loss_curve(p, "focal", gamma), -(1 - p) ** gamma * np.log(p), rtol=1e-3)


def test_anchor_roles_keep_three_negatives_per_positive(tiny_model_dir, synth_dir):
    from ssd.data.dataset import open_dataset
    from ssd.inference.detector import Detector
    from ssd.viz.heads import multibox_heads
    from ssd.models.mining import anchor_roles
    from ssd.models.targets import positive_anchors

    det = Detector.load(tiny_model_dir)
    img, label = open_dataset(synth_dir).val[0]
    heads = multibox_heads(det, img)
    roles = anchor_roles(heads.anchors, label, heads.cls_preds, ratio=3)
    assert len(roles.positives) > 0 and len(roles.negatives) == 3 * len(roles.positives)
    assert len(roles.positives) + len(roles.negatives) + len(roles.ignored) == 5444
    np.testing.assert_array_equal(roles.positives, positive_anchors(heads.anchors, label))
    unmined = anchor_roles(heads.anchors, label, heads.cls_preds, ratio=0)
    assert len(unmined.ignored) == 0 and len(unmined.negatives) == 5444 - len(roles.positives)


@pytest.mark.parametrize("nms,floor", [(0.45, 0.01), (0.3, 0.2), (0.7, 0.001)])
def test_nms_steps_end_in_exactly_the_detectors_output(tiny_model_dir, synth_dir, nms, floor):
    from ssd.data.dataset import open_dataset
    from ssd.inference.detector import Detector
    from ssd.viz.heads import multibox_heads
    from ssd.viz.nms_steps import nms_trace, overlaps

    det = Detector.load(tiny_model_dir)
    val = open_dataset(synth_dir).val
    for i in range(3):
        img, _ = val[i]
        heads = multibox_heads(det, img)
        trace = nms_trace(heads.anchors, heads.cls_preds, heads.box_preds, nms, floor)
        ids, scores, boxes = trace.final()
        ref_ids, ref_scores, ref_boxes = det.predict_arrays(heads.image[None], nms=nms, floor=floor)[0]
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(scores, ref_scores)
        np.testing.assert_array_equal(boxes, ref_boxes)
        assert trace.num_entering == min(trace.num_candidates, 400)
        assert (trace.scores[:-1] >= trace.scores[1:]).all()          # visited in descending score
        for step in trace.steps:                                       # each suppression is justified
            assert all(iou >= nms and trace.class_ids[j] == trace.class_ids[step.kept] for j, iou in step.suppressed)
        kept = trace.kept_rows()
        for a in range(len(kept)):                                     # and no two kept boxes collide
            later = kept[a + 1:][trace.class_ids[kept[a + 1:]] == trace.class_ids[kept[a]]]
            assert (overlaps(trace.boxes[kept[a]], trace.boxes[later]) < nms).all()
    # a floor above every score leaves nothing to suppress
    assert nms_trace(heads.anchors, heads.cls_preds, heads.box_preds, nms, 1.01).steps == []


def test_one_image_evaluation_counts_and_agrees_with_voc_metric(tiny_model_dir, synth_dir):
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric

    from ssd.data.dataset import open_dataset
    from ssd.inference.detector import Detector
    from ssd.viz.image_eval import match_detections, operating_point, split_detections

    det = Detector.load(tiny_model_dir)
    val = open_dataset(synth_dir).val
    split = split_detections(det, val, 8, nms=0.45, floor=0.01)
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=det.classes)
    flags = []
    for (ids, scores, boxes), (gcls, gboxes) in zip(split.detections, split.ground_truth):
        for conf in (0.01, 0.3, 0.6):
            keep = scores >= conf
            m = match_detections(ids[keep], scores[keep], boxes[keep], gcls, gboxes, 0.5)
            assert m.tp + m.fn == len(gcls)                   # every object found or missed
            assert m.tp + m.fp == int(keep.sum())             # every detection shown is TP or FP
        m = match_detections(ids, scores, boxes, gcls, gboxes, 0.5)
        order = scores.argsort()[::-1]                         # the metric's order (one class here)
        flags.extend(m.det_tp[order].astype(int).tolist())
        metric.update([boxes[None]], [ids[None].astype(np.float32)], [scores[None]], [gboxes[None]],
                      [gcls[None].astype(np.float32)])
    assert flags == list(metric._match[0])
    point = operating_point(split, 0.01)["pikachu"]
    assert point["tp"] == sum(flags) and point["objects"] == metric._n_pos[0]
    assert point["recall"] == pytest.approx(sum(flags) / metric._n_pos[0])


@pytest.mark.parametrize("text", ["nan; 0.3", "0.2, inf", "-inf"])
def test_anchor_groups_refuse_values_that_are_not_finite(text):
    """'nan' and 'inf' parse as floats but MultiBoxPrior refuses them with an MXNetError."""
    from ssd.models.anchors import parse_groups

    with pytest.raises(ValueError, match="not a finite number"):
        parse_groups(text)


@pytest.mark.parametrize("sizes,ratios", [([[0.15], [0.4], [0.8]], [0.0]), ([[0.15], [0.4], [0.8]], [1, -1]),
                                          ([[0.15], [0.0], [0.8]], [1])])
def test_multiscale_anchors_refuse_sizes_and_ratios_that_are_not_positive(sizes, ratios):
    """A ratio 0 makes MultiBoxPrior divide by zero (infinite boxes): refused as the Anchors page does."""
    from ssd.models.multiscale import multiscale_anchors

    with pytest.raises(ValueError, match="positive"):
        multiscale_anchors((4, 2, 1), sizes, ratios)


def test_d2l_worked_examples_come_out_as_the_book_prints_them():
    """d2l's Anchor Boxes section: the dog/cat labeling of 5 anchors and the NMS of 4 candidates."""
    from ssd.models.mining import anchor_roles
    from ssd.models.targets import positive_anchors
    from ssd.viz.nms_steps import nms_trace

    gt = np.array([[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]])
    anchors = np.array([[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                        [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])
    np.testing.assert_array_equal(anchor_roles(anchors, gt, np.zeros((5, 3)), ratio=0).cls_target, [0, 1, 2, 0, 2])
    np.testing.assert_array_equal(positive_anchors(anchors, gt), [1, 2, 4])
    boxes = np.array([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95], [0.15, 0.3, 0.62, 0.91],
                      [0.55, 0.2, 0.9, 0.88]])
    probs = np.array([[0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]]).T
    with np.errstate(divide="ignore"):
        ids, scores, kept = nms_trace(boxes, np.log(probs), np.zeros(16), 0.5, 0.01).final()
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_allclose(scores, [0.9, 0.9], atol=1e-6)
    np.testing.assert_allclose(kept, boxes[[0, 3]], atol=1e-6)


@pytest.mark.parametrize("text, ratios", [("1, 2, 0.5", [1.0, 2.0, 0.5]), ("3", [3.0]), ("1 2;", [1.0, 2.0])])
def test_multiscale_ratios_are_one_group_shared_by_every_map(text, ratios):
    from ssd.models.multiscale import parse_ratios

    assert parse_ratios(text) == ratios


def test_multiscale_ratios_refuse_a_group_per_map():
    from ssd.models.multiscale import parse_ratios

    with pytest.raises(ValueError, match="one group"):
        parse_ratios("1; 2, 0.5")


def test_an_anchor_exactly_at_the_iou_threshold_is_not_positive():
    """MXNet's MultiBoxTarget wants an IoU above the threshold (Dive into Deep Learning's own code takes
    'at least'): the rule the Anchors page states (test_tutorial_numbers.py reads it there)."""
    from ssd.models.targets import positive_anchors

    gt = np.array([[0, 0, 0, 0.5, 1.0]])
    anchors = np.array([[0, 0, 0.5, 1.0], [0, 0, 0.25, 1.0], [0.5, 0.5, 1, 1]])      # IoU 1, exactly 0.5, 0
    np.testing.assert_array_equal(positive_anchors(anchors, gt, 0.5), [0])          # 0 only as the box's best
    np.testing.assert_array_equal(positive_anchors(anchors, gt, 0.49), [0, 1])


@pytest.mark.parametrize("text,groups", [
    ("[[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]",   # Dive into Deep Learning's sizes
     [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]),
    ("[[1, 2, 0.5]] * 5", [[1.0, 2.0, 0.5]] * 5),                                      # its ratios
    ("[.5, .25, .1]", [[0.5, 0.25, 0.1]]),                                             # the Gluon tutorial's sizes
    ("ratios = [[1, 2, 0.5]] * 2", [[1.0, 2.0, 0.5]] * 2),                              # the whole line copied
    ("0.2, 0.272; 0.37, 0.447", [[0.2, 0.272], [0.37, 0.447]]),                        # our own notation
])
def test_anchor_groups_read_the_lists_the_tutorials_print(text, groups):
    """A student pastes the sizes and ratios as the book's code writes them, and gets those anchors."""
    from ssd.models.anchors import parse_groups
    from ssd.models.multiscale import parse_ratios

    assert parse_groups(text) == groups
    assert parse_ratios("[1, 2, .5]") == [1.0, 2.0, 0.5]


@pytest.mark.parametrize("text", ["[[0.2, 0.3]] * 0", "[0.2, 0.3] * 2", "[[0.2, [0.3]]", "[[0.2]] * 1000"])
def test_anchor_groups_refuse_lists_they_cannot_read_plainly(text):
    from ssd.models.anchors import parse_groups

    with pytest.raises(ValueError):
        parse_groups(text)


def test_one_size_group_says_each_group_is_one_feature_map():
    """The Gluon tutorial's single MultiBoxPrior call (sizes .5, .25, .1) typed as TinySSD's sizes: the
    refusal says how to write one group per feature map, not only that two scales are needed."""
    from ssd.models.anchors import parse_groups
    from ssd.models.tiny import tiny_anchor_config

    with pytest.raises(ValueError, match=r"one group per feature map.*';'"):
        tiny_anchor_config(256, parse_groups("[.5, .25, .1]"), parse_groups("1, 2, .5"))
