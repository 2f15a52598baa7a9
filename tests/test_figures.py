"""Figures that read at any width: labels clear of each other and of the frame, panels that a page can
stack on a phone, and the image the evaluation page opens on."""
from __future__ import annotations

import itertools

import numpy as np
import pytest


def _label_boxes(fig):
    """Display-pixel boxes (tag included) of every text drawn in the image axes, and the axes' own."""
    from ssd.viz.labels import _renderer

    renderer = _renderer(fig)
    ax = fig.axes[0]
    boxes = []
    for t in ax.texts:
        patch = t.get_bbox_patch()
        t.update_bbox_position_size(renderer)
        ext = patch.get_window_extent(renderer) if patch is not None else t.get_window_extent(renderer)
        boxes.append((ext.x0, ext.y0, ext.x1, ext.y1))
    frame = ax.get_window_extent(renderer)
    return boxes, (frame.x0, frame.y0, frame.x1, frame.y1)


def _apart_and_inside(boxes, frame, slack: float = 1.0) -> None:
    for a, b in itertools.combinations(boxes, 2):
        assert not (a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack), (a, b)
    for x0, y0, x1, y1 in boxes:
        assert frame[0] - slack <= x0 and x1 <= frame[2] + slack and frame[1] - slack <= y0 and y1 <= frame[3] + slack


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from ssd.workspace import demo_sample_index, sample_images

    pool = sample_images(8, 0, str(tmp_path_factory.mktemp("data")))
    return pool[demo_sample_index(pool)]


@pytest.mark.parametrize("scale", [0, 4])        # TinySSD's 32×32 map (crowded) and its 1×1 map (past the frame)
def test_anchor_labels_neither_overlap_nor_leave_the_frame(sample, scale):
    from ssd.models.anchor_set import anchor_set
    from ssd.models.tiny import tiny_anchor_config
    from ssd.viz.plots import cell_anchors_figure
    from ssd.workspace import gt_boxes_of

    aset = anchor_set(tiny_anchor_config(256), 256)
    fh, fw = aset.feature_maps[scale]
    gt = gt_boxes_of([sample.label])
    fig = cell_anchors_figure(sample.array(), aset, scale, fh // 2, fw // 2, False, gt, [0.12, 0.34, 0.56, 0.78])
    boxes, frame = _label_boxes(fig)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 5 and "ground truth" in texts and any("IoU 0.78" in t for t in texts)
    _apart_and_inside(boxes, frame)


def test_every_anchor_outline_has_a_halo(sample):
    """A blue anchor on the default image's blue-purple stripes must still show: white outline under it."""
    from ssd.models.anchor_set import anchor_set
    from ssd.models.tiny import tiny_anchor_config
    from ssd.viz.plots import cell_anchors_figure

    aset = anchor_set(tiny_anchor_config(256), 256)
    fig = cell_anchors_figure(sample.array(), aset, 2, 4, 4)
    outlines = [p for p in fig.axes[0].patches if not p.get_fill()]
    assert len(outlines) == 4 and all(p.get_path_effects() for p in outlines)


def test_nms_labels_sit_at_their_boxes(sample):
    """One object's suppressed candidates share corners: each IoU label touches its own box, none overlap."""
    from ssd.viz.learn import nms_step_figure
    from ssd.viz.nms_steps import NMSStep, NMSTrace

    rng = np.random.default_rng(0)
    base = np.array([0.3, 0.3, 0.7, 0.7])
    boxes = np.clip(base + rng.normal(0, 0.02, (12, 4)), 0, 1)
    trace = NMSTrace(boxes=boxes, scores=np.linspace(0.95, 0.4, 12), class_ids=np.zeros(12, int),
                     steps=[NMSStep(0, [(j, 0.9 - 0.01 * j) for j in range(1, 12)])], nms_threshold=0.45,
                     num_candidates=12, num_entering=12, floor=0.05)
    fig = nms_step_figure(sample.array(), trace, 0, ["pikachu"])
    ax = fig.axes[0]
    placed, frame = _label_boxes(fig)
    _apart_and_inside(placed, frame)
    assert len(placed) >= 6                         # most fit near the box; the page's table lists all
    h, w = sample.array().shape[:2]
    corners = ax.transData.transform(np.concatenate([boxes[:, :2], boxes[:, 2:]]) * [w, h])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    reach = 3 * (placed[0][3] - placed[0][1])        # within three label heights of the boxes
    for x0, y0, x1, y1 in placed:
        assert lo[0] - reach <= x0 and x1 <= hi[0] + reach and lo[1] - reach <= y0 and y1 <= hi[1] + reach


def test_panels_come_as_separate_figures_a_page_can_stack(sample):
    from ssd.models.multiscale import D2L_MAPS, D2L_RATIOS, D2L_SIZES, multiscale_anchors
    from ssd.viz.learn import multiscale_figures
    from ssd.viz.plots import training_curve_figures

    scales = multiscale_anchors(D2L_MAPS, [[s] for s in D2L_SIZES], D2L_RATIOS)
    figs = multiscale_figures(sample.array(), scales)
    assert len(figs) == 3 and all(len(f.axes) == 1 for f in figs)
    assert [f.axes[0].get_title().split(" ")[0] for f in figs] == [f"{n}×{n}" for n in D2L_MAPS]
    history = [{"epoch": e, "loss": 1.0 / e, "cls_loss": 0.5 / e, "box_loss": 0.5 / e, "class_err": 0.1 / e,
                "bbox_mae": 0.01 / e, "val_map": 0.3 * e} for e in (1, 2, 3)]
    curves = training_curve_figures(history)
    titles = [f.axes[0].get_title() for f in curves]
    assert titles[0] == "losses" and titles[2] == "validation mAP (VOC07)"
    assert all(name in titles[1] for name in ("class err", "bbox MAE", "mined class err", "Single Shot Multibox"))


def test_scenes_hold_four_characters_each_in_their_quarter(tmp_path):
    from ssd.workspace import sample_images, sample_scenes

    scenes = sample_scenes(2, 0, str(tmp_path))
    singles = sample_images(8, 0, str(tmp_path))
    assert len(scenes) == 2 and scenes[0].image().size == (512, 512)
    lab = scenes[1].label
    assert lab.shape == (4, 5)
    np.testing.assert_allclose(lab[3, 1:], (singles[7].label[0, 1:] + 1) / 2, rtol=1e-6)   # bottom-right tile
    assert np.array_equal(np.asarray(scenes[1].image())[256:, 256:], singles[7].array())


def test_the_evaluation_opens_on_an_image_showing_tp_fp_and_fn():
    from ssd.viz.image_eval import SplitDetections, image_eval, start_image

    one = (np.array([0]), np.array([0.9]), np.array([[10., 10, 50, 50]]))            # a clean hit
    gt_one = (np.array([0]), np.array([[10., 10, 50, 50]]))
    mixed = (np.array([0, 0]), np.array([0.9, 0.8]), np.array([[10., 10, 50, 50], [200, 200, 240, 240]]))
    gt_two = (np.array([0, 0]), np.array([[10., 10, 50, 50], [100, 100, 150, 150]]))
    split = SplitDetections([one, one, mixed], [gt_one, gt_one, gt_two], ["pikachu"], [0, 1, 2])
    m = image_eval(split, 2, 0.5).match
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)
    assert start_image(split, 0.5) == 2
    assert start_image(split, 0.95) == 0          # nothing shown: every image is a miss, the first it is


OUTSIDE = r"cost $\oops$ here"          # a class or folder name: a '$' pair makes matplotlib parse mathtext


def test_names_from_outside_are_drawn_as_they_are_never_as_mathtext(sample):
    """A class name (a model's meta.json) or a dataset folder's name with a '$' pair was parsed as
    mathtext: an unknown command raised at draw time, a traceback on the NMS, Evaluation and Anchors
    pages (and the Camera traps page's threshold sweep). Every such figure must draw the name literally."""
    from ssd.inference.evaluation import EvalResult
    from ssd.viz.image_eval import SplitDetections, image_eval
    from ssd.viz.learn import image_eval_figure, nms_step_figure, pr_operating_figure
    from ssd.viz.nms_steps import NMSStep, NMSTrace
    from ssd.viz.plots import coverage_figure, figure_png, pr_curve_figure
    from ssd.viz.sweep_plot import sweep_figure

    trace = NMSTrace(boxes=np.array([[0.3, 0.3, 0.7, 0.7]]), scores=np.array([0.9]), class_ids=np.zeros(1, int),
                     steps=[NMSStep(0)], nms_threshold=0.45, num_candidates=1, num_entering=1, floor=0.05)
    split = SplitDetections([(np.array([0]), np.array([0.9]), np.array([[10., 10, 50, 50]]))],
                            [(np.array([0]), np.array([[10., 10, 50, 50]]))], [OUTSIDE], [0])
    ev = image_eval(split, 0, 0.5)
    result = EvalResult(0.5, {OUTSIDE: 0.5}, 1, 1, {OUTSIDE: {"recall": [0.0, 1.0], "precision": [1.0, 0.5]}})
    figs = [nms_step_figure(sample.array(), trace, 0, [OUTSIDE]),
            image_eval_figure(sample.array(), ev.boxes, ev.labels, ev.match, ev.gt_boxes),
            pr_operating_figure(result, {OUTSIDE: {"precision": 1.0, "recall": 1.0, "detections": 1}}, 0.5),
            pr_curve_figure(result), coverage_figure(np.array([0.4, 0.7]), 0.5, f"{OUTSIDE}: 2 boxes (val)"),
            sweep_figure({"thresholds": [0.1, 0.2], "per_class_images": {OUTSIDE: [2, 1]},
                          "per_class_episodes": {OUTSIDE: [1, 1]}, "images_changed": [1, 0],
                          "episodes_changed": [0, 0], "current": 0.2})]
    for fig in figs:
        assert figure_png(fig)                                   # drawn: no ValueError from mathtext
        ax = fig.axes[0]
        texts = [t for t in ax.texts + [ax.title] + (ax.get_legend().get_texts() if ax.get_legend() else [])
                 if "oops" in t.get_text()]
        drawn = [t._preprocess_math(t.get_text()) for t in texts]                 # (what is drawn, as math?)
        assert drawn and all(OUTSIDE in shown and not math for shown, math in drawn)


def test_training_curve_titles_fit_their_figures():
    """Each panel's title is read whole: the Train page draws each panel about 4 inches wide, and a
    title wider than that was cut off at the figure's edge ("… · mi")."""
    from ssd.viz.labels import _renderer
    from ssd.viz.plots import training_curve_figures, training_curves_figure

    history = [{"epoch": e, "loss": 1.0 / e, "cls_loss": 0.5 / e, "box_loss": 0.5 / e, "class_err": 0.1 / e,
                "bbox_mae": 0.01 / e, "mined_class_err": 0.3 / e, "val_map": 0.3 * e} for e in (1, 2, 3)]
    for fig in [*training_curve_figures(history), training_curves_figure(history)]:
        renderer = _renderer(fig)
        width = fig.bbox.width
        for ax in fig.axes:
            ext = ax.title.get_window_extent(renderer)
            assert ax.get_title() and 0 <= ext.x0 and ext.x1 <= width, (ax.get_title(), ext.x0, ext.x1, width)
