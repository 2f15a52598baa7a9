"""The Train page with a model folder as the starting point: the folder decides the architecture, and
for a TinySSD its input size and anchors (the shapes its weights were learned for). The page shows
those values, locked, instead of letting a person guess them; a refusal reads in the page's words."""
from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT
from ssd.base.errors import SSDError

LABEL = "start64 · tiny · "
SIZES = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]


def _tiny_folder(path: str, sizes=None) -> None:
    """A TinySSD folder as training writes it (one class, 64 px), untrained."""
    import mxnet as mx

    from ssd.data.preprocess import MEAN, STD
    from ssd.models.tiny import TinySSD
    from ssd.store import save_model

    net = TinySSD(1, 64, sizes=sizes)
    net.initialize(init=mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 64, 64)))
    anchors = net.anchor_config.to_dict()
    anchors.update(per_scale=net.anchor_config.counts(), total=net.anchor_config.total())
    save_model(path, net, {"arch": "tiny", "classes": ["pikachu"], "input_size": 64, "anchors": anchors,
                           "normalize": {"mean": list(MEAN), "std": list(STD)},
                           "dataset": {"path": "/data/synthetic-pikachu", "num_train": 64}})


@pytest.fixture
def page(tmp_path, synth_dir, data_root, monkeypatch):
    """The Train page over a models folder holding one 64 px TinySSD with its own anchors; Start records
    the run it would launch instead of launching it."""
    from ssd import jobs

    root = tmp_path / "models"
    _tiny_folder(str(root / "start64"), sizes=SIZES)
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    started = []

    def fake_start(models_root, cfg):
        started.append(cfg)
        raise SSDError("not started in this test")

    monkeypatch.setattr(jobs, "start_job", fake_start)
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    at = at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="train_dataset").set_value(synth_dir)
    return at, started, str(root / "start64")


def _start_option(at) -> str:
    return next(o for o in at.selectbox(key="train_pretrained").options if o.startswith(LABEL))


def test_a_tiny_start_folder_sets_and_locks_input_size_anchors_and_architecture(page):
    at, started, folder = page
    at.selectbox(key="train_arch").set_value("ssdlite320_mobilenet_v3_large")
    at.selectbox(key="train_pretrained").set_value(_start_option(at))
    at = at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {s.label: s for s in at.selectbox}
    assert shown["Architecture"].value == "tiny" and shown["Architecture"].disabled
    assert shown["Input size"].value == 64 and shown["Input size"].disabled
    said = " ".join(c.value for c in at.caption)
    assert "start64" in said and "64 px" in said and "anchors" in said, said
    at = next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if e.value != "not started in this test"], [e.value for e in at.error]
    [cfg] = started
    assert (cfg.arch, cfg.pretrained, cfg.input_size) == ("tiny", folder, 64)
    assert cfg.sizes == SIZES and cfg.ratios is not None
    # back to scratch: the person's own choices come back, unlocked
    at.selectbox(key="train_pretrained").set_value("scratch")
    at = at.run()
    shown = {s.label: s for s in at.selectbox}
    assert shown["Architecture"].value == "ssdlite320_mobilenet_v3_large" and not shown["Architecture"].disabled
    assert not shown["Input size"].disabled


@pytest.mark.parametrize("make", ["arch", "size", "gone"])
def test_refusals_reach_the_page_in_its_own_words(make, tmp_path):
    """What settle_architecture, tiny_start and check_config say, as the page shows it: no CLI flag."""
    from app_pages._train_start import in_page_terms
    from ssd.training.config import TrainConfig, prepared, settle_architecture

    folder = str(tmp_path / "start64")
    _tiny_folder(folder)
    with pytest.raises(SSDError) as err:
        if make == "arch":
            settle_architecture("ssdlite320_mobilenet_v3_large", folder)
        else:
            gone = make == "gone"
            prepared(TrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), pretrained=folder + "x" * gone,
                                 input_size=128))
    said = in_page_terms(str(err.value))
    assert "--" not in said, said
    assert "'Start from'" in said, said
    if make == "size":
        assert "'Input size' 64" in said
