"""``ssdlite320_mobilenet_v3_large --pretrained imagenet``: torchvision's MobileNetV3-Large ImageNet weights
on our SSDlite with the full tail, as torchvision's own builder makes it. The key map is exact against
torchvision's SSDlite feature extractor (Debian's python3-torchvision under /usr/bin/python3), loud on a
file that does not fit; ``train`` fetches the file through the live-source download path (served from
127.0.0.1), records where it came from, and the result reloads, detects and exports to ONNX.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from exactness import backbone_reference_or_skip
from store_server import ModelStoreServer
from ssd.base.errors import DownloadError, ModelError, SSDError
from ssd.models.ssdlite.imagenet import backbone_arrays, imagenet_key, load_imagenet_backbone
from ssd.models.ssdlite.network import SSDlite
from ssd.models.ssdlite.spec import ARCH, ssdlite_spec
from ssd.models.weights import read_state_dict

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")
FILE = "mobilenet_v3_large-8738ca79.pth"
BACKBONE_PARAMS = 262        # 62 convolutions (weights; 8 SE pairs with biases) + 46 BatchNorms × 4


@pytest.fixture(scope="module")
def mobilenet_reference(tmp_path_factory) -> str:
    """torchvision's mobilenet_v3_large, random weights and BatchNorms: checkpoint + SSDlite's two backbone maps."""
    return backbone_reference_or_skip("mobilenet_v3_large", tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_mobilenet(tmp_path_factory) -> bytes:
    """A few-kB torch.save file with mobilenet_v3_large-8738ca79.pth's keys and shapes, one value per tensor."""
    folder = backbone_reference_or_skip("mobilenet_v3_large", tmp_path_factory, constant=True)
    return open(os.path.join(folder, "checkpoint.pth"), "rb").read()


@pytest.fixture(scope="module")
def served_file(mobilenet_reference) -> bytes:
    """The random-weight checkpoint (22 MB, like the real file): its features differ from channel to
    channel, so a tiny training run's BatchNorm statistics stay well-conditioned."""
    return open(os.path.join(mobilenet_reference, "checkpoint.pth"), "rb").read()


@pytest.fixture
def live_mobilenet(served_file, monkeypatch, tmp_path):
    """download.pytorch.org stood in for on 127.0.0.1, the catalogue's hash that of the served file, empty caches."""
    from ssd.models.weights import catalogue

    srv = ModelStoreServer({f"/models/{FILE}": served_file})
    monkeypatch.setattr(catalogue, "MOBILENET_V3_LARGE_IMAGENET", dataclasses.replace(
        catalogue.MOBILENET_V3_LARGE_IMAGENET, sha256=hashlib.sha256(served_file).hexdigest()))
    monkeypatch.setenv("SSD_TORCHVISION_MIRROR", srv.url + "models/")
    for var, sub in (("SSD_WEIGHTS_DIR", "weights"), ("TORCH_HOME", "torch")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    yield srv
    srv.close()


def _full_tail_net(classes: int = 3, size: int = 128) -> SSDlite:
    net = SSDlite(ssdlite_spec(classes, size, reduced_tail=False))
    net.initialize(mx.init.Normal(0.03))
    return net


def test_the_catalogue_pins_torchvisions_file(monkeypatch):
    from ssd.models.weights import catalogue

    monkeypatch.delenv(catalogue.MIRROR_ENV, raising=False)
    entry = catalogue.MOBILENET_V3_LARGE_IMAGENET
    assert entry.file == FILE and entry.sha256.startswith(entry.sha256_prefix) and len(entry.sha256) == 64
    assert entry.url == "https://download.pytorch.org/models/" + FILE


def test_backbone_maps_equal_torchvision_ssdlite_extractor(mobilenet_reference):
    from exactness import RAW_ATOL

    net = _full_tail_net()
    params = net._collect_params_with_prefix()
    arrays = backbone_arrays(read_state_dict(os.path.join(mobilenet_reference, "checkpoint.pth")), params)
    assert sorted(arrays) == sorted(n for n in params if n.startswith("backbone.features."))
    assert len(arrays) == BACKBONE_PARAMS
    for name, arr in arrays.items():
        params[name].set_data(mx.nd.array(arr))
    with np.load(os.path.join(mobilenet_reference, "reference.npz")) as ref:
        c4 = net.backbone.features[0](mx.nd.array(ref["x"]))      # up to the C4 block's expansion (stride 16)
        last = net.backbone.features[1](c4)                        # up to the last 1×1 convolution (stride 32)
        for ours, key in ((c4, "c4"), (last, "last")):
            want = ref[key]
            assert ours.shape == want.shape and np.abs(want).max() > 1.0   # a non-trivial map
            err = float(np.abs(ours.asnumpy() - want).max())
            assert err <= RAW_ATOL, (key, err)
    assert c4.shape[1] == 672 and last.shape[1] == 960             # the full tail (the reduced one: 672, 480)


def test_the_key_map_goes_by_name_and_is_loud_on_a_file_that_does_not_fit(tiny_mobilenet, tmp_path):
    path = tmp_path / "m.pth"
    path.write_bytes(tiny_mobilenet)
    state = read_state_dict(str(path))
    params = _full_tail_net()._collect_params_with_prefix()
    arrays = backbone_arrays(dict(reversed(list(state.items()))), params)      # order plays no part
    value = {round(float(v.flat[0]), 4): k for k, v in state.items() if not k.endswith("num_batches_tracked")}
    for ours, theirs in (("backbone.features.0.0.0.weight", "features.0.0.weight"),
                         ("backbone.features.0.13.1.running_var", "features.13.block.0.1.running_var"),
                         ("backbone.features.1.0.1.0.weight", "features.13.block.1.0.weight"),
                         ("backbone.features.1.0.2.fc2.bias", "features.13.block.2.fc2.bias"),
                         ("backbone.features.1.2.block.3.1.gamma", "features.15.block.3.1.weight"),
                         ("backbone.features.1.3.1.beta", "features.16.1.bias")):
        assert imagenet_key(ours) == theirs and value[round(float(arrays[ours].flat[0]), 4)] == theirs
    for broken, says in (({k: v for k, v in state.items() if k != "features.7.block.1.1.running_mean"},
                          "1 missing: features.7.block.1.1.running_mean"),
                         ({**state, "features.17.0.weight": state["features.16.0.weight"]},
                          "1 not used by SSDlite: features.17.0.weight"),
                         ({**state, "features.3.block.0.0.weight": np.zeros((72, 24, 3, 3), np.float32)},
                          r"1 of another shape: features.3.block.0.0.weight \(72, 24, 3, 3\)")):
        with pytest.raises(ModelError, match=r"not torchvision's MobileNetV3-Large \(ImageNet, full tail\) .*" + says):
            backbone_arrays(broken, params)
    reduced = SSDlite(ssdlite_spec(3, 128))                  # the COCO detector's halved tail does not take them
    with pytest.raises(ModelError, match="of another shape"):
        backbone_arrays(state, reduced._collect_params_with_prefix())


def test_train_pretrained_imagenet_fetches_the_backbone_and_the_result_detects_and_exports(
        live_mobilenet, served_file, tmp_path, synth_dir):
    from ssd.cli.main import main
    from ssd.inference.detector import Detector
    from ssd.models.weights import catalogue

    out = tmp_path / "run"
    assert main(["train", "--data", synth_dir, "--model", ARCH, "--pretrained", "imagenet", "--out", str(out),
                 "--epochs", "1", "--batch-size", "2", "--input-size", "128", "--limit-train", "2",
                 "--limit-val", "2", "--max-iters", "1", "--device", "cpu"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    start, entry = meta["start"], catalogue.MOBILENET_V3_LARGE_IMAGENET
    assert start["pretrained"] == "imagenet" and start["loaded"] == BACKBONE_PARAMS
    assert start["source"] == live_mobilenet.url + "models/" + FILE and start["file"] == FILE
    assert start["sha256"] == entry.sha256 == hashlib.sha256(served_file).hexdigest()
    assert start["weights"] == str(tmp_path / "weights" / FILE)
    assert meta["ssdlite"]["reduced_tail"] is False and meta["normalize"] == {"mean": [0.5] * 3, "std": [0.5] * 3}
    assert live_mobilenet.hits == ["/models/" + FILE]                         # downloaded once, verified

    det = Detector.load(str(out), precision="fp32")                           # rebuilt with the full tail
    assert det.net.backbone.features[1][3][0].weight.shape == (960, 160, 1, 1)
    assert det.detect(Image.new("RGB", (200, 150), "gray"), floor=0.0).boxes.shape[1] == 4
    _exports_and_runs_in_onnxruntime(str(out), tmp_path / "onnx")


def _exports_and_runs_in_onnxruntime(folder: str, dest) -> None:
    """``export --format onnx`` of the folder; on pictures like its training ones, ONNX Runtime's raw outputs
    equal MXNet's to 1e-3 of their scale. (Not 1e-4: a one-step run's BatchNorm statistics come from one
    batch of two images, and channels that barely varied there amplify float rounding up to 1/√ε ≈ 32×
    a layer; a wrong graph differs by whole units.)"""
    import onnxruntime as ort

    from ssd.cli.main import main
    from ssd.data.synthetic import render_example
    from ssd.store import load_model

    assert main(["export", "--model", folder, "--format", "onnx", "--out", str(dest)]) == 0
    net, _ = load_model(folder)
    images = np.stack([render_example(seed=2024, index=i, split="val", size=128)[0] for i in range(2)])
    x = ((images.astype(np.float32) / 255 - 0.5) / 0.5).transpose(0, 3, 1, 2).copy()
    session = ort.InferenceSession(os.path.join(str(dest), "model.onnx"), providers=["CPUExecutionProvider"])
    for a, b in zip(net(mx.nd.array(x)), session.run(None, {"data": x})):
        a = a.asnumpy()
        assert b.shape[1:] == a.shape[1:] and np.isfinite(b).all()
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-3 * np.abs(a).max())


def test_the_loaded_backbone_is_the_files_and_the_rest_starts_as_torchvision_starts_it(live_mobilenet, tmp_path):
    net = _full_tail_net()
    before = {n: p.data().asnumpy().copy() for n, p in net._collect_params_with_prefix().items()}
    info = load_imagenet_backbone(net)
    assert info["loaded"] == BACKBONE_PARAMS and live_mobilenet.hits == ["/models/" + FILE]
    state = read_state_dict(info["weights"])
    params = net._collect_params_with_prefix()
    for name, p in params.items():
        got = p.data().asnumpy()
        if name.startswith("backbone.features."):
            np.testing.assert_array_equal(got, state[imagenet_key(name)])
        else:
            np.testing.assert_array_equal(got, before[name])           # extra layers and heads: normal(0, 0.03)
    std = params["head.classification_head.module_list.0.1.weight"].data().asnumpy().std()
    assert 0.025 < std < 0.035
    load_imagenet_backbone(_full_tail_net())
    assert live_mobilenet.hits == ["/models/" + FILE]                     # the verified copy is used again


def test_a_file_with_the_wrong_hash_is_refused_and_deleted(live_mobilenet, monkeypatch, tmp_path):
    from ssd.models.weights import catalogue

    entry = catalogue.MOBILENET_V3_LARGE_IMAGENET
    monkeypatch.setattr(catalogue, "MOBILENET_V3_LARGE_IMAGENET", dataclasses.replace(
        entry, sha256=entry.sha256_prefix + "0" * 56))
    with pytest.raises(DownloadError, match="checksum"):
        load_imagenet_backbone(_full_tail_net())
    assert not [f for f in os.listdir(tmp_path / "weights") if f.endswith(".pth")]


def test_offline_says_which_file_and_where_to_put_it(monkeypatch, tmp_path):
    from ssd.models.weights import catalogue

    monkeypatch.setenv("SSD_TORCHVISION_MIRROR", "http://127.0.0.1:9/models/")
    monkeypatch.setenv("SSD_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(DownloadError) as info:
        load_imagenet_backbone(_full_tail_net())
    msg = str(info.value)
    assert FILE in msg and str(tmp_path / "weights" / FILE) in msg
    assert catalogue.MOBILENET_V3_LARGE_IMAGENET.sha256 in msg and "models import" not in msg   # a backbone


def test_the_start_decides_the_tail(tmp_path, synth_dir):
    from ssd.models.ssdlite.training import reduced_tail
    from ssd.training.config import TrainConfig, prepared

    assert reduced_tail("imagenet", None) is False and reduced_tail("ImageNet", None) is False
    assert reduced_tail(None, None) is True and reduced_tail("scratch", None) is True
    assert reduced_tail("m", {"classes": ["a"], "ssdlite": {"reduced_tail": False}}) is False   # a folder keeps its own
    prepared(TrainConfig(data=synth_dir, out=str(tmp_path / "m"), arch=ARCH, pretrained="imagenet"))
    with pytest.raises(SSDError, match="from scratch, from imagenet .* or from a saved"):
        prepared(TrainConfig(data=synth_dir, out=str(tmp_path / "m"), arch=ARCH, pretrained="voc"))
