"""Converted SSDlite equals torchvision's own forward pass (torchvision 0.14 from Debian, in a subprocess).

``scripts/torchvision_reference.py`` builds ``ssdlite320_mobilenet_v3_large`` with deterministic
random weights and BatchNorm statistics, runs it in eval mode on a few 320×320 pictures and writes
its state_dict, raw head outputs and final detections. Our converted network, through the same
Detector a user gets (plain and oneDNN-fused), must give the same raw class scores and box offsets
(within 1e-4) and the same detections after NMS (same classes, boxes within 1e-3 px, scores within
1e-4). torch never enters the app's environment: it runs with ``/usr/bin/python3``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ssd.inference.detector import Detector
from ssd.models.coco_slots import TORCHVISION_COCO_SLOTS, kept_slots
from ssd.models.ssdlite.recipe import coco_detector
from ssd.models.ssdlite.spec import ssdlite_spec
from ssd.store import save_model

try:
    from detection_match import unmatched
except ImportError:  # pragma: no cover - run from the repository root
    from tests.detection_match import unmatched

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts",
                      "torchvision_reference.py")
RAW_TOL, BOX_TOL, SCORE_TOL = 1e-4, 1e-3, 1e-4


def _torchvision_missing() -> str:
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is absent"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import torchvision"], capture_output=True, text=True)
    return "" if probe.returncode == 0 else f"{SYSTEM_PYTHON} has no torchvision (apt-get install python3-torchvision)"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    why = _torchvision_missing()
    if why:
        pytest.skip(f"torchvision reference unavailable: {why}")
    out = str(tmp_path_factory.mktemp("torchvision-ssdlite"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run([SYSTEM_PYTHON, SCRIPT, "--model", "ssdlite320_mobilenet_v3_large", "--out", out,
                           "--images", "3"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(os.path.join(out, "info.json"), encoding="utf-8") as fh:
        info = json.load(fh)
    return {"dir": out, "info": info, "state": dict(np.load(os.path.join(out, "state_dict.npz"))),
            "ref": dict(np.load(os.path.join(out, "reference.npz"))),
            "images": np.load(os.path.join(out, "images.npy"))}


@pytest.fixture(scope="module")
def converted(reference, tmp_path_factory):
    net, meta = coco_detector(reference["state"])
    folder = str(tmp_path_factory.mktemp("models") / "ssdlite-random")
    save_model(folder, net, meta)
    return folder, meta


def test_our_numbers_are_the_reference_models(reference):
    info, spec = reference["info"], ssdlite_spec()
    assert info["categories"] == TORCHVISION_COCO_SLOTS
    assert (info["input_size"], info["image_mean"], info["image_std"]) == (spec.input_size, list(spec.mean),
                                                                           list(spec.std))
    assert (info["score_thresh"], info["nms_thresh"], info["topk_candidates"], info["detections_per_img"]) == (
        spec.score_thresh, spec.nms_thresh, spec.topk_candidates, spec.detections_per_img)


@pytest.mark.parametrize("precision", [None, "fp32"])
def test_raw_scores_offsets_and_anchors_match(reference, converted, precision):
    folder, meta = converted
    ref, images = reference["ref"], reference["images"]
    if precision is None:
        from ssd.store import load_model
        det = Detector(*load_model(folder))              # the live, hybridized network
    else:
        det = Detector.load(folder, precision=precision)  # oneDNN-fused graph, what detect runs
    anchors, logits, offsets = det.forward_raw(images)
    np.testing.assert_array_equal(anchors[0] * np.float32(320), ref["anchors"])
    np.testing.assert_allclose(logits, ref["cls_logits"][..., kept_slots()], atol=RAW_TOL, rtol=0)
    np.testing.assert_allclose(offsets.reshape(len(images), -1, 4), ref["bbox_regression"], atol=RAW_TOL, rtol=0)


def test_detections_after_nms_match(reference, converted):
    folder, meta = converted
    ref, images, info = reference["ref"], reference["images"], reference["info"]
    det = Detector.load(folder, precision="fp32")
    results = det.predict_arrays(images, nms=info["nms_thresh"], floor=info["score_thresh"])
    ours_to_slot = np.asarray(kept_slots())
    assert max(float(ref[f"scores_{i}"].max()) for i in range(len(images))) > 0.5   # confident boxes too
    for i, (ids, scores, boxes) in enumerate(results):
        want = (ref[f"labels_{i}"], ref[f"scores_{i}"], ref[f"boxes_{i}"])
        got = (ours_to_slot[ids + 1], scores, boxes * np.float32(info["input_size"]))
        assert len(got[0]) == len(want[0]) == info["detections_per_img"]
        assert unmatched(want, got, BOX_TOL, SCORE_TOL) == [], f"image {i}"
        assert len(set(want[0].tolist())) > 5                                 # many classes compete
