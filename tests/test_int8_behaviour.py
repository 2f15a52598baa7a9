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

from ssd.inference.int8_behaviour import LIMITS, errors, probe_inputs
from ssd.inference.int8_match import fold_batchnorm, mismatch, onnx_int8_mismatch
from ssd.inference.onnx_export import INT8_ONNX_FILE, convert
from ssd.store import DEFAULT_MODELS_DIR, load_model, read_meta

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


def _tampered(tmp_path, pos: int, change, made: str = "data_quantized") -> str:
    """A copy of the shipped model whose node making ``made`` (by default the input's QuantizeLinear)
    reads the scale or zero point at input ``pos`` from a new constant, ``change``d; the nodes after it
    keep the original one."""
    dest = str(tmp_path / "tampered")
    shutil.copytree(SHIPPED_DIR, dest)
    for name in os.listdir(dest):
        os.chmod(os.path.join(dest, name), stat.S_IRUSR | stat.S_IWUSR)
    graph = onnx.load(os.path.join(dest, INT8_ONNX_FILE))
    node = next(n for n in graph.graph.node if n.output[0] == made)
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


# The coarsest feature map (1x1: 4 anchors, 8 of the 10,888 class scores and 16 of the 21,776 box
# offsets per image): its activations' quantization, wrong, stays under the whole outputs' percentiles.
COARSEST = [
    ("tinyssd0_pool6_fwd_quantized", 1, lambda s: (s * 2).astype(s.dtype)),    # QuantizeLinear feeding both heads
    ("tinyssd0_pool6_fwd_quantized", 2, lambda z: (z.astype(np.int32) + 20).astype(z.dtype)),
    ("tinyssd0_conv20_fwd_quantized", 6, lambda s: (s / 2).astype(s.dtype)),  # QLinearConv: class head's output
    ("tinyssd0_conv21_fwd_quantized", 7, lambda z: (z.astype(np.int32) + 20).astype(z.dtype)),  # box head's
]


@pytest.mark.parametrize("made, pos, change", COARSEST,
                         ids=["feed-scale-x2", "feed-zero-point+20", "class-head-scale/2", "box-head-zero-point+20"])
def test_a_wrong_activation_range_at_the_coarsest_feature_map_is_refused(tmp_path, folded_fp32, made, pos, change):
    path = _tampered(tmp_path, pos, change, made)
    int8 = onnx.load(os.path.join(path, INT8_ONNX_FILE))
    assert mismatch(folded_fp32, int8) is None
    found = errors(folded_fp32, int8, probe_inputs(read_meta(path)))
    whole = [found[name] for name in ("cls_preds", "box_preds")]
    assert all(f[p] <= limit for f in whole for p, limit in LIMITS.items())     # the outputs as a whole agree
    why = onnx_int8_mismatch(path)
    assert why is not None and "head 5/5" in why and "disagree with the fp32 graph's" in why


def test_honest_graphs_agree_head_by_head_with_margin(folded_fp32, tmp_path):
    """The shipped graph, and one quantized here on other images (synthetic training images), stay
    well under the limits at every prediction head, the coarsest included."""
    from ssd.data.preprocess import normalize_batch
    from ssd.data.synthetic import render_example
    from ssd.inference.onnx_quantize import build_onnx_int8

    fresh = str(tmp_path / "fresh.onnx")
    folded = str(tmp_path / "folded.onnx")
    onnx.save(folded_fp32, folded)
    meta = read_meta(SHIPPED_DIR)
    calib = normalize_batch(np.stack([render_example(1, i, "train", 256)[0] for i in range(8)]),
                            meta["normalize"]["mean"], meta["normalize"]["std"]).astype(np.float32)
    build_onnx_int8(folded, fresh, calib, "data")
    for graph in (onnx.load(os.path.join(SHIPPED_DIR, INT8_ONNX_FILE)), onnx.load(fresh)):
        found = errors(folded_fp32, graph, probe_inputs(meta))
        assert {"cls_preds head 5/5", "box_preds head 5/5"} <= set(found)
        assert all(f[p] <= limit / 2.5 for f in found.values() for p, limit in LIMITS.items()), found
