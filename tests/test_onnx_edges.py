"""ONNX model folders from outside: a graph that is not the model meta.json describes, a corrupt cache,
a record naming a file elsewhere, an export aimed at a folder holding another model, an exported folder
run by ``auto`` after ``quantize``, an onnxruntime whose native library does not load. Each gets a clear one-line
error (or is repaired, when the file is our own cache) and nothing the user had is lost."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys

import mxnet as mx
import pytest

from ssd.base.errors import ModelError, SSDError
from ssd.cli.main import main
from ssd.inference import onnx_engine
from ssd.inference.engines import load_detector
from ssd.inference.onnx_export import ONNX_RECORD, ensure_onnx, export_onnx_folder, onnx_status, read_onnx_record
from ssd.models.registry import recipe_for
from ssd.store import ONNX_FILE, read_meta, save_model

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")


@pytest.fixture(scope="module")
def tiny_random(tmp_path_factory) -> str:
    """A TinySSD model folder with random weights (2 classes, 256 px): no training needed."""
    meta = {"arch": "tiny", "classes": ["a", "b"], "input_size": 256, "name": "tiny-random",
            "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
    net = recipe_for("tiny").build(meta)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 256, 256)))
    path = str(tmp_path_factory.mktemp("edges") / "tiny-random")
    save_model(path, net, meta)
    return path


@pytest.fixture(scope="module")
def exported(tiny_random, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("edges-out") / "tiny-onnx")
    export_onnx_folder(tiny_random, out)
    return out


def _digests(folder) -> dict:
    return {n: hashlib.sha1(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in sorted(os.listdir(folder))}


def _edit_meta(folder: str, **changes) -> None:
    path = os.path.join(folder, "meta.json")
    meta = json.load(open(path))
    meta.update(changes)
    json.dump(meta, open(path, "w"))


def test_export_refuses_a_folder_that_holds_another_model(tiny_random, exported, tmp_path, capsys):
    from ssd.inference.export import export_model

    other = str(tmp_path / "other")
    shutil.copytree(tiny_random, other)
    before = _digests(other)
    for fmt in ("onnx", "symbol"):    # its meta.json was replaced: that model was lost
        assert main(["export", "--model", tiny_random, "--format", fmt, "--out", other]) == 2
        assert "already holds meta.json, model.params" in capsys.readouterr().err
    with pytest.raises(SSDError, match="already holds meta.json, model.onnx"):   # another model's export
        export_model(tiny_random, exported)
    assert _digests(other) == before
    os.symlink(tiny_random, tmp_path / "link")            # --out is the model itself, by another path
    before = _digests(tiny_random)
    with pytest.raises(SSDError, match="different folder"):
        export_onnx_folder(tiny_random, str(tmp_path / "link"))
    assert _digests(tiny_random) == before
    assert export_onnx_folder(tiny_random, exported)["format"] == "onnx"   # its own earlier export: replaced


def test_a_graph_that_does_not_fit_meta_json_is_refused_clearly(exported, tmp_path):
    wrong_size = str(tmp_path / "size")
    shutil.copytree(exported, wrong_size)
    _edit_meta(wrong_size, input_size=300)         # was an ONNX Runtime InvalidArgument traceback mid-run
    with pytest.raises(ModelError, match=r"shape .*meta.json says \(batch, 3, 300, 300\)"):
        load_detector(wrong_size, "onnxruntime")
    wrong_classes = str(tmp_path / "classes")
    shutil.copytree(exported, wrong_classes)
    _edit_meta(wrong_classes, classes=["only"])    # was detections of class 2 under no name at all
    with pytest.raises(ModelError, match=r"classes \(2\) are not meta.json's \(1\)"):
        load_detector(wrong_classes, "auto")
    assert load_detector(exported, "onnxruntime").engine == "onnxruntime"


def test_a_corrupt_cached_graph_is_converted_again(tiny_random, tmp_path):
    path = str(tmp_path / "m")
    shutil.copytree(tiny_random, path)
    ensure_onnx(path)
    with open(os.path.join(path, ONNX_FILE), "r+b") as fh:   # cut short, the record still current
        fh.truncate(5000)
    assert onnx_status(path, read_meta(path))[0]
    det = load_detector(path, "onnxruntime", "fp32")
    assert det.engine == "onnxruntime" and os.path.getsize(os.path.join(path, ONNX_FILE)) > 5000


def test_a_graph_record_naming_a_file_outside_its_folder_is_not_trusted(tiny_random, tmp_path):
    path = str(tmp_path / "m")
    shutil.copytree(tiny_random, path)
    record = ensure_onnx(path)
    shutil.copy(os.path.join(path, ONNX_FILE), tmp_path / "x.onnx")
    shutil.copy(os.path.join(path, ONNX_FILE), os.path.join(path, "x.onnx"))
    json.dump(dict(record, file="../x.onnx"), open(os.path.join(path, ONNX_RECORD), "w"))
    assert read_onnx_record(path) is None
    assert ensure_onnx(path)["file"] == ONNX_FILE


def test_auto_on_an_exported_onnx_folder_follows_its_int8_record(exported, synth_dir, tmp_path, capsys):
    path = str(tmp_path / "q")
    shutil.copytree(exported, path)
    assert main(["quantize", "--model", path, "--data", synth_dir, "--images", "4", "--eval-images", "0"]) == 0
    det = load_detector(path, "onnxruntime", "int8")
    assert det.precision == "int8" and "model-int8.onnx" in det.describe()
    assert load_detector(path, "auto").precision == "fp32"           # not evaluated: stays exact
    record = os.path.join(path, "onnx-int8.json")
    json.dump(dict(json.load(open(record)), recommended="int8"), open(record, "w"))
    assert load_detector(path, "auto").precision == "int8"           # as auto does for any model folder
    assert main(["quantize", "--model", path, "--data", synth_dir, "--engine", "mxnet"]) == 2
    assert "--engine onnxruntime" in capsys.readouterr().err


def test_an_onnxruntime_whose_library_does_not_load_is_not_called_missing(tiny_random, tmp_path, monkeypatch):
    shadow = tmp_path / "shadow" / "onnxruntime"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("libonnxruntime.so.1: cannot open shared object file")\n')
    for name in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path / "shadow"))
    problem = onnx_engine.onnxruntime_problem()
    assert "does not load" in problem and "libonnxruntime.so.1" in problem and "not installed" not in problem
    with pytest.raises(SSDError, match="onnxruntime engine is not available: onnxruntime does not load"):
        load_detector(tiny_random, "onnxruntime")
    det = load_detector(tiny_random, "auto", "fp32")
    assert det.engine == "mxnet" and "does not load" in det.engine_note



def test_a_graph_record_that_is_a_fifo_or_nested_300000_deep_is_not_trusted(tmp_path):
    """A shared model folder's ``onnx-int8.json`` as a FIFO hung every command that looked at the
    model (even SIGTERM did not end the blocked ``open``); ``[[[[…`` crashed it with RecursionError.
    Either is read as no record at all, like any other unreadable one."""
    from ssd.inference.onnx_export import INT8_ONNX_RECORD
    from ssd.inference.precision import INT8_RECORD, read_record

    for name, reader in ((ONNX_RECORD, read_onnx_record), (INT8_ONNX_RECORD, read_onnx_record),
                         (INT8_RECORD, read_record)):
        deep, fifo = tmp_path / f"deep-{name}", tmp_path / f"fifo-{name}"
        deep.mkdir()
        fifo.mkdir()
        (deep / name).write_text("[" * 300_000 + "]" * 300_000)
        os.mkfifo(fifo / name)
        assert reader(str(deep), name) is None if reader is read_onnx_record else reader(str(deep)) is None
        assert reader(str(fifo), name) is None if reader is read_onnx_record else reader(str(fifo)) is None


def test_export_over_a_file_is_refused_before_anything_is_loaded(tiny_random, tmp_path, capsys, monkeypatch):
    from ssd.inference import export, onnx_export

    target = tmp_path / "notes.txt"
    target.write_text("mine")

    def no_load(*a, **k):
        raise AssertionError("the model was loaded before --out was checked")
    monkeypatch.setattr(onnx_export, "load_model", no_load)
    monkeypatch.setattr(export, "load_model", no_load)
    for fmt in ("onnx", "symbol"):
        assert main(["export", "--model", tiny_random, "--format", fmt, "--out", str(target)]) == 2
        assert "is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"
