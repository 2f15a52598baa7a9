"""The worked numbers the tutorials print, from the library calls the Anchors and Learn pages make.

Dive into Deep Learning's "Anchor Boxes" and "Single Shot Multibox Detection", and the MXNet Gluon
tutorial "Object Detection Using Convolutional Neural Networks". (Their first anchor of cell
(20, 20), the labels of the dog-and-cat example, its NMS and TinySSD's 5444 anchors are proved in
test_anchors_model.py and test_learn.py.)
"""
from __future__ import annotations

import math
import os

import mxnet as mx
import numpy as np
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

from ssd.models.anchors import multibox_prior
from ssd.models.anchor_set import anchor_set
from ssd.models.targets import multibox_targets
from ssd.models.tiny import TINY_RATIOS, TINY_SIZES, TinySSD, tiny_anchor_config

# "Anchor Boxes": a dog and a cat ([class, corners]) and five anchors.
GROUND_TRUTH = np.array([[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]])
ANCHORS = np.array([[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                    [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])


def test_anchor_boxes_first_anchor_of_pixel_250_250_on_the_561_by_728_image():
    """The book's image is 561 high and 728 wide; sizes 0.75, 0.5, 0.25 and ratios 1, 2, 0.5: 5 anchors
    a pixel, 2042040 in all, the first at pixel (250, 250) printed as [0.06, 0.07, 0.63, 0.82]."""
    boxes = multibox_prior((561, 728), sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5])
    assert boxes.shape == (561, 728, 5, 4) and boxes.size // 4 == 2042040
    np.testing.assert_allclose(boxes[250, 250, 0], [0.06, 0.07, 0.63, 0.82], atol=0.005)


def test_anchor_boxes_labelling_prints_these_offsets_masks_and_classes():
    labels = np.full((1, 3, 5), -1.0)
    labels[0, :2] = GROUND_TRUTH
    offsets, mask, classes = multibox_targets(mx.nd, mx.nd.array(ANCHORS[None]), mx.nd.array(labels),
                                              mx.nd.zeros((1, 5, 3)))
    np.testing.assert_array_equal(classes.asnumpy()[0], [0, 1, 2, 0, 2])
    np.testing.assert_array_equal(mask.asnumpy()[0], [0] * 4 + [1] * 8 + [0] * 4 + [1] * 4)
    printed = [0, 0, 0, 0, 1.40, 10.0, 2.59, 7.18, -1.20, 0.269, 1.68, -1.57,
               0, 0, 0, 0, -0.571, -1.00, 4.17e-06, 0.626]
    np.testing.assert_allclose(offsets.asnumpy()[0], printed, rtol=0.005, atol=1e-5)


def test_single_shot_multibox_detection_sizes_split_0_2_to_1_05_and_take_geometric_means():
    """0.2, 0.37, 0.54, … (0.2 to 1.05 in five equal parts), then √(0.2·0.37) = 0.272,
    √(0.37·0.54) = 0.447, …"""
    smaller = [0.2 + 0.17 * i for i in range(5)]
    np.testing.assert_allclose([s[0] for s in TINY_SIZES], smaller, atol=1e-9)
    means = [math.sqrt(a * b) for a, b in zip(smaller, smaller[1:] + [1.05])]
    np.testing.assert_allclose([s[1] for s in TINY_SIZES], means, atol=0.0006)
    assert all(r == [1.0, 2.0, 0.5] for r in TINY_RATIOS)


def test_gluon_tutorial_prints_these_first_and_last_anchors():
    """ToySSD's anchors at 256×256: the first three (32×32 map) and last three (1×1 map) as printed."""
    anchors = anchor_set(tiny_anchor_config(256, TINY_SIZES, TINY_RATIOS), 256).anchors
    np.testing.assert_allclose(anchors[:3], [[-0.084375, -0.084375, 0.115625, 0.115625],
                                             [-0.12037501, -0.12037501, 0.15162501, 0.15162501],
                                             [-0.12579636, -0.05508568, 0.15704636, 0.08633568]], atol=1e-6)
    np.testing.assert_allclose(anchors[-3:], [[0.01949999, 0.01949999, 0.98049998, 0.98049998],
                                              [-0.12225395, 0.18887302, 1.12225389, 0.81112695],
                                              [0.18887302, -0.12225395, 0.81112695, 1.12225389]], atol=1e-6)


def test_gluon_tutorial_shapes_of_heads_blocks_and_concatenated_predictions():
    """5 anchors × (10 + 1) = 55 class channels on a 20×20 map and 3 × 11 = 33 on a 10×10 one; flattened
    and concatenated, 22000 + 3300 = 25300 a picture; the body turns 256×256 into 64×32×32; a
    down-sampling block halves height and width; ToySSD(2) gives (1, 5444, 3) and (1, 21776)."""
    def net() -> TinySSD:      # a head probed alone takes its input's channels: a fresh net each time
        n = TinySSD(10, input_size=160, sizes=[[0.5, 0.25, 0.1], [0.3], [0.6]], ratios=[[1, 2, 0.5]])
        n.initialize()
        return n

    assert net().feature_map_shapes() == [(20, 20), (10, 10), (1, 1)]
    probe = net()
    assert probe.cls_heads[0](mx.nd.zeros((2, 8, 20, 20))).shape == (2, 55, 20, 20)
    assert probe.box_heads[0](mx.nd.zeros((2, 8, 20, 20))).shape == (2, 20, 20, 20)
    assert probe.cls_heads[1](mx.nd.zeros((2, 16, 10, 10))).shape == (2, 33, 10, 10)
    assert probe.blocks[1](mx.nd.zeros((2, 3, 20, 20))).shape == (2, 128, 10, 10)
    _, cls_preds, _ = net()(mx.nd.zeros((2, 3, 160, 160)))
    assert cls_preds.shape == (2, 2000 + 300 + 3, 11) and (2000 + 300) * 11 == 25300
    toy = TinySSD(2)
    toy.initialize()
    assert toy.blocks[0](mx.nd.zeros((2, 3, 256, 256))).shape == (2, 64, 32, 32)
    anchors, cls_preds, box_preds = toy(mx.nd.zeros((1, 3, 256, 256)))
    assert (anchors.shape, cls_preds.shape, box_preds.shape) == ((1, 5444, 4), (1, 5444, 3), (1, 21776))


def test_anchors_page_with_the_gluon_tutorials_40_by_40_example():
    """Custom anchors at 320 px put a 40×40 map first: sizes .5, .25, .1 and ratios 1, 2, .5 give its
    cell (20, 20) n + m − 1 = 5 anchors, the first 0.5 of the side (160 px) square."""
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=180).run()
    at = at.switch_page("app_pages/anchors.py").run()
    at.number_input(key="anchors_input").set_value(320)
    at.text_input(key="anchors_sizes").set_value("0.5, 0.25, 0.1; 0.9")
    at.text_input(key="anchors_ratios").set_value("1, 2, 0.5").run()
    at.selectbox(key="anchors_scale").set_value(0).run()
    at.number_input(key="anchors_row::0").set_value(20)
    at.number_input(key="anchors_col::0").set_value(20).run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Total anchors"] == str(40 * 40 * 5 + 1 * 3) and metrics["Anchors in this cell"] == "5"
    table = at.dataframe[1].value
    assert list(table["w px"]) == [160.0, 80.0, 32.0, round(160 * math.sqrt(2), 1), round(160 / math.sqrt(2), 1)]
    assert list(table["anchor"])[0] == "s=0.5, r=1"
    intro = at.markdown[0].value                                   # the tutorials, by their titles
    assert '"Single Shot Multibox Detection"' in intro
    assert '"Object Detection Using Convolutional Neural Networks"' in intro
    rule = next(c.value for c in at.caption if "MultiBoxTarget" in c.value)
    assert "IoU with a box exceeds the threshold" in rule       # MXNet's '>', not d2l's '>=' (test_learn.py)


def test_anchors_page_takes_the_books_sizes_and_ratios_as_its_code_writes_them():
    """Pasted from "Single Shot Multibox Detection" (``sizes = [[0.2, 0.272], …]``, ``ratios = [[1, 2,
    0.5]] * 5``): the book's 5444 anchors, four per cell, not an error."""
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=180).run()
    at = at.switch_page("app_pages/anchors.py").run()
    at.radio(key="anchors_source").set_value("Custom").run()
    at.text_input(key="anchors_sizes").set_value(
        "[[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]")
    at.text_input(key="anchors_ratios").set_value("[[1, 2, 0.5]] * 5").run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Total anchors"] == "5444" and metrics["Anchors in this cell"] == "4"
    assert list(at.dataframe[0].value["sizes"]) == [f"{a}, {b}" for a, b in TINY_SIZES]


def test_anchors_page_says_when_a_models_sizes_are_not_the_books(shipped_models_root, monkeypatch, tmp_path):
    """The shipped model's first map has sizes 0.1, 0.16, where the book's TinySSD has 0.2, 0.272: the
    page opening on it says so (and how to see the book's), and says nothing for the book's own sizes."""
    from ssd.models.tiny import book_anchors_note

    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=180).run()
    at = at.switch_page("app_pages/anchors.py").run()
    assert not at.exception, [e.value for e in at.exception]
    note = next(c.value for c in at.sidebar.caption if "Single Shot Multibox Detection" in c.value)
    assert "0.1, 0.16" in note and "0.2, 0.272" in note and "Custom" in note
    book = {"arch": "tiny", "anchors": {"sizes": TINY_SIZES, "ratios": TINY_RATIOS}}
    assert book_anchors_note(book) is None and book_anchors_note({"arch": "tiny"}) is None
    assert book_anchors_note({"arch": "ssd_300_vgg16_atrous"}) is None
    assert book_anchors_note({"arch": "tiny", "anchors": {"sizes": [["x"]]}}) is None     # an odd meta.json


def test_anchors_page_says_rows_and_columns_count_from_0():
    """The Gluon tutorial calls boxes[20, 20] "row 21, column 21": the Row and Column inputs say they
    count from 0, so a student typing 21 does not look at the next cell and find other numbers."""
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=180).run()
    at = at.switch_page("app_pages/anchors.py").run()
    scale = at.selectbox(key="anchors_scale").value
    for key in (f"anchors_row::{scale}", f"anchors_col::{scale}"):
        assert "from 0" in (at.number_input(key=key).help or "")
