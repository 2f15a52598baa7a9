"""``ssd_512_resnet50_v1b`` with torchvision's ResNet-50 ImageNet weights: the name-based key map is
exact against torchvision's own forward pass (Debian's python3-torchvision under /usr/bin/python3),
loud on a file that does not fit, and ``train --pretrained imagenet`` fetches the file through the
live-source download path (served from 127.0.0.1) and loads it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest

from exactness import backbone_reference_or_skip
from store_server import ModelStoreServer
from ssd.base.errors import ModelError, SSDError

ARCH = "ssd_512_resnet50_v1b"
pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")


@pytest.fixture(scope="module")
def resnet50_reference(tmp_path_factory) -> str:
    """torchvision's resnet50, random weights, calibrated-then-perturbed BatchNorm: checkpoint + layer3/layer4."""
    return backbone_reference_or_skip("resnet50", tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_resnet50(tmp_path_factory) -> bytes:
    """A few-kB torch.save file with resnet50-0676ba61.pth's keys and shapes, one value per tensor."""
    folder = backbone_reference_or_skip("resnet50", tmp_path_factory, constant=True)
    return open(os.path.join(folder, "checkpoint.pth"), "rb").read()


@pytest.fixture
def live_resnet50(tiny_resnet50, monkeypatch, tmp_path):
    """download.pytorch.org stood in for on 127.0.0.1, the catalogue's hash that of the served file,
    no GluonCV store and empty caches."""
    from ssd.models.weights import catalogue

    entry = catalogue.RESNET50_IMAGENET
    srv = ModelStoreServer({f"/models/{entry.file}": tiny_resnet50})
    monkeypatch.setattr(catalogue, "RESNET50_IMAGENET",
                        dataclasses.replace(entry, sha256=hashlib.sha256(tiny_resnet50).hexdigest()))
    monkeypatch.setenv("SSD_TORCHVISION_MIRROR", srv.url + "models/")
    monkeypatch.delenv("MXNET_GLUON_REPO", raising=False)
    for var, sub in (("MXNET_HOME", "mxnet"), ("SSD_WEIGHTS_DIR", "weights"), ("TORCH_HOME", "torch")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    yield srv
    srv.close()


def _net_and_params():
    from ssd.models.gluoncv.build import build_zoo_net

    net = build_zoo_net(ARCH, ["deer"])
    return net, net._collect_params_with_prefix()


def test_backbone_features_equal_torchvision_resnet50_layer3_and_layer4(resnet50_reference):
    import mxnet as mx

    from exactness import RAW_ATOL
    from ssd.models.gluoncv.build import initialize
    from ssd.models.gluoncv.resnet_v1b import resnet50_v1b_params
    from ssd.models.weights import read_state_dict

    net, params = _net_and_params()
    arrays = resnet50_v1b_params(read_state_dict(os.path.join(resnet50_reference, "checkpoint.pth")), params)
    assert len(arrays) == 265          # 53 convolutions + 53 BatchNorms × (γ, β, mean, var)
    for name, arr in arrays.items():
        params[name]._load_init(mx.nd.array(arr), [mx.cpu()])
    initialize(net, input_size=128)
    with np.load(os.path.join(resnet50_reference, "reference.npz")) as ref:
        feats = net.features(mx.nd.array(ref["x"]))        # SSD's maps: layer3, layer4, then its extras
        for ours, key in zip(feats[:2], ("layer3", "layer4")):
            want = ref[key]
            assert ours.shape == want.shape and np.abs(want).max() > 1.0   # a non-trivial map, not all zeros
            err = float(np.abs(ours.asnumpy() - want).max())
            assert err <= RAW_ATOL, (key, err)


def test_the_key_map_goes_by_name_and_is_loud_on_a_file_that_does_not_fit(tiny_resnet50, tmp_path):
    from ssd.models.gluoncv.resnet_v1b import resnet50_v1b_params
    from ssd.models.weights import read_state_dict

    path = tmp_path / "r.pth"
    path.write_bytes(tiny_resnet50)
    state = read_state_dict(str(path))
    _, params = _net_and_params()
    keys = [k for k in state if not k.endswith("num_batches_tracked")]
    backwards = resnet50_v1b_params(dict(reversed(list(state.items()))), params)   # order plays no part
    # each tensor holds (i + 1) / 1000 (+1 for variances): its value names the torchvision key it came from
    value = {round(float(state[k].flat[0]), 4): k for k in keys}
    assert value[round(float(backwards["features.resnetv1b_layers3_batchnorm17_running_mean"].flat[0]), 4)] \
        == "layer3.5.bn3.running_mean"
    assert value[round(float(backwards["features.resnetv1b_down2_batchnorm0_gamma"].flat[0]), 4)] \
        == "layer2.0.downsample.1.weight"
    assert value[round(float(backwards["features.resnetv1b_layers4_conv4_weight"].flat[0]), 4)] \
        == "layer4.1.conv2.weight"
    for broken, says in (({k: v for k, v in state.items() if k != "layer4.2.bn3.running_var"},
                          "backbone parameters missing (1): features.resnetv1b_layers4_batchnorm8_running_var"),
                         ({**state, "layer5.0.conv1.weight": state["conv1.weight"]}, "keys with no place (1)"),
                         ({**state, "layer1.0.conv2.weight": np.zeros((64, 64, 1, 1), np.float32)},
                          "shapes that differ (1): layer1.0.conv2.weight (64, 64, 1, 1)")):
        with pytest.raises(ModelError, match=r"resnet50_v1b: .*" + says.replace("(", r"\(").replace(")", r"\)")):
            resnet50_v1b_params(broken, params)


def test_train_pretrained_imagenet_fetches_torchvision_resnet50_and_loads_it(live_resnet50, tiny_resnet50, tmp_path,
                                                                             synth_dir):
    from ssd.cli.main import main
    from ssd.models.gluoncv.finetune import create_for_training
    from ssd.models.weights import catalogue, read_state_dict

    out = tmp_path / "run"
    assert main(["train", "--data", synth_dir, "--model", ARCH, "--pretrained", "imagenet", "--out", str(out),
                 "--epochs", "1", "--batch-size", "2", "--input-size", "64", "--limit-train", "2",
                 "--limit-val", "2", "--max-iters", "1", "--device", "cpu"]) == 0
    zoo = json.loads((out / "meta.json").read_text())["zoo"]
    url = live_resnet50.url + "models/resnet50-0676ba61.pth"
    assert zoo["pretrained"] == "imagenet" and zoo["loaded"] == 265 and zoo["source"] == url
    assert zoo["weights"] == str(tmp_path / "weights" / "resnet50-0676ba61.pth")
    assert live_resnet50.hits == ["/models/resnet50-0676ba61.pth"]            # downloaded once, verified

    net, _, info = create_for_training(ARCH, ["deer"], "imagenet", input_size=64)   # from the verified copy
    assert live_resnet50.hits == ["/models/resnet50-0676ba61.pth"] and "normalize" not in info
    state = read_state_dict(str(tmp_path / "weights" / catalogue.RESNET50_IMAGENET.file))
    params = net._collect_params_with_prefix()
    assert np.array_equal(params["features.resnetv1b_conv0_weight"].data().asnumpy(), state["conv1.weight"])
    assert np.array_equal(params["features.resnetv1b_layers4_batchnorm8_running_var"].data().asnumpy(),
                          state["layer4.2.bn3.running_var"])


def test_a_corrupt_download_is_refused_before_anything_loads(live_resnet50, monkeypatch, tmp_path):
    from ssd.base.errors import DownloadError
    from ssd.models.gluoncv.finetune import create_for_training
    from ssd.models.weights import catalogue

    monkeypatch.setattr(catalogue, "RESNET50_IMAGENET", dataclasses.replace(
        catalogue.RESNET50_IMAGENET, sha256="0676ba61" + "0" * 56))
    with pytest.raises(DownloadError, match="checksum"):
        create_for_training(ARCH, ["deer"], "imagenet", input_size=64)
    assert not [f for f in os.listdir(tmp_path / "weights") if f.endswith(".pth")]


@pytest.mark.parametrize("variant", ["voc", "coco"])
def test_gluoncv_published_no_v1b_detector_and_says_what_to_use(variant):
    from ssd.models.gluoncv.finetune import create_for_training

    with pytest.raises(SSDError, match=f"GluonCV published no {variant.upper()} detector for {ARCH}.*"
                                       f"ssd_512_resnet50_v1 with --pretrained {variant}"):
        create_for_training(ARCH, ["deer"], variant, input_size=64)
