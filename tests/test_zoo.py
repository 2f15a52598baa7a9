"""GluonCV model-zoo SSDs (presets and builds: test_zoo_presets.py): one CPU training step each, fine-tuning with
reset_class, the weight store (local file, sha1, a 127.0.0.1 server), anchors, decoding and the
full training run (events, meta, resume, evaluation report). No network beyond 127.0.0.1.

Sizes are tiny so the file stays around a minute on two busy cores: 128 px inputs (the VGG-300
extras need at least 260 px, so it gets 260), batch 1-2, one step.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from ssd.models.gluoncv import anchors as gcv_anchors, build as gcv_build, decode as gcv_decode
from ssd.models.starting_point import class_reuse_map
from ssd.models.gluoncv import finetune as gcv_finetune, presets as gcv_presets, recipe as gcv_recipe
from ssd.models.gluoncv import training as gcv_training, weights as gcv_weights
from store_server import ModelStoreServer, store_zip
from ssd.base.errors import DownloadError, SSDError

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")

SMALL = {"ssd_512_mobilenet1.0": 128, "ssd_300_vgg16_atrous": 260, "ssd_512_resnet50_v1": 128,
         "ssd_512_resnet50_v1b": 128}


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """Every test: an empty model store and a weights repo nobody serves (connection refused)."""
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet_home"))
    monkeypatch.setenv("MXNET_GLUON_REPO", f"http://127.0.0.1:{_free_port()}/")
    monkeypatch.setenv("SSD_NUM_WORKERS", "0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dataset(n=2, size=96, seed=0, empty_last=False):
    from ssd.data.dataset import InMemoryDataset

    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 255, (size, size + 16, 3), dtype=np.uint8) for _ in range(n)]
    labs = [np.array([[0, 0.2, 0.25, 0.6, 0.7], [1, 0.5, 0.1, 0.9, 0.5]], np.float32) for _ in range(n)]
    if empty_last:
        labs[-1] = np.zeros((0, 5), np.float32)
    return InMemoryDataset(imgs, labs, ["bird", "dog"])


# ---------------------------------------------------------------------------------------------
# One training step per architecture, then detection
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", gcv_presets.ZOO_ARCHS)
def test_each_arch_takes_a_training_step_on_the_cpu_and_detects(arch):
    from mxnet import gluon

    from ssd.inference.detector import Detector
    from ssd.training.config import TrainConfig, resolve_defaults

    size = SMALL[arch]
    cfg = TrainConfig(data="", out="", arch=arch, batch_size=2, input_size=size, augment=True, seed=1)
    resolve_defaults(cfg)
    # the explicit input size is kept; unset options take GluonCV's reference values
    assert cfg.input_size == size and cfg.momentum == 0.9 and cfg.hard_negative_ratio == 3
    assert cfg.lr == pytest.approx(0.001 * 2 / 32) and cfg.lr_schedule == "step"
    events = []
    run = gcv_training.ZooTraining(cfg, ["bird", "dog"], _dataset(2, empty_last=True), [mx.cpu()],
                          lambda *a, **k: events.append((a, k)))
    assert run.iters == 1 and run.num_anchors == sum(l["count"] for l in gcv_anchors.zoo_anchor_info(run.net, size))
    trainer = gluon.Trainer(run.net.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9})
    weights = [cp.predictor.weight for cp in run.net.class_predictors]
    before = [w.data().asnumpy().copy() for w in weights]
    batch = next(run.epoch(0))
    assert batch[0].shape == (2, 3, size, size) and batch[1].shape == (2, run.num_anchors)
    stats = run.step(batch, trainer)
    n, sums, abs_err = stats.samples, stats.sums, stats.abs_err
    assert n == 2 and np.all(np.isfinite(sums)) and sums[0] > 0 and np.isfinite(abs_err)
    # GluonCV mines inside SSDMultiBoxLoss: the step reports the d2l book's counts over all anchors
    correct, counted = stats.all_anchor_counts
    assert 0 < correct <= counted == 2 * run.num_anchors and sums[3] == sums[4] == 0
    assert any(not np.allclose(b, w.data().asnumpy()) for b, w in zip(before, weights))
    meta = {"arch": arch, "classes": ["bird", "dog"], "input_size": size, **run.meta_fields()}
    det = Detector(run.net, meta)  # switches the cached train graph to prediction
    (ids, scores, boxes), = det.predict_arrays(np.zeros((1, size, size, 3), np.uint8))
    assert len(ids) <= gcv_decode.POST_NMS and np.all(np.diff(scores) <= 0) and np.all((boxes >= 0) & (boxes <= 1))
    assert set(np.unique(ids)) <= {0, 1}
    assert meta["anchors"]["total"] == run.num_anchors and meta["zoo"]["variant"] == "custom"


def test_detector_nms_setting_and_train_graph_switches():
    from ssd.inference.detector import Detector

    net, meta = gcv_recipe.new_zoo_model("ssd_512_mobilenet1.0", ["a", "b"], input_size=128)
    det = Detector(net, meta)
    img = np.random.default_rng(0).integers(0, 255, (1, 128, 128, 3), dtype=np.uint8)
    loose = det.predict_arrays(img, nms=0.9)[0]
    tight = det.predict_arrays(img, nms=0.2)[0]
    again = det.predict_arrays(img, nms=0.9)[0]
    assert len(tight[0]) <= len(loose[0]) and net.nms_thresh == 0.9
    np.testing.assert_allclose(loose[1], again[1])
    # a training epoch in between (as ZooTraining.epoch starts one) caches the train-mode graph …
    net.hybridize(static_alloc=True, static_shape=True)
    net._ssd_mode = "train"
    with autograd.record():
        cls_preds, box_preds, anchors = net(mx.nd.zeros((1, 3, 128, 128)))
    assert cls_preds.shape == (1, anchors.shape[1], 3)
    # … and the Detector must not reuse it
    np.testing.assert_allclose(det.predict_arrays(img, nms=0.9)[0][1], loose[1], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Fine-tuning: reset_class and the weight store
# ---------------------------------------------------------------------------------------------

def test_class_reuse_map_for_camera_trap_names():
    from gluoncv.data import COCODetection, VOCDetection

    ena = ["Bird", "Eastern Gray Squirrel", "Domestic Cat", "Dog", "Horse", "American Black Bear", "Human",
           "Vehicle", "White_Tailed_Deer"]
    m = class_reuse_map(ena, COCODetection.CLASSES)
    assert m == {"Bird": "bird", "Domestic Cat": "cat", "Dog": "dog", "Horse": "horse",
                 "American Black Bear": "bear", "Human": "person"}
    assert class_reuse_map(["pikachu"], VOCDetection.CLASSES) == {}


def _voc_weights_file(arch="ssd_512_mobilenet1.0"):
    """A GluonCV-layout VOC detector file (random weights) and its SHA-1."""
    from gluoncv.data import VOCDetection

    net = gcv_build.build_zoo_net(arch, VOCDetection.CLASSES, "voc")
    gcv_build.initialize(net, input_size=128)
    os.makedirs(gcv_weights.model_store_root(), exist_ok=True)
    tmp = os.path.join(gcv_weights.model_store_root(), "src.params")
    net.save_parameters(tmp)
    with open(tmp, "rb") as fh:
        sha1 = hashlib.sha1(fh.read()).hexdigest()
    return net, tmp, sha1


def test_voc_start_reuses_matching_classes_and_mismatch_errors(monkeypatch):
    """The store file with GluonCV's SHA-1 loads and reset_class keeps 'bird'; a wrong file is refused
    with a message naming the file, its folder and the SHA-1 (the fetch hits a closed port)."""
    from gluoncv.model_zoo import model_store

    name = "ssd_512_mobilenet1.0_voc"
    src, tmp, sha1 = _voc_weights_file()
    monkeypatch.setitem(model_store._model_sha1, name, sha1)
    path = gcv_weights.weights_path(name)
    assert os.path.basename(path) == f"{name}-{sha1[:8]}.params"
    assert path.startswith(os.environ["MXNET_HOME"])
    os.replace(tmp, path)
    assert gcv_weights.ensure_weights(name, download=False) == path

    net, anchors, info = gcv_finetune.create_for_training("ssd_512_mobilenet1.0", ["pikachu", "Bird"], "voc",
                                                 input_size=128)
    assert info["variant"] == "voc" and info["reused_classes"] == {"Bird": "bird"} and info["weights"] == path
    old = src.class_predictors[0].predictor.weight.data().asnumpy()
    new = net.class_predictors[0].predictor.weight.data().asnumpy()
    n_old, n_new = 21, 3                                  # classes + background
    bird = 1 + src.classes.index("bird")
    np.testing.assert_allclose(new[2::n_new], old[bird::n_old])   # Bird is our class 1 → channel 2
    np.testing.assert_allclose(new[0::n_new], old[0::n_old])       # background reused
    ids, scores, boxes = net(mx.nd.zeros((1, 3, 128, 128)))       # survives reset_class
    assert ids.shape == (1, 100, 1)

    with open(path, "wb") as fh:
        fh.write(b"not the weights")
    with pytest.raises(DownloadError) as err:
        gcv_weights.ensure_weights(name)
    msg = str(err.value)
    assert os.path.basename(path) in msg and sha1 in msg and gcv_weights.model_store_root() in msg
    assert "refused" in msg and "MXNET_HOME" in msg
    with pytest.raises(DownloadError, match="does not exist"):
        gcv_finetune.create_for_training("ssd_512_mobilenet1.0", ["a"], "coco", input_size=128)


def test_weights_download_from_the_store_url_with_sha1_check(monkeypatch):
    from gluoncv.model_zoo import model_store

    good, bad = b"weights v1" * 100, b"tampered" * 100
    sha1 = hashlib.sha1(good).hexdigest()
    monkeypatch.setitem(model_store._model_sha1, "toy_net", sha1)
    fname = f"toy_net-{sha1[:8]}"
    srv = ModelStoreServer({f"/gluon/models/{fname}.zip": store_zip(f"{fname}.params", good)})
    try:
        monkeypatch.setenv("MXNET_GLUON_REPO", srv.url)
        path = gcv_weights.ensure_weights("toy_net", progress=lambda *a: None)
        assert open(path, "rb").read() == good and srv.hits == [f"/gluon/models/{fname}.zip"]
        assert gcv_weights.ensure_weights("toy_net") == path and len(srv.hits) == 1   # present: no request
        assert sorted(os.listdir(os.path.dirname(path))) == [f"{fname}.params"]  # no zip, no staging
        os.remove(path)
        srv.files[f"/gluon/models/{fname}.zip"] = store_zip(f"{fname}.params", bad)
        with pytest.raises(DownloadError, match="has SHA-1 .* not GluonCV's"):
            gcv_weights.ensure_weights("toy_net", progress=lambda *a: None)
        assert not os.path.exists(path)
    finally:
        srv.close()


def test_imagenet_start_offline_names_the_backbone_file():
    with pytest.raises(DownloadError) as err:
        gcv_finetune.create_for_training("ssd_512_mobilenet1.0", ["a"], "imagenet", input_size=128)
    assert "mobilenet1.0-efbb2ca3.params" in str(err.value)
    with pytest.raises(SSDError, match="--pretrained"):
        gcv_finetune.create_for_training("ssd_512_mobilenet1.0", ["a"], "/no/such/file.params", input_size=128)


def test_local_params_file_loads_what_matches(tmp_path):
    src, meta = gcv_recipe.new_zoo_model("ssd_512_mobilenet1.0", ["a", "b", "c"], input_size=128)
    path = str(tmp_path / "other.params")
    src.save_parameters(path)
    net, _, info = gcv_finetune.create_for_training("ssd_512_mobilenet1.0", ["x"], path, input_size=128)
    assert info["loaded"] > 0 and any(k.startswith("class_predictors") for k in info["skipped"])
    np.testing.assert_allclose(net.box_predictors[0].predictor.weight.data().asnumpy(),
                               src.box_predictors[0].predictor.weight.data().asnumpy())


# ---------------------------------------------------------------------------------------------
# The whole run through ssd.training.loop.train: events, meta, checkpoints, resume, report
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from ssd.data.synthetic import generate

    root = str(tmp_path_factory.mktemp("zoo_synth"))
    generate(root, num_train=4, num_val=2, seed=2, size=128)
    return root


def test_zoo_training_run_resume_and_report(synth, tmp_path, monkeypatch):
    from ssd.cli.main import main
    from ssd.inference.detector import Detector
    from ssd.inference.evaluation import evaluate
    from ssd.training.events import read_events
    from ssd.viz.plots import pr_curve_figure, training_curves_figure
    from ssd.store import list_models, read_meta
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    monkeypatch.setenv("SSD_NUM_WORKERS", "0")
    out = tmp_path / "models" / "zoo"
    cfg = dict(data=synth, out=str(out), arch="ssd_512_mobilenet1.0", batch_size=2, input_size=128,
               max_iters_per_epoch=1, device="cpu", augment=False)
    res = train(TrainConfig(epochs=1, **cfg), install_signal_handlers=False)
    assert res.status == "done" and len(res.history) == 1
    rec = res.history[0]
    for k in ("loss", "cls_loss", "box_loss", "class_err", "bbox_mae", "samples_per_s", "val_map", "lr"):
        assert rec[k] is not None and np.isfinite(rec[k]), k
    meta = read_meta(str(out))
    assert meta["arch"] == "ssd_512_mobilenet1.0" and meta["zoo"]["variant"] == "custom"
    assert meta["training"]["args"]["momentum"] == 0.9 and meta["training"]["args"]["lr"] == pytest.approx(0.001 * 2 / 32)
    assert meta["anchors"]["total"] == 390 and meta["status"] == "done"
    # the step ran the traced training graph: MobileNet's BatchNorm+ReLU pairs fused
    assert meta["training"]["arithmetic"]["batchnorm_relu_fused"] > 20
    types = [e["type"] for e in read_events(str(out))]
    assert types[0] == "start" and "epoch" in types and types[-1] == "done"

    res = train(TrainConfig(epochs=2, resume=True, **cfg), install_signal_handlers=False)
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert json.load(open(out / "checkpoints" / "checkpoint.json"))["epoch"] == 2

    ok, broken = list_models(str(tmp_path / "models"))
    assert [m.name for m in ok] == ["zoo"] and not broken
    det = Detector.load(str(out))
    from ssd.data.dataset import open_dataset
    ev = evaluate(det, open_dataset(synth).val)
    assert set(ev.per_class_ap) == {"pikachu"} and "pikachu" in ev.pr_curves
    pr_curve_figure(ev)
    training_curves_figure(res.history)
    plot = tmp_path / "pr.png"
    assert main(["eval", "--model", str(out), "--data", synth, "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 0


def test_data_parallel_over_two_contexts_passes_the_kvstore(synth, tmp_path, monkeypatch):
    """Two CPU contexts stand in for two GPUs: the batch is split, SSDMultiBoxLoss normalizes over
    the whole batch, and --kvstore reaches gluon.Trainer as for TinySSD."""
    import ssd.base.device
    from mxnet import gluon

    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    monkeypatch.setattr(ssd.base.device, "select_devices", lambda prefer_gpu=True: ssd.base.device.DeviceInfo(
        [mx.cpu(0), mx.cpu(1)], "cpu", "2 CPU contexts (test)"))
    seen = {}
    real = gluon.Trainer

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(gluon, "Trainer", spy)
    res = train(TrainConfig(data=synth, out=str(tmp_path / "dp"), arch="ssd_512_mobilenet1.0", epochs=1,
                            batch_size=2, input_size=128, max_iters_per_epoch=1, augment=False,
                            kvstore="local", limit_val=1), install_signal_handlers=False)
    assert res.status == "done" and np.isfinite(res.history[0]["loss"]) and seen["kvstore"] == "local"
    assert res.device == "2 CPU contexts (test)"
