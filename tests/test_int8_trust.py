"""A folder's INT8 graphs are data from outside: ONNX Runtime's must be proven the quantization of the
folder's own weights before it runs (or before its record's ``recommended: int8`` counts), MXNet's must
have been made here or be the shipped model's, and the shipped model stays trusted by the library's
manifest, not by its own files."""
from __future__ import annotations

import json
import os
import shutil
import stat

import mxnet as mx
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ssd.base.errors import ModelError
from ssd.cli.main import main
from ssd.inference import int8_match, int8_trust
from ssd.inference.detector import Detector
from ssd.inference.engines import load_detector
from ssd.inference.int8_match import fold_batchnorm, mismatch, onnx_int8_mismatch
from ssd.inference.onnx_export import INT8_ONNX_FILE, convert, ensure_onnx
from ssd.inference.onnx_quantize import build_onnx_int8
from ssd.inference.precision import INT8_RECORD, default_precision
from ssd.models.registry import recipe_for
from ssd.models.shipped_int8 import SHIPPED
from ssd.store import DEFAULT_MODELS_DIR, load_model, read_meta, save_model

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")
SHIPPED_DIR = os.path.join(DEFAULT_MODELS_DIR, "tiny-pikachu")


@pytest.fixture(autouse=True)
def own_verdicts(monkeypatch, tmp_path):
    monkeypatch.setenv("SSD_CACHE_DIR", str(tmp_path / "cache"))   # each test its own verdicts


def _copy_shipped(dest) -> str:
    shutil.copytree(SHIPPED_DIR, str(dest))
    for name in os.listdir(dest):
        os.chmod(os.path.join(dest, name), stat.S_IRUSR | stat.S_IWUSR)
    return str(dest)


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """Another TinySSD of the shipped model's classes and size (other weights), quantized by our code."""
    path = str(tmp_path_factory.mktemp("other") / "other")
    meta = {k: v for k, v in read_meta(SHIPPED_DIR).items() if k in ("arch", "classes", "input_size", "normalize")}
    mx.random.seed(7)
    net = recipe_for(meta["arch"]).build(meta)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, meta["input_size"], meta["input_size"])))
    save_model(path, net, dict(meta, name="other"))
    ensure_onnx(path)
    calib = np.random.RandomState(0).randn(4, 3, meta["input_size"], meta["input_size"]).astype(np.float32)
    build_onnx_int8(os.path.join(path, "model.onnx"), os.path.join(path, INT8_ONNX_FILE), calib, "data")
    return path


@pytest.fixture
def swapped(other, tmp_path) -> str:
    """The shipped model carrying another network's INT8 graph under its record (``recommended: int8``)."""
    path = _copy_shipped(tmp_path / "swapped")
    shutil.copyfile(os.path.join(other, INT8_ONNX_FILE), os.path.join(path, INT8_ONNX_FILE))
    return path


def test_auto_does_not_run_another_networks_int8_graph_and_says_why(swapped):
    det = load_detector(swapped, "auto")
    assert (det.engine, det.precision) == ("onnxruntime", "fp32")
    assert "model-int8.onnx is not used" in det.engine_note and "python -m ssd quantize" in det.engine_note


def test_asking_for_int8_refuses_a_graph_that_is_not_the_weights(swapped, tmp_path, capsys):
    with pytest.raises(ModelError, match="not used.*python -m ssd quantize --model"):
        load_detector(swapped, "onnxruntime", "int8")
    img = str(tmp_path / "x.png")
    from PIL import Image

    Image.new("RGB", (64, 64)).save(img)
    assert main(["detect", "--model", swapped, "--engine", "onnxruntime", "--precision", "int8", img]) == 2
    assert "model-int8.onnx is not used" in capsys.readouterr().err


def test_the_shipped_int8_graph_is_proven_and_the_manifest_is_the_shipped_files(tmp_path):
    copy = _copy_shipped(tmp_path / "shipped")
    assert onnx_int8_mismatch(copy) is None          # the full check, no manifest
    for kind, files in SHIPPED["tiny-pikachu"].items():
        assert int8_trust.digests(SHIPPED_DIR, kind) == files
    assert int8_trust.int8_verdict(copy, "onnxruntime") == (True, "the shipped model's own files")


def test_weights_off_by_more_than_half_a_step_or_a_step_too_coarse_are_refused(tmp_path):
    net, meta = load_model(SHIPPED_DIR)
    fresh, folded = str(tmp_path / "fp32.onnx"), str(tmp_path / "folded.onnx")
    convert(net, meta, fresh)
    fold_batchnorm(fresh, folded)
    fp32 = onnx.load(folded)

    def edited(change) -> str:
        q = onnx.load(os.path.join(SHIPPED_DIR, INT8_ONNX_FILE))
        for t in q.graph.initializer:
            value = change(t.name, numpy_helper.to_array(t).copy())
            if value is not None:
                t.CopyFrom(numpy_helper.from_array(value, t.name))
        return mismatch(fp32, q)

    assert edited(lambda n, a: None) is None
    def bump(name, a):
        if name.endswith("conv3_weight_quantized"):
            a.flat[5] += 2          # two steps off: the graph's weight is no longer the model's
            return a
        return None

    bumped = edited(bump)
    assert "further than half a step" in bumped
    coarse = edited(lambda n, a: a * 1000 if n.endswith("conv3_weight_scale") else
                    a * 0 if n.endswith("conv3_weight_quantized") else None)
    assert "coarser than 7 bits" in coarse
    no_relu = edited(lambda n, a: np.array(5, np.uint8) if n == "tinyssd0_batchnorm3_fwd_zero_point" else None)
    assert "Relu" in no_relu
    anchors = edited(lambda n, a: a + np.float32(0.01) if n == "anchors" else None)
    assert "anchors" in anchors


def test_a_proven_verdict_is_kept_outside_the_folder_and_not_recomputed(other, monkeypatch):
    before = sorted(os.listdir(other))
    verdict = int8_trust.int8_verdict(other, "onnxruntime", onnx_int8_mismatch)
    assert verdict == (True, "proven the quantization of the weights")
    assert sorted(os.listdir(other)) == before
    assert any(n.startswith("int8-") for n in os.listdir(os.path.join(os.environ["SSD_CACHE_DIR"], "onnx-verified")))

    def refuse(model_dir):
        raise AssertionError("a remembered verdict must not convert again")

    monkeypatch.setattr(int8_match, "onnx_int8_mismatch", refuse)
    assert int8_trust.int8_verdict(other, "onnxruntime", int8_match.onnx_int8_mismatch)[0]


def test_mxnet_int8_from_elsewhere_is_neither_the_default_nor_run(tmp_path):
    shipped = _copy_shipped(tmp_path / "shipped")
    assert default_precision(shipped) == "int8"             # the shipped files: the manifest vouches
    foreign = _copy_shipped(tmp_path / "foreign")
    record = os.path.join(foreign, INT8_RECORD)
    with open(record) as fh:
        rec = json.load(fh)
    with open(record, "w") as fh:
        json.dump(rec, fh)           # the same claims, but not the files the library knows
    assert default_precision(foreign) == "fp32"
    with pytest.raises(ModelError, match="not made on this machine.*python -m ssd quantize"):
        Detector.load(foreign, precision="int8")
    det = load_detector(foreign, "mxnet")
    assert det.precision == "fp32"


def test_an_ssdlite_quantized_by_our_quantizer_is_proven(tmp_path):
    """SSDlite's ReLU6 (a Clip the quantizer folds into the range before it) and its squeeze-excitation
    pooling (ONNX Runtime's QLinearGlobalAveragePool) are read as what they compute."""
    arch = "ssdlite320_mobilenet_v3_large"
    recipe = recipe_for(arch)
    meta = {"arch": arch, "classes": ["a", "b"], "input_size": recipe.native_size,
            "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
    mx.random.seed(3)
    net = recipe.build(meta)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, meta["input_size"], meta["input_size"])))
    path = str(tmp_path / "lite")
    save_model(path, net, dict(meta, name="lite"))
    ensure_onnx(path)
    calib = np.random.RandomState(0).randn(2, 3, meta["input_size"], meta["input_size"]).astype(np.float32)
    build_onnx_int8(os.path.join(path, "model.onnx"), os.path.join(path, INT8_ONNX_FILE), calib, "data")
    assert onnx_int8_mismatch(path) is None
    folded = str(tmp_path / "folded.onnx")
    fold_batchnorm(os.path.join(path, "model.onnx"), folded)
    fp32, int8 = onnx.load(folded), onnx.load(os.path.join(path, INT8_ONNX_FILE))
    clip_input = next(n.input[0] for n in fp32.graph.node if n.op_type == "Clip")
    zp = next(t for t in int8.graph.initializer if t.name == clip_input + "_zero_point")
    zp.CopyFrom(numpy_helper.from_array(np.array(9, np.uint8), zp.name))     # the clamp at 0 is gone
    assert "Clip" in mismatch(fp32, int8)
