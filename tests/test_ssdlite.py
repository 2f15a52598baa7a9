"""SSDlite320-MobileNetV3-Large in Gluon: torchvision's numbers, its post-processing, the converter's
refusals, and the architecture through the same registry, Detector, export, INT8 and training as
the others. (Exactness against torchvision's own forward pass: ``test_ssdlite_torchvision.py``.)
"""
from __future__ import annotations

import os

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from ssd.base.errors import ModelError, SSDError
from ssd.inference.detector import Detector
from ssd.models.coco_slots import TORCHVISION_COCO_SLOTS, coco_classes, kept_slots
from ssd.models.registry import anchors_for_meta, architectures, recipe_for
from ssd.models.ssdlite.anchors import default_boxes
from ssd.models.ssdlite.convert import convert_state_dict, torchvision_key
from ssd.models.torchvision_decode import PostProcess, decode_boxes, postprocess
from ssd.models.ssdlite.network import SSDlite
from ssd.models.ssdlite.recipe import coco_detector
from ssd.models.ssdlite.spec import ARCH, ssdlite_spec
from ssd.models.ssdlite.training import slot_sources, transfer
from ssd.store import load_model, save_model

from exactness import unmatched


def torchvision_style_state(num_slots: int = 91, seed: int = 0):
    """A net with ``num_slots`` class slots and random weights and BatchNorm statistics scaled like
    a trained detector's (activations of order one, background favoured), and its parameters under
    torchvision's keys (plus the ``num_batches_tracked`` counters torch saves)."""
    net = SSDlite(ssdlite_spec(num_classes=num_slots - 1))
    net.initialize()
    rng = np.random.default_rng(seed)
    state = {}
    for name, p in net._collect_params_with_prefix().items():
        shape = p.shape
        if name.endswith("weight"):
            gain = 2.0 if name.startswith("head") and name.endswith(".1.weight") else 1.3
            value = rng.normal(0, gain / np.sqrt(np.prod(shape[1:])), shape)
        elif name.endswith(("gamma", "running_var")):
            value = rng.uniform(0.75, 1.25, shape)
        elif name.endswith(("beta", "bias", "running_mean")):
            value = rng.normal(0, 0.1, shape)
            if name.startswith("head.classification_head") and name.endswith(".1.bias"):
                value.reshape(6, -1)[:, 0] += 5.0          # background
        else:
            continue                                       # the anchors: computed, not learnt
        p.set_data(mx.nd.array(value))
        state[torchvision_key(name)] = value.astype(np.float32)
        if name.endswith("running_var"):
            state[name.rsplit(".", 1)[0] + ".num_batches_tracked"] = np.array(3, dtype=np.int64)
    return net, state


@pytest.fixture(scope="module")
def coco_pair():
    """(91-slot net, its torchvision-style state, our converted 80-class net and its meta)."""
    big, state = torchvision_style_state()
    net, meta = coco_detector(state)
    return big, state, net, meta


def test_spec_holds_torchvision_numbers():
    spec = ssdlite_spec(num_classes=90)
    assert spec.feature_maps() == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert spec.feature_channels() == [672, 480, 512, 256, 256, 128]
    assert np.allclose(spec.scales(), [0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.0])
    assert spec.anchors_per_cell() == [6] * 6 and len(default_boxes(spec)) == 3234
    net = SSDlite(spec)
    learnt = sum(int(np.prod(p.shape)) for k, p in net._collect_params_with_prefix().items()
                 if not k.endswith(("running_mean", "running_var", "anchors")))
    assert learnt == 3_440_060          # torchvision's published parameter count (91 class slots)
    assert (spec.mean, spec.std) == ((0.5,) * 3, (0.5,) * 3)
    assert (spec.score_thresh, spec.nms_thresh, spec.topk_candidates, spec.detections_per_img) == (0.001, 0.55, 300, 300)


def test_anchors_clip_sizes_not_centres():
    boxes = default_boxes(ssdlite_spec())
    last = boxes[-6:]                     # the 1×1 map: s = 0.95, ratios 2 and 3 reach past the image
    widths = last[:, 2] - last[:, 0]
    assert np.isclose(widths.max(), 1.0) and np.allclose(last[2], [0.0, 0.5 - 0.95 / 2 ** 0.5 / 2, 1.0,
                                                                    0.5 + 0.95 / 2 ** 0.5 / 2], atol=1e-6)
    assert boxes[:, 0].min() < 0          # centres stay: a corner of a small map's anchor leaves [0, 1]
    aset = anchors_for_meta({"arch": ARCH, "classes": ["x"], "input_size": 320})
    assert aset.total() == 3234 and aset.feature_maps[0] == (20, 20) and len(aset.cell_labels[0]) == 6


def _reference_postprocess(logits, offsets, anchors, pp, nms, floor):
    """torchvision's algorithm written plainly: per class sort, top-k, greedy NMS, then merge."""
    boxes = decode_boxes(offsets, anchors * np.float32(pp.input_size), pp)
    e = np.exp(logits - logits.max(1, keepdims=True))
    probs = e / e.sum(1, keepdims=True)
    found = []
    for c in range(1, probs.shape[1]):
        idx = np.flatnonzero(probs[:, c] > floor)
        idx = idx[np.argsort(-probs[idx, c], kind="stable")][:pp.topk]
        kept = []
        for i in idx:
            b = boxes[i]
            if all(_iou(b, boxes[k]) <= nms for k in kept):
                kept.append(i)
        found += [(probs[i, c], c - 1, i) for i in kept]
    found.sort(key=lambda t: -t[0])
    return found[:pp.detections], boxes


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def test_postprocess_is_torchvisions_per_class_topk_and_nms():
    spec = ssdlite_spec(num_classes=4)
    pp = PostProcess(spec.input_size, spec.box_weights, spec.box_clamp, topk=20, detections=30)
    assert PostProcess.from_meta({"input_size": 320, "postprocess": ssdlite_spec().postprocess()}) == PostProcess(
        320, (10.0, 10.0, 5.0, 5.0), spec.box_clamp, 300, 300)
    anchors = default_boxes(spec)
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (len(anchors), 5)).astype(np.float32)
    logits[:, 0] += 4
    offsets = rng.normal(0, 1, (len(anchors), 4)).astype(np.float32)
    ids, scores, boxes = postprocess(logits, offsets, anchors, pp, nms=0.5, floor=0.05)
    want, px = _reference_postprocess(logits, offsets, anchors, pp, 0.5, 0.05)
    assert len(ids) == len(want) == 30
    assert [int(c) for c in ids] == [c for _, c, _ in want]
    np.testing.assert_allclose(scores, [s for s, _, _ in want], rtol=1e-6)
    np.testing.assert_allclose(boxes * spec.input_size, np.stack([px[i] for _, _, i in want]), atol=1e-3)


def test_one_anchor_reports_several_classes_and_the_log_size_is_clamped():
    spec = ssdlite_spec(num_classes=3)
    pp = PostProcess.from_meta({"input_size": spec.input_size, "postprocess": spec.postprocess()})
    anchors = default_boxes(spec)
    logits = np.full((len(anchors), 4), -10.0, np.float32)
    logits[:, 0] = 5.0
    logits[7, 1:3] = 6.0                       # anchor 7: classes 0 and 1 equally likely
    offsets = np.zeros((len(anchors), 4), np.float32)
    offsets[7, 2:] = 1000.0                    # exp(200): clamped at log(1000/16), then clipped to the image
    ids, scores, boxes = postprocess(logits, offsets, anchors, pp, nms=0.55, floor=0.3)
    assert sorted(ids.tolist()) == [0, 1] and np.allclose(scores, scores[0])
    np.testing.assert_allclose(boxes, [[0, 0, 1, 1]] * 2, atol=1e-6)


def test_conversion_keeps_the_80_named_slots_and_drops_the_na_ones(coco_pair):
    big, _, net, meta = coco_pair
    assert meta["classes"] == coco_classes() and len(meta["classes"]) == 80
    assert [TORCHVISION_COCO_SLOTS[i] for i in kept_slots()][1:4] == ["person", "bicycle", "car"]
    x = mx.nd.array(np.random.default_rng(2).uniform(-1, 1, (1, 3, 320, 320)))
    a91, c91, b91 = big(x)
    a80, c80, b80 = net(x)
    np.testing.assert_allclose(c80.asnumpy(), c91.asnumpy()[..., kept_slots()], atol=1e-5)
    np.testing.assert_allclose(b80.asnumpy(), b91.asnumpy(), atol=1e-5)
    np.testing.assert_array_equal(a80.asnumpy(), a91.asnumpy())


@pytest.mark.parametrize("damage, words", [
    (lambda s: s.pop("backbone.extra.2.1.1.running_var"), "1 missing: backbone.extra.2.1.1.running_var"),
    (lambda s: s.__setitem__("backbone.fc.weight", np.zeros(3)), "1 not used by SSDlite: backbone.fc.weight"),
    (lambda s: s.__setitem__("head.regression_head.module_list.5.1.bias", np.zeros(7)), "1 of another shape"),
    (lambda s: s["backbone.features.0.0.1.weight"].__setitem__(0, np.nan), "1 with non-finite values"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_loudly(coco_pair, damage, words):
    state = {k: np.array(v, copy=True) for k, v in coco_pair[1].items()}
    damage(state)
    with pytest.raises(ModelError, match="is not torchvision's SSDlite320") as err:
        convert_state_dict(state, ssdlite_spec(num_classes=80), kept_slots())
    assert words in str(err.value)


def test_a_wrong_class_list_is_refused(coco_pair):
    with pytest.raises(ModelError, match="3 class slots chosen for 80 classes"):
        convert_state_dict(coco_pair[1], ssdlite_spec(num_classes=80), [0, 1, 2])


def test_registered_and_runs_through_detector_export_and_int8(coco_pair, tmp_path, synth_dir):
    from ssd.inference.export import export_model
    from ssd.inference.quantize import quantize_model

    assert ARCH in architectures() and recipe_for(ARCH).native_size == 320
    folder = str(tmp_path / "ssdlite")
    save_model(folder, coco_pair[2], coco_pair[3])
    img = Image.fromarray(np.random.default_rng(3).integers(0, 255, (240, 400, 3), dtype=np.uint8))
    net, meta = load_model(folder)
    live = Detector(net, meta).detect(img, nms=0.55, floor=0.02)
    fused = Detector.load(folder, precision="fp32")
    assert "oneDNN" in fused.precision_note
    again = fused.detect(img, nms=0.55, floor=0.02)
    assert len(live) > 0 and len(live) == len(again)
    as_tuple = lambda d: (d.class_ids, d.scores, d.boxes)  # noqa: E731
    assert unmatched(as_tuple(live), as_tuple(again), box_tol=1e-2, score_tol=1e-5) == []
    assert live.boxes[:, 2].max() <= 400 and live.boxes[:, 3].max() <= 240       # original pixels
    export_model(folder, str(tmp_path / "exported"))
    exported = Detector.load(str(tmp_path / "exported"), precision="fp32").detect(img, nms=0.55, floor=0.02)
    assert unmatched(as_tuple(live), as_tuple(exported), box_tol=1e-2, score_tol=1e-5) == []
    quantize_model(folder, data=synth_dir, images=4, eval_images=0)
    int8 = Detector.load(folder, precision="int8")
    raw8, raw32 = int8.forward_raw(np.zeros((1, 320, 320, 3), np.uint8)), fused.forward_raw(np.zeros((1, 320, 320, 3), np.uint8))
    np.testing.assert_array_equal(raw8[0], raw32[0])           # the anchors are a constant: never quantized
    assert raw8[1].shape == (1, 3234, 81) and np.isfinite(raw8[1]).all()


def test_fine_tuning_starts_known_classes_from_their_coco_weights(coco_pair):
    _, _, coco_net, meta = coco_pair
    classes = ["Domestic Cat", "pikachu", "American Black Bear"]
    sources = slot_sources(classes, meta["classes"])
    cat, bear = meta["classes"].index("cat") + 1, meta["classes"].index("bear") + 1
    assert sources == [0, cat, -1, bear]
    new = SSDlite(ssdlite_spec(num_classes=3, input_size=256))
    new.initialize(mx.init.Normal(0.03))
    copied = transfer(new, coco_net, sources)
    assert copied == len(new._collect_params_with_prefix()) - 1       # every parameter but the anchors
    key = "head.classification_head.module_list.2.1.weight"
    old = coco_net._collect_params_with_prefix()[key].data().asnumpy().reshape(6, 81, -1)
    got = new._collect_params_with_prefix()[key].data().asnumpy().reshape(6, 4, -1)
    np.testing.assert_array_equal(got[:, [0, 1, 3]], old[:, [0, cat, bear]])
    assert not np.allclose(got[:, 2], old[:, 2])


def test_trains_a_step_from_a_coco_folder_and_the_result_detects(coco_pair, tmp_path, synth_dir, capsys):
    from ssd.store import read_meta
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    start = str(tmp_path / "coco")
    save_model(start, coco_pair[2], coco_pair[3])
    out = str(tmp_path / "tuned")
    cfg = TrainConfig(data=synth_dir, out=out, arch=ARCH, epochs=1, batch_size=2, max_iters_per_epoch=2,
                      limit_train=4, limit_val=2, input_size=128, device="cpu", pretrained=start, precision="fp32")
    res = train(cfg, install_signal_handlers=False)
    meta = read_meta(out)
    assert res.status == "done" and np.isfinite(res.history[0]["loss"])
    # the console says what the start gave (it was silent: the reuse was only in meta.json)
    assert (f"starting from {os.path.abspath(start)}: no class reused by name; new: pikachu"
            in capsys.readouterr().err)
    assert meta["normalize"] == {"mean": [0.5] * 3, "std": [0.5] * 3} and meta["ssdlite"]["input_size"] == 128
    assert meta["start"]["pretrained"] == os.path.abspath(start) and meta["start"]["loaded"] > 400
    assert meta["anchors"]["total"] == sum(h * w * 6 for h, w in meta["anchors"]["feature_maps"])
    det = Detector.load(out, precision="fp32")
    assert det.detect(Image.new("RGB", (200, 150), "gray"), floor=0.0).boxes.shape[1] == 4


def test_pretrained_must_be_an_ssdlite_folder(tmp_path, synth_dir):
    from ssd.training.config import TrainConfig, prepared

    with pytest.raises(SSDError, match="a saved ssdlite320_mobilenet_v3_large model folder"):
        prepared(TrainConfig(data=synth_dir, out=str(tmp_path / "m"), arch=ARCH, pretrained="coco"))


def test_the_start_line_names_each_class_reused_and_each_new_one():
    from ssd.training.metadata import start_note

    meta = {"start": {"pretrained": "/m/coco", "reused_classes": {"Domestic Cat": "cat", "bear": "bear"}}}
    assert start_note(meta, ["Domestic Cat", "fox", "bear"]) == (
        "starting from /m/coco: classes reused by name: Domestic Cat (from cat), bear; new: fox")
    zoo = {"zoo": {"pretrained": "coco", "reused_classes": {}}}
    assert start_note(zoo, ["deer"]) == "starting from coco: no class reused by name; new: deer"
    assert start_note({"start": {"pretrained": None}}, ["deer"]) is None
