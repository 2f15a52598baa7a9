"""torchvision's SSDlite320-MobileNetV3-Large converted exactly: our raw outputs and final detections
against torchvision's own forward pass (tests/torchvision_reference.py, Debian's python3-torchvision).

The checkpoint is written by ``torch.save`` with deterministic random weights and BatchNorm
statistics, read by our torch-free ``.pth`` reader and converted by ``models import`` (the
``ssdlite_model_dir`` fixture), then run through the same Detector a user gets: the live
hybridized network and the oneDNN-fused graph ``detect`` runs on MXNet, and the ONNX graph the
ONNX Runtime engine runs.
"""
from __future__ import annotations

import os
import shutil

import numpy as np

from exactness import (assert_detections_match, assert_raw_close, load_reference, nearly_same_detections,
                       unmatched)
from ssd.models.coco_slots import TORCHVISION_COCO_SLOTS, kept_slots
from ssd.models.ssdlite.spec import ARCH, ssdlite_spec

SIZE = 320


def _detectors(model_dir):
    from ssd.inference.detector import Detector
    from ssd.store import load_model

    return {"live": Detector(*load_model(model_dir)), "fp32": Detector.load(model_dir, precision="fp32")}


def test_raw_outputs_and_anchors_match_torchvision(ssdlite_reference, ssdlite_model_dir):
    ref = load_reference(ssdlite_reference)
    assert sorted(ref["na_slots"].tolist()) == [s for s in range(91) if s not in kept_slots()]
    for det in _detectors(ssdlite_model_dir).values():
        anchors, logits, offsets = det.forward_raw(ref["images"])
        np.testing.assert_array_equal(anchors[0] * np.float32(SIZE), ref["anchors"])   # bit for bit
        assert_raw_close(logits, offsets.reshape(len(ref["images"]), -1, 4), ref, kept_slots())


def test_final_detections_match_torchvision(ssdlite_reference, ssdlite_model_dir):
    """torchvision's own settings (score 0.001, NMS 0.55, 300 per class and per image), after NMS."""
    ref = load_reference(ssdlite_reference)
    spec = ssdlite_spec()
    for det in _detectors(ssdlite_model_dir).values():
        ours = det.predict_arrays(ref["images"], nms=spec.nms_thresh, floor=spec.score_thresh)
        worst = assert_detections_match(ours, ref, SIZE, kept_slots())
        assert worst["detections"] >= 300                  # the comparison covered real boxes


def test_onnxruntime_engine_gives_torchvisions_raw_outputs_and_mxnets_detections(ssdlite_reference, ssdlite_model_dir,
                                                                                 tmp_path):
    """SSDlite on ONNX Runtime: raw outputs within 1e-4 of torchvision's (as MXNet's are) and of MXNet's;
    on the same raw outputs its numpy decoder gives the MXNet Detector's detections exactly, also for
    a folder saved before meta.json had a ``postprocess`` section; end to end, MXNet's detections but
    for what float noise may flip at the NMS threshold."""
    import mxnet as mx

    from ssd.inference.engines import load_detector
    from ssd.store import read_meta

    folder = str(tmp_path / "ssdlite")
    shutil.copytree(ssdlite_model_dir, folder)        # the ONNX graph is cached in the copy
    ortd, mxd = load_detector(folder, "onnxruntime", "fp32"), load_detector(folder, "mxnet", "fp32")
    assert (ortd.engine, mxd.engine, ortd.graph["array_decode"]) == ("onnxruntime", "mxnet", "torchvision_box_coder")
    ref = load_reference(ssdlite_reference)
    raw = ortd.forward_raw(ref["images"])
    np.testing.assert_array_equal(raw[0][0] * np.float32(SIZE), ref["anchors"])      # a graph constant: bit for bit
    assert_raw_close(raw[1], raw[2].reshape(len(ref["images"]), -1, 4), ref, kept_slots())
    for a, b in zip(mxd.forward_raw(ref["images"]), raw):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4 * max(1.0, float(np.abs(a).max()))
    older = {k: v for k, v in read_meta(folder).items() if k != "postprocess"}
    spec = ssdlite_spec()
    for nms, floor in ((spec.nms_thresh, spec.score_thresh), (0.45, 0.005)):
        got = ortd.predict_arrays(ref["images"], nms, floor)
        same_input = mxd._decode(lambda _: [mx.nd.array(o) for o in raw], None, nms, floor)
        from_older = ortd._array_decode(raw, older, floor, nms)
        for want, ours, old in zip(same_input, got, from_older):
            assert len(want[0]) == len(ours[0]) == len(old[0]) > 0
            assert unmatched(want, ours, 1e-6, 1e-7) == [] and unmatched(want, old, 0, 0) == []
        assert nearly_same_detections(mxd.predict_arrays(ref["images"], nms, floor), got)


def test_converted_folder_records_its_source_numbers_and_size(ssdlite_reference, ssdlite_model_dir):
    from ssd.models.weights import read_state_dict
    from ssd.models.knowledge import model_knowledge
    from ssd.store import load_model, read_meta

    meta = read_meta(ssdlite_model_dir)
    assert meta["arch"] == ARCH and meta["classes"] == [TORCHVISION_COCO_SLOTS[s] for s in kept_slots()[1:]]
    assert meta["normalize"] == {"mean": [0.5] * 3, "std": [0.5] * 3} and meta["anchors"]["total"] == 3234
    assert meta["source"]["kind"] == "torchvision" and meta["source"]["published_file"] is False
    assert "torchvision's ssdlite320_mobilenet_v3_large_coco, COCO AP 21.3" in model_knowledge(meta)
    theirs = read_state_dict(os.path.join(ssdlite_reference, "checkpoint.pth"))
    learnt = sum(v.size for k, v in theirs.items() if not k.endswith(("running_mean", "running_var", "tracked")))
    net, _ = load_model(ssdlite_model_dir)
    ours = sum(int(np.prod(p.shape)) for k, p in net._collect_params_with_prefix().items()
               if not k.endswith(("running_mean", "running_var", "anchors")))
    dropped = 10 * 6 * sum(c + 1 for c in ssdlite_spec().feature_channels())   # 10 N/A slots × 6 anchors
    assert learnt == 3_440_060 and ours == learnt - dropped
