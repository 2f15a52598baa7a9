"""ONNX Runtime's device choice: the CUDA provider when it starts on a GPU, else the CPU with the reason.

No GPU is needed: ONNX Runtime is made to offer its CUDA provider (as ``onnxruntime-gpu`` does) and
the session to report where it started, while the graph really runs on the CPU. What is checked is
our side: what is asked for, what ``auto`` tries first, and what every output then says.
"""
from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest

from ssd.inference import engines
from ssd.inference.engines import load_detector
from ssd.inference.onnx_engine import CPU, CUDA

CARD = "NVIDIA H100 80GB HBM3"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir) -> str:
    path = str(tmp_path_factory.mktemp("providers") / "tiny")
    shutil.copytree(tiny_model_dir, path)
    return path


@pytest.fixture
def gpu_build(monkeypatch):
    """ONNX Runtime that offers CUDA; ``started`` says whether sessions start on it. Records what was asked."""
    real = ort.InferenceSession
    state = {"started": True, "asked": []}

    class Session:
        def __init__(self, path, options=None, providers=None):
            asked = list(providers or [])
            state["asked"].append(asked)
            wants_cuda = any((p[0] if isinstance(p, tuple) else p) == CUDA for p in asked)
            self._on = [CUDA, CPU] if state["started"] and wants_cuda else [CPU]
            self._real = real(path, options, providers=[CPU])

        def get_providers(self):
            return self._on

        def __getattr__(self, name):
            return getattr(self._real, name)

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", Session)
    monkeypatch.setattr("ssd.base.hardware.gpu_names", lambda: [CARD])
    monkeypatch.delenv("SSD_FORCE_CPU", raising=False)
    return state


def test_auto_runs_fp32_on_the_gpu_and_says_so(tiny, gpu_build):
    order, _ = engines.candidates(tiny, None)
    assert order[0] == ("onnxruntime", "fp32-gpu")          # INT8 graphs are CPU graphs
    det = load_detector(tiny, "auto")
    assert (det.engine, det.precision) == ("onnxruntime", "fp32")
    assert gpu_build["asked"][-1] == [(CUDA, {"device_id": 0}), CPU]
    assert det.device == f"GPU 0 ({CARD}, CUDA provider)" and det.device_note == ""
    assert "on GPU 0" in det.describe() and det.engine_info()["device"].startswith("GPU 0")
    boxes = det.predict_arrays(np.zeros((2, det.input_size, det.input_size, 3), np.uint8))
    assert len(boxes) == 2                                   # the session wrapper really ran the graph


def test_a_cuda_provider_that_does_not_start_leaves_the_cpu_with_the_reason(tiny, gpu_build):
    gpu_build["started"] = False
    det = load_detector(tiny, "onnxruntime", "fp32")
    assert det.device.startswith("CPU (") and "CUDA provider did not start" in det.device_note
    assert "cuDNN 9" in det.device_note                     # what to install is named


def test_forcing_the_cpu_asks_for_the_cpu_alone(tiny, gpu_build, monkeypatch):
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    assert engines.candidates(tiny, None)[0][0] != ("onnxruntime", "fp32-gpu")
    det = load_detector(tiny, "onnxruntime", "fp32")
    assert gpu_build["asked"][-1] == [CPU]
    assert det.device.startswith("CPU (") and det.device_note == "the CPU was requested"


def test_auto_with_a_gpu_build_that_does_not_start_takes_the_cpus_fastest(tmp_path, gpu_build):
    """onnxruntime-gpu on a machine without a working CUDA: the GPU's place in the order is void, so
    auto goes on to the CPU's fastest (the shipped model's INT8 graph), not to fp32 on the CPU."""
    from conftest import SHIPPED_MODEL

    model = str(tmp_path / "shipped")
    shutil.copytree(SHIPPED_MODEL, model)
    gpu_build["started"] = False
    det = load_detector(model, "auto")
    assert (det.engine, det.precision, det.device[:4]) == ("onnxruntime", "int8", "CPU ")
    assert gpu_build["asked"][0][0] == (CUDA, {"device_id": 0})      # the GPU was tried first
    assert gpu_build["asked"][-1] == [CPU]                            # INT8 asked of the CPU alone
    assert "CUDA provider did not start" in det.device_note
    assert "passed over onnxruntime fp32 on the GPU" in det.engine_note
    gpu_build["started"] = True                                       # a card that works keeps fp32 on it
    assert load_detector(model, "auto").device.startswith("GPU 0")
