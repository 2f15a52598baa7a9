"""The computations the pages used to do inline, now library calls: each shown to give what the
page showed (the AppTest and browser tests prove the pages still show it)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image


def _png(size=(640, 480)) -> bytes:
    from ssd.data.synthetic import render_example

    buf = io.BytesIO()
    Image.fromarray(render_example(0, 3, "val")[0]).resize(size).save(buf, format="PNG")
    return buf.getvalue()


def test_detect_page_helpers(tiny_model_dir):
    from ssd.inference.batch import annotated_download, detect_images, mean_detection_ms, render_batch
    from ssd.inference.detector import Detector

    det = Detector.load(tiny_model_dir)
    items = [("a.png", _png((800, 600))), ("b.png", _png((320, 240))), ("bad.jpg", b"not an image")]
    results = detect_images(det, items, 0.45)
    bad = results[2]
    assert not bad.ok and bad.message.count("bad.jpg") == 1          # named once, whatever the error says
    bad.error = "truncated data"
    assert bad.message == "bad.jpg: truncated data"
    rendered = render_batch(results, 0.0, None, 3)
    times = [r.item.raw.timings_ms["total"] for r in rendered]
    assert mean_detection_ms(rendered) == sum(times) / 2 > 0 and mean_detection_ms([]) == 0.0
    one = Image.open(io.BytesIO(annotated_download(rendered[:1], items)))
    assert one.format == "PNG" and one.size == (800, 600)                 # the original's resolution
    with zipfile.ZipFile(io.BytesIO(annotated_download(rendered, items))) as zf:
        assert zf.namelist() == ["a_detections.png", "b_detections.png"]
        assert Image.open(zf.open("b_detections.png")).size == (320, 240)


def test_train_page_helpers(tmp_path):
    import json

    from ssd import jobs
    from ssd.training.config import TrainConfig, start_from

    run = tmp_path / "run"
    assert not jobs.folder_taken(str(run))
    run.mkdir()
    assert not jobs.folder_taken(str(run))                   # an empty folder: a new run may use it
    (run / "meta.json").write_text(json.dumps({"arch": "tiny"}))
    assert jobs.folder_taken(str(run))
    from ssd.training.checkpoint import CHECKPOINT_DIR

    half = tmp_path / "half" / CHECKPOINT_DIR                # a resumable run without meta.json
    half.mkdir(parents=True)
    (half / "checkpoint.json").write_text("{}")
    assert jobs.can_resume(str(tmp_path / "half")) and jobs.folder_taken(str(tmp_path / "half"))

    voc = tmp_path / "voc-ssd"                               # a saved model folder
    voc.mkdir()
    (voc / "meta.json").write_text(json.dumps({"arch": "ssd_300_vgg16_atrous", "classes": ["cat"], "input_size": 300}))
    (voc / "model.params").write_bytes(b"")
    cfg = TrainConfig(data="d", out="o", arch="ssd_300_vgg16_atrous")
    start_from(cfg, "coco", str(voc))
    assert (cfg.pretrained, cfg.arch) == ("coco", "ssd_300_vgg16_atrous")   # a named starting point wins
    cfg = TrainConfig(data="d", out="o")
    start_from(cfg, "coco")
    assert cfg.pretrained is None and cfg.arch == "tiny"                    # TinySSD has no pretrained weights
    start_from(cfg, "voc-ssd (ssd_300_vgg16_atrous, 1 class)", str(voc))   # the folder's meta.json decides
    assert (cfg.pretrained, cfg.arch) == (str(voc), "ssd_300_vgg16_atrous")


def test_run_figures_reads_training_not_validation_progress():
    from ssd.jobs import RunStatus, run_figures

    assert run_figures(RunStatus("new")) == {"Epochs done": "0", "Loss": "–", "Samples/s": "–",
                                             "Best val mAP": "–", "Val micro-F1 / accuracy": "–"}
    history = [{"epoch": 1, "loss": 2.5, "samples_per_s": 40.0, "val_map": 0.25},
               {"epoch": 2, "loss": 1.25, "samples_per_s": 50.0, "val_map": 0.5},
               {"epoch": 3, "loss": 1.0, "samples_per_s": 60.0, "val_map": None, "val_micro_f1": 0.875,
                "val_accuracy": 0.99875}]
    start = {"config": {"epochs": 10}}
    validating = RunStatus("running", {"phase": "validate", "epoch": 4, "epochs": 12}, history, "", start)
    assert run_figures(validating) == {"Epochs done": "3/12", "Loss": "1.0000", "Samples/s": "60.0",
                                       "Best val mAP": "0.5000", "Val micro-F1 / accuracy": "0.875 / 0.9988"}
    validating_now = RunStatus("running", {"phase": "validate", "epoch": 4, "epochs": 12, "loss": 0.5,
                                           "samples_per_s": 65.0}, history, "", start)
    assert run_figures(validating_now)["Loss"] == "0.5000" and run_figures(validating_now)["Samples/s"] == "65.0"
    training = RunStatus("running", {"phase": "train", "loss": 0.75, "samples_per_s": 70.25}, history, "", start)
    assert run_figures(training) == {"Epochs done": "3/10", "Loss": "0.7500", "Samples/s": "70.2",
                                     "Best val mAP": "0.5000", "Val micro-F1 / accuracy": "0.875 / 0.9988"}


def test_anchors_page_opens_on_the_cell_that_learns_the_box():
    from ssd.data.synthetic import render_example
    from ssd.models.anchor_set import anchor_set, best_anchor_cell, start_cell
    from ssd.models.tiny import tiny_anchor_config

    aset = anchor_set(tiny_anchor_config(), 256)
    label = render_example(0, 1, "val")[1]
    assert start_cell(aset, label[:, 1:5]) == best_anchor_cell(aset, label[0, 1:5])
    h, w = aset.feature_maps[1]
    assert start_cell(aset) == start_cell(aset, np.zeros((0, 4))) == (1, h // 2, w // 2)
    from types import SimpleNamespace

    one_map = SimpleNamespace(num_scales=1, feature_maps=[(5, 7)])      # only its layout is read
    assert start_cell(one_map) == (0, 2, 3)


def test_loss_curves_mark_the_chosen_parameters():
    from ssd.models.loss_shapes import box_loss_curve, class_loss_curve
    from ssd.viz.learn import loss_curves

    x, box, p, cls = loss_curves(3.0, 2.0)
    assert list(box) == ["smooth L1, σ=10", "smooth L1, σ=3 ◀", "smooth L1, σ=1", "smooth L1, σ=0.5", "L1"]
    assert list(cls) == ["focal, γ=0", "focal, γ=1", "focal, γ=2 ◀", "focal, γ=5", "cross-entropy"]
    assert np.array_equal(box["smooth L1, σ=3 ◀"], box_loss_curve(x, "smooth_l1", 3.0))
    assert np.array_equal(cls["focal, γ=2 ◀"], class_loss_curve(p, "focal", 2.0))
    _, box, _, cls = loss_curves(1.0, 0.0)                  # a chosen value already drawn: marked, not doubled
    assert len(box) == 4 and "smooth L1, σ=1 ◀" in box and len(cls) == 4 and "focal, γ=0 ◀" in cls


def test_same_detections():
    from ssd.viz.nms_steps import same_detections

    a = (np.array([0, 1]), np.array([0.9, 0.5], np.float32), np.zeros((2, 4), np.float32))
    assert same_detections(a, tuple(v.copy() for v in a))
    assert not same_detections(a, (a[0][:1], a[1][:1], a[2][:1]))
    assert not same_detections(a, (a[0], np.array([0.9, 0.4], np.float32), a[2]))
    assert not same_detections(a, (a[0], a[1], a[2] + 1))
    assert same_detections((a[0][:0], a[1][:0], a[2][:0]), (a[0][:0], a[1][:0], a[2][:0]))


def test_image_eval_keeps_what_reaches_the_confidence():
    from ssd.viz.image_eval import SplitDetections, counts_table, image_eval, match_detections

    ids = np.array([0, 1, 0])
    scores = np.array([0.9, 0.6, 0.3])
    boxes = np.array([[10, 10, 50, 50], [60, 60, 90, 90], [12, 12, 48, 48]], np.float32)
    gcls, gboxes = np.array([0, 1]), np.array([[10, 10, 50, 50], [0, 0, 5, 5]], np.float32)
    split = SplitDetections([(ids, scores, boxes)], [(gcls, gboxes)], ["cat", "dog"], [0])
    ev = image_eval(split, 0, 0.5, 0.5)
    assert ev.labels == ["cat 0.90", "dog 0.60"] and len(ev.boxes) == 2
    assert (ev.match.tp, ev.match.fp, ev.match.fn) == (1, 1, 1)
    want = match_detections(ids[:2], scores[:2], boxes[:2], gcls, gboxes, 0.5)
    assert np.array_equal(ev.match.det_tp, want.det_tp) and np.array_equal(ev.gt_boxes, gboxes)
    assert ev.counts(split.classes) == counts_table(want, ids[:2], split.classes)
    low = image_eval(split, 0, 0.1, 0.5)
    assert (low.match.tp, low.match.fp) == (1, 2)                # the lower duplicate is a false positive


def test_resume_from_the_app_finds_the_data_of_a_run_started_with_a_relative_path(tmp_path, monkeypatch):
    """``train --data syn`` from another folder: the app (its own working folder) resumed on ``syn``
    relative to itself, so on no data, or other data."""
    import json

    from ssd import jobs

    run = tmp_path / "run"
    run.mkdir()
    data = tmp_path / "elsewhere" / "syn"
    (run / "meta.json").write_text(json.dumps({"dataset": {"path": str(data)},
                                               "training": {"args": {"data": "syn", "out": "run", "epochs": 3}}}))
    monkeypatch.chdir(tmp_path)
    cfg = jobs.resume_config(str(run))
    assert cfg.data == str(data) and cfg.resume and cfg.epochs == 3 and cfg.out == str(run)


def test_two_uploads_of_one_name_each_get_their_own_annotated_picture(tiny_model_dir):
    """Two phones' IMG_0001.jpg in one batch: each annotated PNG is drawn on its own photo, not
    both on the last one uploaded under that name."""
    from ssd.inference.batch import annotated_download, detect_images, render_batch
    from ssd.inference.detector import Detector

    items = [("IMG_0001.png", _png((800, 600))), ("IMG_0001.png", _png((320, 240)))]
    rendered = render_batch(detect_images(Detector.load(tiny_model_dir), items, 0.45), 0.0, None, 3)
    with zipfile.ZipFile(io.BytesIO(annotated_download(rendered, items))) as zf:
        assert zf.namelist() == ["IMG_0001_detections.png", "IMG_0001_detections_1.png"]
        assert [Image.open(zf.open(n)).size for n in zf.namelist()] == [(800, 600), (320, 240)]


def test_started_from_says_when_the_start_folder_is_gone(tmp_path):
    from ssd.jobs.training import started_from

    there = tmp_path / "A"
    there.mkdir()
    meta = {"start": {"pretrained": str(there), "reused_classes": {"deer": "deer"}}}
    assert started_from(meta) == f"{there} (classes reused by name: deer)"
    there.rmdir()
    assert started_from(meta).startswith(f"{there} (no longer there")
    assert started_from({"start": {"pretrained": "imagenet"}}) == "imagenet"
    assert started_from({}) == "scratch"
