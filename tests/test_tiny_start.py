"""A TinySSD run that starts from a TinySSD model folder (a researcher adding photos or classes to
their own model): every block and the box predictors copied, the class predictors re-headed by
class name, the folder's input size and anchors required."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ssd.base.errors import SSDError


@pytest.fixture(scope="module")
def source(tmp_path_factory, synth_dir) -> str:
    """A one-class (pikachu) TinySSD at 64 px, one short epoch."""
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    out = str(tmp_path_factory.mktemp("src") / "pika")
    train(TrainConfig(data=synth_dir, out=out, epochs=1, batch_size=8, input_size=64, max_iters_per_epoch=2,
                      limit_val=4, device="cpu", warmup_iters=0), install_signal_handlers=False)
    return out


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory) -> str:
    """A COCO folder with classes pikachu and other (12 noise photos, a box of each)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("two")
    os.makedirs(root / "images")
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "images" / f"{i}.jpg")
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 64})
        annotations += [{"id": 2 * i, "image_id": i, "category_id": 1, "bbox": [4, 4, 24, 24]},
                        {"id": 2 * i + 1, "image_id": i, "category_id": 2, "bbox": [30, 30, 30, 30]}]
    with open(root / "annotations.json", "w") as f:
        json.dump({"images": images, "annotations": annotations,
                   "categories": [{"id": 1, "name": "pikachu"}, {"id": 2, "name": "other"}]}, f)
    return str(root)


def _outputs(net, x):
    _, cls, box = net(x)
    return cls.asnumpy(), box.asnumpy()


def test_a_tiny_run_starts_from_a_tiny_folder_keeping_its_classes_rows(source, two_classes, tmp_path,
                                                                       monkeypatch, capsys):
    import mxnet as mx

    import ssd.training.loop as loop
    from ssd.cli.main import main
    from ssd.models.registry import recipe_for

    with open(os.path.join(source, "meta.json")) as f:
        old_net = recipe_for("tiny").build(json.load(f))
    old_net.load_parameters(os.path.join(source, "model.params"), ctx=mx.cpu())
    x = mx.nd.array(np.random.default_rng(1).normal(size=(2, 3, 64, 64)))
    before = {}
    make_trainer = loop.make_trainer

    def first_look(net, *args, **kw):          # the network as the first step will find it
        before["out"] = _outputs(net, x)
        before["params"] = {k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()}
        return make_trainer(net, *args, **kw)

    monkeypatch.setattr(loop, "make_trainer", first_look)
    out = str(tmp_path / "more")
    argv = ["train", "--data", two_classes, "--out", out, "--pretrained", source, "--input-size", "64",
            "--epochs", "1", "--batch-size", "4", "--max-iters", "2", "--device", "cpu"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"starting from {source}: classes reused by name: pikachu; new: other" in err
    assert "architecture tiny" in err                 # --model left out: the folder's
    old = {k: v.data().asnumpy() for k, v in old_net._collect_params_with_prefix().items()}
    for name, value in before["params"].items():          # exact: every block, box predictors, reused rows
        if name.startswith("cls_heads."):
            anchors = 4                                    # per anchor: background, pikachu, other
            new_rows, old_rows = value.reshape((anchors, 3, -1)), old[name].reshape((anchors, 2, -1))
            assert np.array_equal(new_rows[:, :2], old_rows), name
        else:
            assert np.array_equal(value, old[name]), name
    # the outputs agree to float32 rounding (the training graph is hybridized, the source net is not)
    (cls, box), (old_cls, old_box) = before["out"], _outputs(old_net, x)
    assert np.allclose(cls[:, :, :2], old_cls, rtol=1e-5, atol=1e-5) and np.allclose(box, old_box, rtol=1e-5, atol=1e-5)
    assert not np.allclose(cls[:, :, 2], old_cls[:, :, 1], atol=1e-2)              # other: fresh
    with open(os.path.join(out, "meta.json")) as f:
        meta = json.load(f)
    assert meta["classes"] == ["pikachu", "other"] and meta["metrics"]["history"]
    assert meta["start"]["pretrained"] == os.path.abspath(source)
    assert meta["start"]["reused_classes"] == {"pikachu": "pikachu"} and meta["start"]["loaded"] > 0


def test_the_train_page_offers_a_tiny_folder(source):
    from ssd.training.config import start_label

    label = start_label(source)
    assert label is not None and label.startswith("pika · tiny · ") and "pikachu" in label


@pytest.mark.parametrize("extra,said", [(["--input-size", "128"], "trained at 64 px and this run asks for 128"),
                                        (["--input-size", "64", "--sizes", "0.3,0.4;0.5,0.6;0.7,0.8;0.8,0.9;0.9,1"],
                                         "starts only with its own anchors")])
def test_another_input_size_or_anchors_is_refused_before_the_data_is_read(source, tmp_path, capsys, extra, said):
    from ssd.cli.main import main

    out = tmp_path / "no"
    assert main(["train", "--data", str(tmp_path), "--out", str(out), "--model", "tiny", "--pretrained", source]
                + extra) == 2
    assert said in capsys.readouterr().err and not out.exists()


def test_a_name_or_a_file_is_still_no_start_for_tiny(tmp_path):
    from ssd.models.tiny_start import tiny_folder

    with pytest.raises(SSDError, match="starts from scratch or from a TinySSD model folder"):
        tiny_folder("coco")
    assert tiny_folder("scratch") is None
