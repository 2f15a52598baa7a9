"""Where a training run starts: ``--pretrained`` given a saved model folder decides the architecture
on the command line as on the Train page (one resolution, ``settle_architecture``), and the Train
page offers every model folder a run can start from."""
from __future__ import annotations

import json
import os

import pytest

from ssd.base.errors import SSDError
from train_capture import caught  # noqa: F401  (the fixture)

LITE = "ssdlite320_mobilenet_v3_large"


def _folder(path, arch: str, classes=("deer", "fox"), source=None) -> str:
    """A model folder as far as choosing a start reads it: meta.json beside model.params."""
    os.makedirs(path, exist_ok=True)
    meta = {"arch": arch, "classes": list(classes), "input_size": 128}
    if source:
        meta["source"] = source
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump(meta, f)
    open(os.path.join(path, "model.params"), "wb").close()
    return str(path)


def test_cli_takes_the_architecture_of_a_pretrained_folder(tmp_path, caught, capsys):
    from ssd.cli.main import main

    lite = _folder(tmp_path / "lite", LITE)
    argv = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--pretrained", lite]
    assert main(argv) == 2 and caught[-1].arch == LITE and caught[-1].pretrained == lite
    assert f"architecture {LITE}, from {lite}'s meta.json" in capsys.readouterr().err
    assert main(argv + ["--model", LITE]) == 2 and caught[-1].arch == LITE      # the same, said twice: fine
    assert f"from {lite}'s meta.json" not in capsys.readouterr().err


def test_cli_refuses_a_model_other_than_the_folders_before_reading_data(tmp_path, caught, capsys):
    from ssd.cli.main import main

    lite = _folder(tmp_path / "lite", LITE)
    out = tmp_path / "out"
    argv = ["train", "--data", str(tmp_path), "--out", str(out), "--pretrained", lite,
            "--model", "ssd_512_mobilenet1.0"]
    assert main(argv) == 2 and not caught and not out.exists()      # was refused only once the data was read
    err = capsys.readouterr().err
    assert f"'{LITE}' model and --model asks for 'ssd_512_mobilenet1.0'" in err


@pytest.mark.parametrize("start,arch,expected", [("coco", "ssd_300_vgg16_atrous", "ssd_300_vgg16_atrous"),
                                                 ("imagenet", None, "tiny"), (None, None, "tiny"),
                                                 ("w.params", "ssd_512_mobilenet1.0", "ssd_512_mobilenet1.0")])
def test_named_starts_and_params_files_keep_the_given_or_default_architecture(start, arch, expected):
    from ssd.training.config import settle_architecture

    assert settle_architecture(arch, start) == (expected, "")


def test_a_folder_of_an_architecture_that_cannot_start_from_one_is_refused_by_name(tmp_path, monkeypatch):
    from ssd.models.registry import recipe_for
    from ssd.training.config import settle_architecture

    monkeypatch.setattr(type(recipe_for("tiny")), "starts_from_folder", False)   # every one here can now
    tiny = _folder(tmp_path / "tiny", "tiny")
    with pytest.raises(SSDError, match=r"is a tiny model, and tiny cannot start from a saved model folder \(.*"
                                       + LITE):
        settle_architecture(None, tiny)


def test_every_model_folder_a_run_can_start_from_is_offered_with_its_classes_and_origin(tmp_path, monkeypatch):
    from ssd.training import config

    mine = _folder(tmp_path / "ena24-ssdlite", LITE, classes=("deer", "fox", "bear"))
    meta_path = os.path.join(mine, "meta.json")
    meta = json.load(open(meta_path))
    meta["dataset"] = {"path": "/data/ena24", "num_train": 120}
    json.dump(meta, open(meta_path, "w"))
    pulled = _folder(tmp_path / "voc", "ssd_512_mobilenet1.0", classes=[f"c{i}" for i in range(20)],
                     source={"kind": "gluoncv-model-zoo", "dataset": "Pascal VOC", "name": "ssd_512_mobilenet1.0_voc"})
    assert config.start_label(mine) == f"ena24-ssdlite · {LITE} · 3 classes, trained on 120 images of ena24"
    assert config.start_label(pulled) == "voc · ssd_512_mobilenet1.0 · 20 Pascal VOC classes, pulled from GluonCV"
    assert config.start_label(str(tmp_path)) is None                          # no model folder
    os.makedirs(tmp_path / "bad")
    open(tmp_path / "bad" / "meta.json", "w").write("{")
    assert config.start_label(str(tmp_path / "bad")) is None                  # unreadable: not offered

    reads = []
    real = config.read_folder_meta
    monkeypatch.setattr(config, "read_folder_meta", lambda p: reads.append(p) or real(p))
    for _ in range(3):
        config.start_label(mine)
    assert reads == []                                     # cached per version of its meta.json
    meta["classes"].append("lynx")
    json.dump(meta, open(meta_path, "w"))
    assert "4 classes" in config.start_label(mine) and reads == [mine]      # a new version is read again


@pytest.mark.parametrize("extra", [{"source": "torchvision"}, {"dataset": "ena24"}, {"source": ["x"]},
                                   {"dataset": {"path": ["/d/ena24"], "num_train": {"x": 1}}},
                                   {"source": {"kind": "gluoncv-model-zoo", "published": {"metric": "AP"}}},
                                   {"source": {"kind": "torchvision", "dataset": ["COCO"]}}])
def test_a_meta_json_of_odd_shapes_is_labelled_not_a_traceback(tmp_path, extra):
    """meta.json is outside data: a ``source`` or ``dataset`` that is text or a list (hand-edited, another
    tool's) must not take the Train page down (was: AttributeError 'str' object has no attribute 'get')."""
    from ssd.models.knowledge import model_knowledge
    from ssd.training import config

    folder = _folder(tmp_path / "odd", LITE)
    meta = dict(json.load(open(os.path.join(folder, "meta.json"))), **extra)
    json.dump(meta, open(os.path.join(folder, "meta.json"), "w"))
    label = config.start_label(folder)
    assert label is not None and label.startswith(f"odd · {LITE} · 2 ")
    assert model_knowledge(meta).startswith("2 ")
