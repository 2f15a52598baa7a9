"""A model folder's ONNX files are data from outside: a cached ``model.onnx`` must be the conversion of
the folder's own ``model.params`` (its record's weights hash is only a claim), and no ONNX file reaches
ONNX Runtime with external data, control flow, custom operators, or a size no model here needs."""
from __future__ import annotations

import json
import os
import shutil

import mxnet as mx
import numpy as np
import onnx
import pytest

from ssd.base.errors import ModelError
from ssd.cli.main import main
from ssd.inference import onnx_export
from ssd.inference.engines import load_detector
from ssd.inference.onnx_export import ensure_onnx, export_onnx_folder
from ssd.inference.onnx_trust import MAX_ONNX_BYTES, check_onnx_file, known_export
from ssd.models.registry import recipe_for
from ssd.store import ONNX_FILE, save_model

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")
META = {"arch": "tiny", "classes": ["a", "b"], "input_size": 256,
        "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}


def _random_folder(path: str, seed: int) -> str:
    mx.random.seed(seed)
    net = recipe_for("tiny").build(META)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 256, 256)))
    save_model(path, net, dict(META, name=os.path.basename(path)))
    return path


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two TinySSD folders of the same classes and size, different weights, each with its cached graph."""
    root = tmp_path_factory.mktemp("trust")
    ours, theirs = _random_folder(str(root / "ours"), 1), _random_folder(str(root / "theirs"), 2)
    ensure_onnx(ours)
    ensure_onnx(theirs)
    return ours, theirs


@pytest.fixture(autouse=True)
def own_verdicts(monkeypatch, tmp_path):
    monkeypatch.setenv("SSD_CACHE_DIR", str(tmp_path / "cache"))   # each test its own verdicts


def _swapped(two_models, tmp_path) -> str:
    """``ours`` carrying ``theirs``' graph under ``ours``' record (which names ``ours``' weights hash)."""
    ours, theirs = two_models
    path = str(tmp_path / "swapped")
    shutil.copytree(ours, path)
    shutil.copyfile(os.path.join(theirs, ONNX_FILE), os.path.join(path, ONNX_FILE))
    return path


def _scores(det, image) -> np.ndarray:
    """The 50 highest scores of one image, with their boxes."""
    _, scores, boxes = det.predict_arrays(image[None], floor=0.0)[0]
    top = np.argsort(-np.asarray(scores))[:50]
    return np.concatenate([np.asarray(scores)[top, None], np.asarray(boxes)[top]], axis=1)


def test_a_graph_that_is_not_the_export_of_the_weights_is_converted_again(two_models, tmp_path):
    ours, _ = two_models
    path = _swapped(two_models, tmp_path)
    image = np.random.RandomState(0).randint(0, 255, (256, 256, 3), np.uint8)
    said = []
    det = load_detector(path, "onnxruntime", "fp32", log=said.append)
    want = _scores(load_detector(ours, "mxnet", "fp32"), image)
    got = _scores(det, image)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-4)
    assert any("not the conversion of model.params" in s for s in said), said
    said.clear()
    load_detector(path, "onnxruntime", "fp32", log=said.append)     # verdict remembered: no second check
    assert not said


def test_a_swapped_graph_in_a_folder_that_cannot_be_written_is_refused_and_auto_runs_mxnet(
        two_models, tmp_path, monkeypatch):
    path = _swapped(two_models, tmp_path)

    def refuse(dest, obj):
        raise PermissionError(13, "Permission denied", dest)
    monkeypatch.setattr(onnx_export, "atomic_write_json", refuse)
    monkeypatch.setattr(onnx_export.os, "remove", lambda p: refuse(p, None))
    with pytest.raises(ModelError, match="model.onnx is not the conversion of its model.params"):
        load_detector(path, "onnxruntime", "fp32")
    det = load_detector(path, "auto", "fp32")
    assert det.engine == "mxnet" and "not the conversion of its model.params" in det.engine_note


def test_a_genuine_cache_is_checked_once_and_never_by_the_folders_own_word(two_models, tmp_path):
    ours, _ = two_models
    path = str(tmp_path / "copy")
    shutil.copytree(ours, path)
    key = onnx_export._cache_key(path, json.load(open(os.path.join(path, "meta.json"))))
    assert not known_export(key)              # a fresh cache folder: nothing vouched for yet
    said = []
    load_detector(path, "onnxruntime", "fp32", log=said.append)
    assert not said and known_export(key)     # the same graph: kept, not converted again


def _edited(src: str, dest: str, edit) -> str:
    model = onnx.load(src, load_external_data=False)
    edit(model)
    onnx.save(model, dest)
    return dest


def _external(model, location="../../secret.bin"):
    init = next(i for i in model.graph.initializer if i.name.endswith("conv0_weight"))
    init.ClearField("raw_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "1728")):
        e = init.external_data.add()
        e.key, e.value = k, v


def _custom_op(model):
    model.graph.node[0].domain = "evil.ops"


def _loop(model):
    body = onnx.helper.make_graph([], "body", [], [])
    model.graph.node.append(onnx.helper.make_node("Loop", ["", ""], ["never"], body=body))


def _huge(model):
    big = model.graph.initializer.add()
    big.name, big.data_type = "big", onnx.TensorProto.FLOAT
    big.dims.extend([1 << 20, 1 << 20])         # 4 TiB declared, no data


@pytest.mark.parametrize("edit,said", [(_external, "keeps its data in another file"),
                                       (lambda m: _external(m, "/etc/passwd"), "keeps its data in another file"),
                                       (_custom_op, "custom domain 'evil.ops'"), (_loop, "control-flow subgraph"),
                                       (_huge, "more than the file holds")])
def test_an_exported_graph_from_outside_is_refused_in_one_line_before_onnxruntime(
        two_models, tmp_path, capsys, edit, said):
    ours, _ = two_models
    out = str(tmp_path / "exported")
    export_onnx_folder(ours, out)
    _edited(os.path.join(out, ONNX_FILE), os.path.join(out, ONNX_FILE), edit)
    image = str(tmp_path / "img.png")
    from PIL import Image
    Image.new("RGB", (64, 64)).save(image)
    assert main(["detect", "--model", out, "--engine", "onnxruntime", image]) != 0
    err = capsys.readouterr().err
    assert said in err and "not opened" in err and "Traceback" not in err and "ONNXRuntimeError" not in err


def test_files_that_are_not_graphs_or_are_too_big_are_refused_without_reading_them(tmp_path):
    junk, cut, big = (str(tmp_path / n) for n in ("junk.onnx", "cut.onnx", "big.onnx"))
    open(junk, "wb").write(b"\x08\x07not a protobuf at all" * 10)
    open(cut, "wb").write(b"\x3a\xff\xff\xff\x0f" + b"\0" * 100)     # a field that claims 4 GB, then ends
    with open(big, "wb") as fh:
        fh.truncate(MAX_ONNX_BYTES + 1)                             # sparse: no disk used
    for path, said in ((junk, "not an ONNX graph"), (cut, "not an ONNX graph"), (big, "more than any model"),
                       (str(tmp_path), "not a regular file")):
        with pytest.raises(ModelError, match=said) as err:
            check_onnx_file(path)
        assert "\n" not in str(err.value)
