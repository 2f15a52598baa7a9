"""Export → import round trip: a symbol+params folder detects exactly like the model it came from,
for TinySSD and for a GluonCV zoo SSD, and loads without the Python network classes."""
from __future__ import annotations

import os

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from ssd.inference.detector import Detector
from ssd.base.errors import SSDError
from ssd.inference.export import SYMBOL_FILE, SYMBOL_PARAMS, export_model
from ssd.store import list_models, load_model, read_meta, save_model

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")


def _image(seed=0, size=(150, 110)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _tiny_folder(root) -> str:
    from ssd.models.tiny import TinySSD
    from ssd.data.preprocess import MEAN, STD

    net = TinySSD(2, 64)
    net.initialize(init=mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 64, 64)))
    anchors = net.anchor_config.to_dict()
    anchors.update(per_scale=net.anchor_config.counts(), total=net.anchor_config.total())
    path = os.path.join(root, "tiny")
    save_model(path, net, {"arch": "tiny", "classes": ["cat", "dog"], "input_size": 64, "anchors": anchors,
                           "normalize": {"mean": list(MEAN), "std": list(STD)}, "default": True})
    return path


def _zoo_folder(root) -> str:
    from ssd.models.gluoncv.recipe import new_zoo_model

    net, meta = new_zoo_model("ssd_512_mobilenet1.0", ["cat", "dog"], input_size=128)
    path = os.path.join(root, "mobilenet")
    save_model(path, net, meta)
    return path


def _same(a, b):
    assert len(a) == len(b) and len(a) > 0
    np.testing.assert_array_equal(a.class_ids, b.class_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.boxes, b.boxes, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kind", ["tiny", "zoo"])
def test_export_then_import_gives_the_same_detections(kind, tmp_path):
    src = _tiny_folder(str(tmp_path)) if kind == "tiny" else _zoo_folder(str(tmp_path))
    out = str(tmp_path / f"{kind}-export")
    meta = export_model(src, out)
    assert sorted(os.listdir(out)) == sorted([SYMBOL_FILE, SYMBOL_PARAMS, "meta.json"])
    assert meta["format"] == "symbol" and read_meta(out)["export"]["input"] == "data"
    assert meta["default"] is False and meta["exported_from"] == os.path.abspath(src)

    net, _ = load_model(out)
    assert isinstance(net, mx.gluon.SymbolBlock)  # no TinySSD / GluonCV SSD class involved
    live, exported = Detector.load(src), Detector.load(out)
    for nms in (0.45, 0.3):
        _same(live.detect(_image(), nms=nms, floor=0.0), exported.detect(_image(), nms=nms, floor=0.0))
    a = live.predict_arrays(np.zeros((2, live.input_size, live.input_size, 3), np.uint8))
    b = exported.predict_arrays(np.zeros((2, live.input_size, live.input_size, 3), np.uint8))
    for (ia, sa, ba), (ib, sb, bb) in zip(a, b):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-6)

    ok, broken = list_models(str(tmp_path))
    assert sorted(m.name for m in ok) == sorted([os.path.basename(src), f"{kind}-export"]) and not broken


def test_cli_export_and_refusals(tmp_path, capsys):
    from ssd.cli.main import main

    src = _tiny_folder(str(tmp_path))
    assert main(["export", "--model", src]) == 0
    out = src + "-export"
    assert os.path.isfile(os.path.join(out, SYMBOL_PARAMS)) and "exported" in capsys.readouterr().out
    assert main(["export", "--model", out, "--out", str(tmp_path / "again")]) == 2
    assert "already an exported graph" in capsys.readouterr().err
    with pytest.raises(SSDError, match="different folder"):
        export_model(src, src)
    os.remove(os.path.join(out, SYMBOL_PARAMS))
    ok, broken = list_models(str(tmp_path))
    assert [b.name for b in broken] == ["tiny-export"] and SYMBOL_PARAMS in broken[0].error
