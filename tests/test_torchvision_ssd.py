"""torchvision's SSD300-VGG16 converted exactly: our raw outputs and final detections against
torchvision's own forward pass (tests/torchvision_reference.py, Debian's python3-torchvision)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from exactness import assert_detections_match, assert_raw_close, load_reference


def _raw_outputs(net, meta, images):
    """Per-anchor class logits and box offsets of a GluonCV SSD (VGG16 has no BatchNorm or dropout,
    so train mode only makes the net skip its decoder)."""
    import mxnet as mx
    from mxnet import autograd

    from ssd.data.preprocess import normalize_batch

    norm = meta["normalize"]
    x = mx.nd.array(normalize_batch(images, norm["mean"], norm["std"]))
    with autograd.train_mode():
        cls, box, anchors = net(x)
    return cls.asnumpy(), box.asnumpy(), anchors.asnumpy()[0]


def test_raw_outputs_and_anchors_match_torchvision(ssd300_reference, ssd300_model_dir):
    from ssd.models.coco_slots import kept_slots
    from ssd.store import load_model

    ref = load_reference(ssd300_reference)
    assert sorted(ref["na_slots"].tolist()) == [s for s in range(91) if s not in kept_slots()]
    net, meta = load_model(ssd300_model_dir)
    cls, box, anchors = _raw_outputs(net, meta, ref["images"])
    assert_raw_close(cls, box, ref, kept_slots())
    corners = np.concatenate([anchors[:, :2] - anchors[:, 2:] / 2, anchors[:, :2] + anchors[:, 2:] / 2], 1)
    assert np.abs(corners - ref["anchors"]).max() < 1e-3          # pixels of the 300-px input


def test_final_detections_match_torchvision(ssd300_reference, ssd300_model_dir):
    """Through the Detector (live net, then the fused fp32 graph the CLI uses), after NMS."""
    from ssd.inference.detector import Detector
    from ssd.models.coco_slots import kept_slots
    from ssd.store import load_model

    ref = load_reference(ssd300_reference)
    net, meta = load_model(ssd300_model_dir)
    worst = assert_detections_match(Detector(net, meta).predict_arrays(ref["images"]), ref, 300, kept_slots())
    assert worst["detections"] >= 300                      # the comparison covered real boxes
    fused = Detector.load(ssd300_model_dir, precision="fp32")
    assert_detections_match(fused.predict_arrays(ref["images"]), ref, 300, kept_slots())


def test_converted_folder_records_source_and_normalization(ssd300_model_dir):
    from ssd.store import read_meta
    from ssd.models.knowledge import model_knowledge

    meta = read_meta(ssd300_model_dir)
    assert meta["arch"] == "ssd_300_vgg16_atrous" and len(meta["classes"]) == 80
    assert meta["classes"][:3] == ["person", "bicycle", "car"] and "N/A" not in meta["classes"]
    assert meta["normalize"]["mean"] == [0.48235, 0.45882, 0.40784]
    assert meta["normalize"]["std"] == [pytest.approx(1 / 255)] * 3
    assert meta["postprocess"]["kind"] == "torchvision" and meta["zoo"]["anchor_clip"] is True
    src = meta["source"]
    assert src["kind"] == "torchvision" and src["published_file"] is False   # random weights, not the real file
    assert "torchvision's ssd300_vgg16_coco" in model_knowledge(meta)


def test_parameter_count_matches_torchvision_less_the_unused_slots(ssd300_reference, ssd300_model_dir):
    from ssd.models.weights import read_state_dict
    from ssd.store import load_model

    theirs = sum(v.size for k, v in read_state_dict(os.path.join(ssd300_reference, "checkpoint.pth")).items())
    net, _ = load_model(ssd300_model_dir)
    ours = sum(int(np.prod(p.shape)) for k, p in net.collect_params().items()
               if "anchor" not in k and "init_scale" not in k)
    slots_per_layer = [(4, 512), (6, 1024), (6, 512), (6, 256), (4, 256), (4, 256)]   # (anchors, channels)
    dropped = sum(a * 10 * (c * 9 + 1) for a, c in slots_per_layer)
    assert theirs == 35641826 and ours == theirs - dropped
