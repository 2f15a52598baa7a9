"""The recipe interface: a new architecture is one registered recipe, with no edit to the loop.

A toy network (one feature map, two anchors per cell) is registered under the name ``toy``;
it trains one step through the same ``train()`` as TinySSD, saves a model folder, and the
same ``Detector`` loads and runs it. The registry is restored afterwards.
"""
from __future__ import annotations

import os

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from ssd.base.errors import SSDError
from ssd.data.preprocess import normalize_batch
from ssd.inference.detector import Detector
from ssd.models import registry
from ssd.models.anchor_set import AnchorSet, anchor_set
from ssd.models.anchors import AnchorConfig
from ssd.models.multibox import MultiBoxPlan, decode_multibox
from ssd.models.recipe import Recipe
from ssd.store import read_meta
from ssd.training.config import TrainConfig, prepared
from ssd.training.loop import train

SIZES, RATIOS = [[0.3]], [[1.0, 2.0]]


class ToyNet(nn.HybridBlock):
    """64×64 in, one 8×8 feature map, d2l-style outputs ``(anchors, cls_preds, box_preds)``."""

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        with self.name_scope():
            self.body = nn.HybridSequential()
            self.body.add(nn.Conv2D(8, 3, padding=1, activation="relu"), nn.MaxPool2D(8))
            self.cls = nn.Conv2D(2 * (num_classes + 1), 3, padding=1)
            self.box = nn.Conv2D(2 * 4, 3, padding=1)

    def hybrid_forward(self, F, x):  # noqa: N802
        f = self.body(x)
        anchors = F.contrib.MultiBoxPrior(f, sizes=SIZES[0], ratios=RATIOS[0])
        cls = F.flatten(F.transpose(self.cls(f), axes=(0, 2, 3, 1))).reshape((0, -1, self.num_classes + 1))
        box = F.flatten(F.transpose(self.box(f), axes=(0, 2, 3, 1)))
        return anchors, cls, box


class ToyRecipe(Recipe):
    name = "toy"
    family = "test"
    native_size = 64

    def defaults(self, batch_size: int):
        return {"lr": 0.01, "momentum": 0.9, "lr_schedule": "constant", "input_size": 64,
                "hard_negative_ratio": 3.0, "loss_norm": "positives", "box_loss": "smooth_l1"}

    def build(self, meta):
        return ToyNet(len(meta["classes"]))

    def anchor_set(self, meta) -> AnchorSet:
        return anchor_set(AnchorConfig(SIZES, RATIOS, [(8, 8)]), 64)

    def training_plan(self, cfg, classes, train_ds, ctxs, emit, resuming=False):
        return MultiBoxPlan(cfg, train_ds, ctxs, lambda: ToyNet(len(classes)),
                            lambda net: {"kind": "toy", "sizes": SIZES, "ratios": RATIOS, "total": 128})

    def decoder(self, meta):
        return decode_multibox

    def export_outputs(self, net):
        return {"outputs": ["anchors", "cls_preds", "box_preds"], "nms_in_graph": None, "decode": "MultiBoxDetection"}


@pytest.fixture
def toy_registered():
    registry.register(ToyRecipe())
    try:
        yield
    finally:
        registry.unregister("toy")


def test_a_registered_toy_architecture_trains_and_detects_through_the_shared_code(toy_registered, synth_dir,
                                                                                  tmp_path):
    out = str(tmp_path / "toy-model")
    cfg = TrainConfig(data=synth_dir, out=out, arch="toy", epochs=1, batch_size=4, max_iters_per_epoch=1,
                      limit_train=8, limit_val=4, device="cpu", seed=0)
    result = train(cfg, install_signal_handlers=False)
    assert result.status == "done" and len(result.history) == 1
    meta = read_meta(out)
    assert meta["arch"] == "toy" and meta["anchors"]["kind"] == "toy" and meta["input_size"] == 64
    assert os.path.isfile(os.path.join(out, "model.params"))

    det = Detector.load(out)
    image = (np.random.default_rng(0).random((96, 80, 3)) * 255).astype(np.uint8)
    from PIL import Image

    raw = det.detect(Image.fromarray(image), floor=0.0)
    assert det.forward_calls == 1 and raw.image_size == (80, 96)
    assert len(raw) > 0 and raw.boxes.shape == (len(raw), 4)
    # the Detector decodes with the recipe's decoder: the same as running the net by hand
    grey = np.full((1, 64, 64, 3), 128, np.uint8)
    by_hand = decode_multibox(det.net, mx.nd.array(normalize_batch(grey)), 0.45, 0.01)[0]
    via_detector = det.predict_arrays(grey)[0]
    np.testing.assert_allclose(by_hand[1], via_detector[1])
    assert "toy" in registry.architectures()


def test_unknown_architectures_are_refused_by_name():
    with pytest.raises(SSDError, match="unknown architecture 'nope'; known: tiny"):
        registry.recipe_for("nope")
    cfg = TrainConfig(data="", out="", arch="nope")
    with pytest.raises(SSDError, match="unknown architecture"):
        prepared(cfg)


def test_every_builtin_recipe_describes_its_anchors_without_training():
    """TinySSD at 256 has 5444 anchors; GluonCV's VGG16-300 has the SSD300 paper's 8732."""
    tiny = registry.anchors_for_meta({"arch": "tiny", "classes": ["a"], "input_size": 256})
    assert tiny.total() == 5444
    vgg = registry.anchors_for_meta({"arch": "ssd_300_vgg16_atrous", "classes": ["a"], "input_size": 300})
    assert vgg.total() == 8732 and vgg.per_cell == [4, 6, 6, 6, 4, 4]


@pytest.mark.parametrize("start", ["coco", "imagenet", "models/ssdlite320_mobilenet_v3_large_coco", "/no/such/folder"])
def test_tiny_refuses_a_starting_point_it_would_ignore(start, tmp_path):
    """TinySSD has no pretrained weights by name, and starts only from a TinySSD model folder:
    ``--pretrained`` given to it was silently dropped (a from-scratch model the user took for a
    fine-tuned one)."""
    cfg = TrainConfig(data=str(tmp_path), out=str(tmp_path / "m"), arch="tiny", pretrained=start)
    with pytest.raises(SSDError, match=r"--pretrained .*tiny.*from scratch.*ssdlite320_mobilenet_v3_large"):
        prepared(cfg)
    for scratch in (None, "", "none", "scratch"):
        prepared(TrainConfig(data=str(tmp_path), out=str(tmp_path / "m"), arch="tiny", pretrained=scratch))
