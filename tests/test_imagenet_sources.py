"""``--pretrained imagenet`` from live sources: torchvision's reduced VGG16 for SSD300 (served from
127.0.0.1), a plain error for the backbones no live source has in our layout (ResNet-50 v1: use
ssd_512_resnet50_v1b, tests/test_resnet50_v1b.py; MobileNet v1: timm's has ReLU6, ours ReLU)."""
from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess

import numpy as np
import pytest

from store_server import ModelStoreServer
from ssd.base.errors import ModelError

WRITER = """
import collections, sys, torch, torchvision
torch.manual_seed(0)
f = torchvision.models.vgg16(weights=None).features
torch.save(collections.OrderedDict((f"features.{k}", v) for k, v in f.state_dict().items()), sys.argv[1])
"""


@pytest.fixture
def no_gluoncv_store(monkeypatch, tmp_path):
    monkeypatch.delenv("MXNET_GLUON_REPO", raising=False)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet"))
    monkeypatch.setenv("SSD_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_vgg16_imagenet_comes_from_torchvision(no_gluoncv_store, monkeypatch, tmp_path):
    from exactness import SYSTEM_PYTHON, reference_unavailable
    from ssd.models.gluoncv import imagenet
    from ssd.models.gluoncv.finetune import create_for_training
    from ssd.models.weights import catalogue, read_state_dict

    if reference_unavailable():
        pytest.skip(f"no torchvision to write the file: {reference_unavailable()}")
    path = tmp_path / "vgg.pth"
    subprocess.run([SYSTEM_PYTHON, "-c", WRITER, str(path)], check=True, capture_output=True)
    data = path.read_bytes()
    srv = ModelStoreServer({f"/models/{catalogue.VGG16_FEATURES.file}": data})
    try:
        monkeypatch.setenv("SSD_TORCHVISION_MIRROR", srv.url + "models/")
        monkeypatch.setattr(catalogue, "VGG16_FEATURES", dataclasses.replace(
            catalogue.VGG16_FEATURES, sha256=hashlib.sha256(data).hexdigest()))
        net, _, info = create_for_training("ssd_300_vgg16_atrous", ["deer"], "imagenet", input_size=300)
    finally:
        srv.close()
    assert info["normalize"]["mean"] == [0.48235, 0.45882, 0.40784] and info["loaded"] == 27
    state = read_state_dict(str(path))
    params = net._collect_params_with_prefix()
    assert np.array_equal(params["features.stages.0.0.weight"].data().asnumpy(), state["features.0.weight"])
    assert np.array_equal(params["features.stages.4.4.bias"].data().asnumpy(), state["features.28.bias"])
    assert (params["features.init_scale"].data().asnumpy() == 1).all()
    assert imagenet.vgg16_features_params(state, list(params))["features.stages.3.4.weight"].shape == (512, 512, 3, 3)


@pytest.mark.parametrize("arch, why", [
    ("ssd_512_resnet50_v1", "v1.5 \\(stride in the 3×3\\).*Start instead from --model ssd_512_resnet50_v1b --pretrained imagenet"),
    ("ssd_512_mobilenet1.0", "timm mobilenetv1_100 .*clips every activation at 6 \\(ReLU6\\) where GluonCV's "
                             "mobilenet1.0 uses ReLU")])
def test_backbones_without_a_live_source_say_what_to_do(no_gluoncv_store, arch, why):
    from ssd.models.gluoncv.finetune import create_for_training

    with pytest.raises(ModelError) as info:
        create_for_training(arch, ["deer"], "imagenet", input_size=128)
    msg = str(info.value)
    assert re.search(why, msg) and "unreachable since February 2024" in msg and "models pull ssd300_vgg16_coco" in msg
