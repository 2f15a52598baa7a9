"""The converted torchvision SSDs (SSD300-VGG16 and SSDlite320-MobileNetV3-Large) used everywhere a
model is: detect (files, folders, the MegaDetector categories), the Detect page, a camera-trap folder
run checked by MegaDetector's own validator, eval, quantize (INT8 within 0.01 mAP of fp32) and one
fine-tuning step to ENA24's classes.

The models are ``ssd300_model_dir`` and ``ssdlite_model_dir`` (conftest): torchvision's networks with
deterministic random weights, saved by torch and converted by ``models import``. Their "ground truth"
for eval and quantize is their own fp32 detections (random weights detect nothing real), so the INT8
comparison measures what quantization changes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ssd", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _pictures(n: int, seed: int = 0):
    from ssd.data.synthetic import render_example

    return [render_example(seed=seed, index=i, split="val")[0] for i in range(n)]


#: fixture of the model folder → (the name `models pull` knows it by, its published COCO AP)
CONVERTED = {"ssd300_model_dir": ("ssd300_vgg16_coco", 25.1),
             "ssdlite_model_dir": ("ssdlite320_mobilenet_v3_large_coco", 21.3)}


@pytest.fixture(scope="module", params=sorted(CONVERTED))
def converted(request) -> str:
    """Each converted detector's model folder in turn."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    for i, img in enumerate(_pictures(4)):
        sub = root / f"cam{i % 2}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(img).resize((400, 300)).save(sub / f"p{i}.jpg", quality=90)
    return str(root)


@pytest.fixture(scope="module")
def pseudo_labelled(converted, tmp_path_factory):
    """A RecordIO set with COCO's 80 classes whose boxes are the model's confident (≥ 0.9) fp32 detections.

    The labels are made on the images as the dataset decodes them (the network's size, no resize),
    and written back at JPEG quality 100, so what eval sees is what was labelled, to a JPEG rounding."""
    from ssd.data.dataset import open_dataset
    from ssd.data.recordio_write import write_detection_rec
    from ssd.inference.detector import Detector

    det = Detector.load(converted, precision="fp32")
    out = tmp_path_factory.mktemp("pseudo")
    size = det.input_size
    images = [np.asarray(Image.fromarray(i).resize((size, size))) for i in _pictures(12, seed=5)]
    empty = np.zeros((0, 5), np.float32)
    for split, part in (("train", images[:6]), ("val", images[6:])):
        write_detection_rec(str(out / f"{split}.rec"), [(i, empty) for i in part], quality=100)
    (out / "dataset.json").write_text(json.dumps({"name": "pseudo-coco", "classes": det.classes}))
    splits = open_dataset(str(out))
    for split, ds in (("train", splits.train), ("val", splits.val)):
        samples = []
        for k in range(len(ds)):
            img = ds[k][0]
            ids, scores, boxes = det.predict_arrays(img[None])[0]
            wide = (boxes[:, 2] - boxes[:, 0] > 0.02) & (boxes[:, 3] - boxes[:, 1] > 0.02)
            keep = (scores >= 0.9) & wide
            samples.append((img, np.concatenate([ids[keep, None], boxes[keep]], 1).astype(np.float32)))
        write_detection_rec(str(out / f"{split}.rec"), samples, quality=100)
    return str(out)


def test_detect_files_and_folders_with_megadetector_categories(converted, folder, tmp_path):
    from megadetector.postprocessing.validate_batch_results import (ValidateBatchResultsOptions,
                                                                    validate_batch_results)
    from ssd.inference.detector import Detector

    out = tmp_path / "season.json"
    r = run_cli("detect", "--model", converted, folder, "--recursive", "--json", str(out),
                "--categories", "megadetector", "--quiet")
    assert r.returncode == 0, r.stderr
    opts = ValidateBatchResultsOptions()
    opts.check_image_existence, opts.relative_path_base = True, folder
    assert validate_batch_results(str(out), opts)["validation_results"]["errors"] == []
    doc = json.loads(out.read_text())
    assert doc["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert len(doc["images"]) == 4 and any(im["detections"] for im in doc["images"])
    one = os.path.join(folder, "cam0", "p0.jpg")
    r = run_cli("detect", "--model", converted, one, "--json", str(tmp_path / "one.json"), "--quiet")
    assert r.returncode == 0, r.stderr
    cli = json.loads((tmp_path / "one.json").read_text())["images"][0]["detections"]
    raw = Detector.load(converted).detect(one).filter(0.2)    # the same run, in the library
    assert len(cli) == min(len(raw), 100) and cli[0]["conf"] == pytest.approx(float(raw.scores[0]), abs=1e-3)


def test_detect_page_uses_the_converted_model(converted, data_root, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ssd.store import read_meta

    name = read_meta(converted)["source"]["name"]
    monkeypatch.setenv("SSD_MODELS_DIR", os.path.dirname(converted))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=300).run()
    assert not at.exception, [e.value for e in at.exception]
    at = at.switch_page("app_pages/detect.py").run()
    assert not at.exception, [e.value for e in at.exception]
    published = dict(CONVERTED.values())[name]
    assert f"80 COCO classes (torchvision's {name}, COCO AP {published})" in " ".join(t.value for t in at.sidebar.text)
    assert not [b for b in at.button if (b.key or "").startswith("pull::")]   # a real detector is installed
    at = next(t for t in at.sidebar.toggle if t.label == "MegaDetector categories").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    classes = next(m for m in at.multiselect if m.label == "Classes")     # beside the results, not in the sidebar
    assert set(classes.options) == {"animal", "person", "vehicle"}


def _matched(ref, other, threshold: float) -> float:
    """Share of ``ref``'s detections ≥ ``threshold`` that ``other`` finds too (same class, IoU > 0.5)."""
    from ssd.base.boxes import box_iou

    ids, scores, boxes = ref
    keep = scores >= threshold
    hits = [bool((other[0] == c).any() and box_iou(b[None], other[2][other[0] == c]).max() > 0.5)
            for c, b in zip(ids[keep], boxes[keep])]
    return float(np.mean(hits)) if hits else 1.0


def test_eval_and_quantize(converted, pseudo_labelled, tmp_path):
    """eval finds the model's own confident boxes again; quantize makes, evaluates and records an
    INT8 graph; SSD300's INT8 detector finds ≥ 90 % of fp32's confident boxes.

    Random weights cannot show "INT8 within 0.01 mAP of fp32": a random VGG is chaotic (re-encoding
    its pictures as JPEG at quality 100 already costs its fp32 mAP on its own detections 0.1), and
    INT8 recovers about 96 % of its confident boxes. A random MobileNetV3 quantizes worse: per-tensor
    INT8 activations through its 15 blocks (hardswish, squeeze-excitation) move its logits by 0.7 on
    average (scores that differ by 1.9), and INT8 finds 5–60 % of fp32's confident boxes; how a
    trained SSDlite fares needs its real weights (``python -m ssd quantize`` records it on any
    labelled COCO-class data). Either way the product's rule keeps fp32 as the default when INT8
    loses more than 0.01 mAP, which is what is asserted."""
    import shutil

    from ssd.data.dataset import open_dataset
    from ssd.inference.detector import Detector
    from ssd.inference.evaluation import evaluate
    from ssd.inference.precision import MAP_TOLERANCE, recommend
    from ssd.inference.quantize import quantize_model
    from ssd.store import read_meta

    model = str(tmp_path / "converted")
    shutil.copytree(converted, model)
    val = open_dataset(pseudo_labelled).val
    assert sum(len(val[k][1]) for k in range(len(val))) >= 4
    fp32 = Detector.load(model, precision="fp32")
    assert evaluate(fp32, val).map > 0.8                  # its own confident detections, found again
    rec = quantize_model(model, data=pseudo_labelled, images=6, eval_images=4)
    ev = rec["evaluation"]
    assert ev["map_fp32"] > 0.8 and ev["map_int8"] > 0.5, ev
    assert rec["recommended"] == recommend(ev)
    if ev["map_int8"] < ev["map_fp32"] - MAP_TOLERANCE:
        assert rec["recommended"] == "fp32"
    int8 = Detector.load(model, precision="int8")
    assert int8.precision == "int8"
    size = fp32.input_size
    pictures = [np.asarray(Image.fromarray(p).resize((size, size))) for p in _pictures(3, seed=9)]
    shares = [_matched(fp32.predict_arrays(p[None])[0], int8.predict_arrays(p[None])[0], 0.9) for p in pictures]
    if read_meta(model)["arch"] == "ssdlite320_mobilenet_v3_large":
        assert rec["recommended"] == "fp32" and ev["map_int8"] < ev["map_fp32"] - MAP_TOLERANCE, ev
    else:
        assert min(shares) >= 0.9, shares


def test_one_fine_tuning_step_to_ena24_classes(ssd300_model_dir, tmp_path):
    from cct_fixture import ENA24_CLASSES, make_ena24_like
    from ssd.models.gluoncv.finetune import class_reuse_map
    from ssd.store import read_meta
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    info = make_ena24_like(str(tmp_path / "ena24"), n_images=12, size=(480, 270))
    out = str(tmp_path / "ena24-ssd300")
    res = train(TrainConfig(data=info["root"], out=out, arch="ssd_300_vgg16_atrous", pretrained=ssd300_model_dir,
                            epochs=1, batch_size=2, max_iters_per_epoch=1, augment=False, device="cpu",
                            limit_val=2), install_signal_handlers=False)
    assert res.status == "done"
    meta = read_meta(out)
    coco = read_meta(ssd300_model_dir)["classes"]
    assert meta["zoo"]["reused_classes"] == class_reuse_map(info["classes"], coco) != {}
    assert set(class_reuse_map(ENA24_CLASSES, coco).values()) == {"bird", "cat", "dog", "horse", "bear", "person"}
    assert meta["normalize"] == read_meta(ssd300_model_dir)["normalize"]    # torchvision's, kept
    assert meta["zoo"]["anchor_clip"] is True and meta["classes"] == info["classes"]


def test_one_fine_tuning_step_of_ssdlite_to_ena24_classes(ssdlite_model_dir, tmp_path):
    from cct_fixture import make_ena24_like
    from ssd.models.starting_point import class_reuse_map
    from ssd.store import read_meta
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    info = make_ena24_like(str(tmp_path / "ena24"), n_images=12, size=(480, 270))
    out = str(tmp_path / "ena24-ssdlite")
    res = train(TrainConfig(data=info["root"], out=out, arch="ssdlite320_mobilenet_v3_large",
                            pretrained=ssdlite_model_dir, epochs=1, batch_size=2, max_iters_per_epoch=1,
                            augment=False, device="cpu", limit_val=2), install_signal_handlers=False)
    assert res.status == "done"
    meta = read_meta(out)
    coco = read_meta(ssdlite_model_dir)["classes"]
    assert meta["start"]["reused_classes"] == class_reuse_map(info["classes"], coco) != {}
    assert meta["normalize"] == read_meta(ssdlite_model_dir)["normalize"]    # torchvision's [-1, 1], kept
    assert meta["classes"] == info["classes"] and meta["anchors"]["total"] == 3234
