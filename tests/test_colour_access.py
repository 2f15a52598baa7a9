"""Accessibility of the colours the app draws: label text contrast (WCAG) and colours that must be
told apart staying apart under simulated colour-vision deficiencies (Machado et al. 2009, ΔE00)."""
import numpy as np
import pytest

from ssd.viz.colour_vision import (MIN_CONTRAST, contrast_ratio, delta_e2000, lab, readable_text_on,
                                   simulate)
from ssd.viz.drawing import PALETTE, text_colour_on


@pytest.mark.parametrize("colour", PALETTE)
def test_box_label_text_contrast(colour):
    assert contrast_ratio(colour, text_colour_on(colour)) >= MIN_CONTRAST


def test_contrast_ratio_matches_wcag():
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio("white", "white") == pytest.approx(1.0)
    assert contrast_ratio((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)   # WCAG's grey


def test_readable_text_picks_the_better_of_black_and_white():
    assert readable_text_on((255, 255, 0)) == (0, 0, 0)
    assert readable_text_on((0, 0, 128)) == (255, 255, 255)


def test_delta_e2000_reference_pairs():
    """Sharma, Wu & Dalal (2005) test data, pairs 1, 3 and 7."""
    assert delta_e2000(np.array([50, 2.6772, -79.7751]), np.array([50, 0, -82.7485])) == pytest.approx(2.0425, abs=1e-4)
    assert delta_e2000(np.array([50, 2.8361, -74.0200]), np.array([50, 0, -82.7485])) == pytest.approx(3.4412, abs=1e-4)
    assert delta_e2000(np.array([50, 0, 0]), np.array([50, -1, 2])) == pytest.approx(2.3669, abs=1e-4)


def test_simulation_merges_red_and_green_for_red_green_dichromats():
    """The model works: pure red and green, far apart in normal vision, come close for a deuteranope."""
    normal = delta_e2000(lab(simulate((255, 0, 0), "normal")), lab(simulate((0, 128, 0), "normal")))
    deutan = delta_e2000(lab(simulate((255, 0, 0), "deuteranopia")), lab(simulate((0, 128, 0), "deuteranopia")))
    assert deutan < normal / 2
    assert np.allclose(simulate((128, 128, 128), "protanopia"), simulate((128, 128, 128), "normal"), atol=0.01)


@pytest.mark.parametrize("tag", ["lime", "tab:red", "tab:orange", "tab:blue", "tab:cyan", "magenta", "white"])
def test_figure_label_text_contrast(tag):
    from ssd.viz.labels import BoxLabel

    assert contrast_ratio(tag, BoxLabel((0, 0, 1, 1), "x", tag).ink()) >= MIN_CONTRAST


def _worst(colours):
    from ssd.viz.colour_vision import worst_distance

    return worst_distance(colours)


@pytest.mark.parametrize("n", [2, 3])
def test_first_classes_stay_apart_in_every_simulated_vision(n):
    """A two-class model's classes, and MegaDetector's animal / person / vehicle (ids 0, 1, 2)."""
    from ssd.viz.colour_vision import MIN_DELTA_E

    worst, vision, i, j = _worst(PALETTE[:n])
    assert worst >= MIN_DELTA_E, f"classes {i} and {j} are ΔE00 {worst:.1f} apart with {vision}"


def test_first_seven_classes_distinguishable_in_every_simulated_vision():
    """Up to seven classes stay clearly apart (the class name on the tag is the second cue)."""
    assert _worst(PALETTE[:7])[0] >= 10


@pytest.mark.parametrize("background", [(85, 95, 55), (115, 95, 70), (128, 128, 128), (40, 40, 40)])
def test_first_classes_stand_out_on_camera_trap_backgrounds(background):
    """Vegetation green, soil brown, infrared grey, night: box outlines of classes 0-2 must show.
    A lower bar than between classes (12, about five just-noticeable differences): the worst case is
    vermillion on vegetation for a protanope (13.7); the tag's text names the class regardless."""
    from ssd.viz.colour_vision import VISIONS, seen_distance

    for colour in PALETTE[:3]:
        assert min(seen_distance(colour, background, v) for v in VISIONS) >= 12


@pytest.mark.parametrize("group", [("positive", "mined negative", "ignored"), ("kept", "suppressed", "waiting"),
                                   ("TP", "FP", "FN"), ("FN", "found")])
def test_learn_roles_told_apart_without_full_colour_vision(group):
    """Each pair of roles that must be told apart: ΔE00 >= 20 in every simulated vision, or another line style."""
    from ssd.viz.colour_vision import MIN_DELTA_E, VISIONS, seen_distance
    from ssd.viz.learn import ROLE_STYLES

    for i, a in enumerate(group):
        for b in group[i + 1:]:
            (ca, la), (cb, lb) = ROLE_STYLES[a], ROLE_STYLES[b]
            apart = min(seen_distance(ca, cb, v) for v in VISIONS)
            assert apart >= MIN_DELTA_E or la != lb, f"{a} / {b}: ΔE00 {apart:.1f}, both {la}"


def test_evaluation_figure_draws_tp_fp_fn_in_different_line_styles():
    from types import SimpleNamespace

    from ssd.viz.learn import image_eval_figure

    match = SimpleNamespace(gt_found=[True, False], det_tp=[True, False], det_iou=[0.9, 0.1], tp=1, fp=1, fn=1)
    boxes = np.array([[5, 5, 30, 30], [40, 40, 60, 60]], dtype=float)
    fig = image_eval_figure(np.zeros((64, 64, 3), np.uint8), boxes, ["a", "a"], match, boxes + 1)
    styles = {p.get_linestyle() for p in fig.axes[0].patches}
    assert len(styles) >= 3          # solid TP, dotted FP, dashed ground truth / FN


def test_pr_curves_differ_in_line_style_as_well_as_colour():
    from types import SimpleNamespace

    from ssd.viz.learn import pr_operating_figure

    curve = {"recall": [0, 0.5, 1], "precision": [1, 0.8, 0.5]}
    result = SimpleNamespace(pr_curves={"animal": curve, "person": curve, "vehicle": curve},
                             per_class_ap={}, map=0.5)
    lines = pr_operating_figure(result, {}, 0.5).axes[0].get_lines()
    assert len({ln.get_linestyle() for ln in lines}) == 3


def test_boxes_summary_counts_boxes_per_class():
    from ssd.viz.drawing import boxes_summary

    det = type("D", (), {"class_ids": np.array([0, 1, 0, 5]), "classes": ["animal", "person"],
                         "__len__": lambda self: 4})()
    assert boxes_summary(det) == "2 animal, 1 person, 1 5"
    assert boxes_summary(None) == "no boxes"
