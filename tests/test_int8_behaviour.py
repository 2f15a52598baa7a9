"""The activations' quantization (scales and zero points from calibration) cannot be derived from the
weights, so the full INT8 check also runs both graphs on a few fixed images: an INT8 graph whose
weights are the model's but whose activation ranges are absurd computes something else, and is refused."""
from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ssd.inference.int8_match import fold_batchnorm, mismatch, onnx_int8_mismatch
from ssd.inference.onnx_export import INT8_ONNX_FILE, convert
from ssd.store import DEFAULT_MODELS_DIR, load_model

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")
SHIPPED_DIR = os.path.join(DEFAULT_MODELS_DIR, "tiny-pikachu")


@pytest.fixture(autouse=True)
def own_verdicts(monkeypatch, tmp_path):
    monkeypatch.setenv("SSD_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def folded_fp32(tmp_path_factory):
    """The shipped weights' fp32 graph as quantize quantizes it (the structural check's reference)."""
    path = str(tmp_path_factory.mktemp("fp32"))
    net, meta = load_model(SHIPPED_DIR)
    convert(net, meta, os.path.join(path, "fp32.onnx"))
    fold_batchnorm(os.path.join(path, "fp32.onnx"), os.path.join(path, "folded.onnx"))
    return onnx.load(os.path.join(path, "folded.onnx"))


def _tampered(tmp_path, pos: int, change) -> str:
    """A copy of the shipped model whose input QuantizeLinear reads its scale (pos 1) or zero point
    (pos 2) from a new constant, ``change``d; the convolutions after it keep the original one."""
    dest = str(tmp_path / "tampered")
    shutil.copytree(SHIPPED_DIR, dest)
    for name in os.listdir(dest):
        os.chmod(os.path.join(dest, name), stat.S_IRUSR | stat.S_IWUSR)
    graph = onnx.load(os.path.join(dest, INT8_ONNX_FILE))
    node = next(n for n in graph.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "data")
    old = next(t for t in graph.graph.initializer if t.name == node.input[pos])
    graph.graph.initializer.append(numpy_helper.from_array(change(numpy_helper.to_array(old)), old.name + "_x"))
    node.input[pos] = old.name + "_x"
    onnx.save(graph, os.path.join(dest, INT8_ONNX_FILE))
    return dest


@pytest.mark.parametrize("pos, change", [
    (1, lambda s: (s * 1000).astype(s.dtype)),                          # activation scale x1000
    (2, lambda z: (z.astype(np.int32) + 50).astype(z.dtype)),          # zero point shifted by 50
], ids=["scale-x1000", "zero-point+50"])
def test_absurd_activation_quantization_is_refused_with_why(tmp_path, folded_fp32, pos, change):
    path = _tampered(tmp_path, pos, change)
    assert mismatch(folded_fp32, onnx.load(os.path.join(path, INT8_ONNX_FILE))) is None   # weights and wiring hold
    why = onnx_int8_mismatch(path)
    assert why is not None and "disagree with the fp32 graph's" in why and "on 4 fixed images" in why
