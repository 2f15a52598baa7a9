"""AppTest of the Learn pages and of the Train page's named metrics: each page renders, and what it
shows is what the library computes for the same model, image and settings."""
from __future__ import annotations

import os

import numpy as np
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")


def _page(path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    _ok(at)
    at = at.switch_page(path).run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_learn_anchors_shows_8732_for_ssd300_and_5444_for_tiny(app_env):
    at = _page("app_pages/learn_anchors.py")
    assert _metric(at, "Anchors in all") == "8732"
    assert any("38²·4 + 19²·6" in c.value for c in at.caption)
    at.selectbox(key="learn_ms_arch").set_value("tiny").run()
    _ok(at)
    assert _metric(at, "Anchors in all") == "5444"
    at.slider(key="learn_ms_size4").set_value(0.3).run()
    _ok(at)
    at.selectbox(key="learn_ms_arch").set_value("ssdlite320_mobilenet_v3_large").run()
    _ok(at)
    assert _metric(at, "Anchors in all") == "3234"          # at its native 320 px: 20²·6 + … + 1²·6
    assert any("20²·6 + 10²·6" in c.value for c in at.caption)


def test_learn_losses_roles_match_the_library(app_env):
    from ssd.inference.detector import Detector
    from ssd.viz.heads import multibox_heads
    from ssd.models.mining import anchor_roles
    from ssd.workspace import demo_sample_index, sample_images

    at = _page("app_pages/learn_losses.py")
    at.slider(key="learn_loss_sigma").set_value(0.5).run()
    _ok(at)
    pool = sample_images(8, 0, app_env["data"])
    sample = pool[demo_sample_index(pool)]
    heads = multibox_heads(Detector.load(app_env["model"]), sample.array())
    roles = anchor_roles(heads.anchors, sample.label, heads.cls_preds, 3.0, 0.5)
    assert int(_metric(at, "Positive anchors")) == len(roles.positives) > 0
    assert int(_metric(at, "Mined negatives (kept)")) == 3 * len(roles.positives)
    assert at.slider(key="learn_loss_ratio").proto.format % 3.0 == "3"   # a count, not "3.00"
    at.slider(key="learn_loss_ratio").set_value(0.0).run()
    _ok(at)
    assert _metric(at, "Ignored anchors") == "0"


def test_learn_nms_steps_end_in_the_detectors_output(app_env):
    at = _page("app_pages/learn_nms.py")
    at.slider(key="learn_nms_floor").set_value(0.1).run()
    _ok(at)
    assert at.success and "exactly" in at.success[0].value
    kept = int(_metric(at, "Kept after NMS"))
    if kept > 1:
        at.slider(key="learn_nms_step::None").set_value(kept).run()
        _ok(at)
    assert int(_metric(at, "Entering NMS")) <= 400


def test_learn_eval_counts_add_up(app_env):
    at = _page("app_pages/learn_eval.py")
    at.number_input(key="learn_eval_limit").set_value(8).run()
    at.slider(key="learn_eval_conf").set_value(0.2).run()
    _ok(at)
    tp, fp, fn = (int(_metric(at, k)) for k in ("TP", "FP", "FN"))
    caption = next(c.value for c in at.caption if "detection(s) shown" in c.value)
    shown, objects = (int(caption.split(" detection")[0]), int(caption.split("; ")[1].split(" object")[0]))
    assert tp + fp == shown and tp + fn == objects > 0
    assert float(_metric(at, "mAP (VOC07, 11-point)")) >= 0.0
    assert any("AP" in d.value.columns for d in at.dataframe)


def test_learn_eval_opens_on_the_image_that_shows_most_outcomes(app_env):
    """The default images are scenes of four characters; the page opens on the first that shows the
    most of TP, FP and FN (computed here by the library for the same model and split)."""
    from ssd.data.dataset import InMemoryDataset
    from ssd.inference.engines import load_detector
    from ssd.inference.thresholds import DEFAULT_NMS, EVAL_FLOOR
    from ssd.viz.image_eval import image_eval, split_detections, start_image
    from ssd.workspace import sample_scenes

    at = _page("app_pages/learn_eval.py")
    assert at.selectbox(key="learn_eval_source").value.startswith("synthetic Pikachu scenes")
    det = load_detector(app_env["model"])                        # the engine the page picks ("auto")
    scenes = sample_scenes(16, 0, app_env["data"])
    ds = InMemoryDataset([s.array() for s in scenes], [s.label for s in scenes], det.classes, "synthetic")
    split = split_detections(det, ds, 32, DEFAULT_NMS, EVAL_FLOOR)
    start = start_image(split, 0.5, 0.5)
    assert at.number_input(key="learn_eval_index").value == start + 1
    m = image_eval(split, start, 0.5, 0.5).match
    assert [int(_metric(at, k)) for k in ("TP", "FP", "FN")] == [m.tp, m.fp, m.fn]
    kinds = [sum(int(v > 0) for v in (e.tp, e.fp, e.fn))
             for e in (image_eval(split, i, 0.5, 0.5).match for i in range(len(split.detections)))]
    assert kinds.index(max(kinds)) == start                          # the first with the most kinds
    at.number_input(key="learn_eval_index").set_value(1).run()          # the person's choice then stays
    at.slider(key="learn_eval_conf").set_value(0.3).run()
    _ok(at)
    assert at.number_input(key="learn_eval_index").value == 1


def test_train_page_names_both_class_errors(app_env, shipped_models_root, monkeypatch):
    at = _page("app_pages/train.py")
    d2l, mined = _metric(at, "class err"), _metric(at, "mined class err")
    assert d2l != "n/a" and mined != "n/a" and float(d2l) < float(mined)   # new history: both recorded
    assert any("(its cls_eval)" in c.value for c in at.caption)   # the chapter's definition, named
    # an old saved model (the shipped one): its class_err was the mined one
    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    at = _page("app_pages/train.py")
    assert _metric(at, "class err") == "n/a"
    assert float(_metric(at, "mined class err")) > 0 and np.isfinite(float(_metric(at, "bbox MAE")))
    next(b for b in at.button if b.label.startswith("Measure class err")).click().run()
    _ok(at)
    measured = float(_metric(at, "class err (measured)"))
    assert 0 <= measured < float(_metric(at, "mined class err (measured)"))


def test_learn_nms_stepping_runs_no_network(app_env, monkeypatch):
    """Moving the Step slider only redraws: the Detector check is not run again for each step."""
    from ssd.inference.detector import Detector

    at = _page("app_pages/learn_nms.py")
    at.slider(key="learn_nms_floor").set_value(0.01).run()
    _ok(at)
    kept = int(_metric(at, "Kept after NMS"))
    assert kept > 1
    calls = []
    real = Detector.predict_arrays
    monkeypatch.setattr(Detector, "predict_arrays", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    at.slider(key="learn_nms_step::None").set_value(kept).run()
    _ok(at)
    assert at.success and "exactly" in at.success[0].value
    assert calls == []


def test_learn_anchors_refuses_impossible_ratios_in_one_line(app_env):
    at = _page("app_pages/learn_anchors.py")
    assert any("Multiscale Object Detection" in c.value for c in at.caption)     # the book's section, by title
    for text, said in (("nan", "not a finite number"), ("1, 0", "positive")):
        at.text_input(key="learn_ms_ratios").set_value(text).run()
        _ok(at)
        assert any(said in e.value for e in at.error)


def test_learn_nms_draws_a_class_name_with_dollars_as_text(tmp_path, monkeypatch):
    """A class name (a shared model's meta.json) with a '$' pair: the step figure parsed it as mathtext
    and the page showed a traceback. It is drawn, and written in the step's sentence, as typed (the
    Markdown side is test_dataset_names_in_pages.py's)."""
    import json
    import shutil

    from conftest import SHIPPED_MODEL
    from ssd.base.text import md_escape

    name = r"pika $\oops$"
    model = tmp_path / "models" / "shared"
    model.mkdir(parents=True)
    shutil.copy(os.path.join(SHIPPED_MODEL, "model.params"), model)
    meta = json.loads(open(os.path.join(SHIPPED_MODEL, "meta.json")).read())
    (model / "meta.json").write_text(json.dumps(dict(meta, classes=[name])))
    monkeypatch.setenv("SSD_MODELS_DIR", str(model.parent))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = _page("app_pages/learn_nms.py")
    _ok(at)
    step = next(m.value for m in at.markdown if m.value.startswith("**Step 1 of"))
    assert md_escape(name) in step


def test_learn_anchors_says_so_when_ratios_come_in_several_groups():
    """'1; 2' drew the ratio-1 anchors alone, silently: the maps share one group of ratios."""
    at = _page("app_pages/learn_anchors.py")
    at.text_input(key="learn_ms_ratios").set_value("1; 2").run()
    _ok(at)
    assert any("one group" in e.value for e in at.error)
    at.text_input(key="learn_ms_ratios").set_value("1, 2").run()
    _ok(at)
    assert not at.error


def test_learn_losses_moving_sigma_or_gamma_leaves_the_anchor_roles_alone(shipped_models_root, monkeypatch):
    """σ and γ only shape the loss curves: the anchor roles (a MultiBoxTarget call) and their figure
    (thousands of anchors at a low IoU, seconds to draw) must not be made again for them."""
    import ssd.models.mining as mining
    import ssd.viz.learn as learn

    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = _page("app_pages/learn_losses.py")
    at.slider(key="learn_loss_overlap").set_value(0.3).run()
    _ok(at)
    positives = _metric(at, "Positive anchors")
    calls = []
    for module, name in ((mining, "anchor_roles"), (learn, "anchor_roles_figure")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    at.slider(key="learn_loss_sigma").set_value(1.0).run()
    at.slider(key="learn_loss_gamma").set_value(0.5).run()
    _ok(at)
    assert calls == [] and _metric(at, "Positive anchors") == positives


def test_train_page_measure_button_shows_a_dataset_folder_name_as_text(shipped_models_root, tmp_path, monkeypatch):
    """The button and caption that measure an old model's class err name a dataset folder: a name is
    text, never a link or an image fetched from a stranger's host."""
    from ssd.base.text import md_escape
    from ssd.data.synthetic import generate

    name = "![img](evil.png) [look](page.html) **now**"
    generate(str(tmp_path / name), num_train=4, num_val=4, seed=0)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = _page("app_pages/train.py")
    button = next(b for b in at.button if b.label.startswith("Measure class err"))
    assert md_escape(name) in button.label and "](page" not in button.label
    button.click().run()
    _ok(at)
    caption = next(c.value for c in at.caption if "through the training loss graph" in c.value)
    assert md_escape(name) in caption and "](page" not in caption


def test_learn_losses_names_the_class_loss_training_uses(app_env):
    """The note under the loss curves says what training computes by default (cross-entropy: focal
    loss, with its α, only when asked for), not that training weights focal loss by α."""
    from ssd.models.losses import FOCAL_ALPHA
    from ssd.training.config import TrainConfig

    at = _page("app_pages/learn_losses.py")
    note = next(c.value for c in at.caption if "Focal loss multiplies" in c.value)
    default = TrainConfig.__dataclass_fields__["cls_loss"].default
    assert default == "ce"
    assert "Training uses cross-entropy" in note and "--cls-loss focal" in note
    assert f"α = {FOCAL_ALPHA:g}" in note and "training uses α" not in note
