"""GPU selection never crashes: no GPU, or a GPU MXNet cannot use, falls back to the CPU with a reason."""
import mxnet as mx
import pytest

from ssd.base import device


def test_no_gpu_means_cpu_with_a_reason(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 0)
    monkeypatch.setattr(device, "gpu_names", lambda: [])
    monkeypatch.setattr(device, "mxnet_has_cuda", lambda: False)
    info = device.select_devices()
    assert info.kind == "cpu" and info.contexts == [mx.cpu()]
    assert info.reason == "no NVIDIA GPU on this machine (and this MXNet build is CPU-only)"
    assert info.reason in info.summary()


def test_the_reason_says_which_case_it_is(monkeypatch):
    """A CPU-only MXNet beside a GPU it could use, beside one no MXNet build can use, and a CUDA
    build that finds no GPU: three different sentences, each naming what to do or why not."""
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 0)
    monkeypatch.setattr(device, "mxnet_has_cuda", lambda: False)
    monkeypatch.setattr(device, "gpu_names", lambda: ["NVIDIA RTX A4000"])
    monkeypatch.setattr(device, "gpu_compute_capabilities", lambda: ["8.6"])
    usable = device.select_devices().reason
    assert usable.startswith("this MXNet build is CPU-only, and the machine has NVIDIA RTX A4000")
    assert "requirements-gpu.txt" in usable and "cannot use it" not in usable
    monkeypatch.setattr(device, "gpu_names", lambda: ["NVIDIA H100 80GB HBM3"])
    monkeypatch.setattr(device, "gpu_compute_capabilities", lambda: ["9.0"])
    hopper = device.select_devices().reason
    assert "NVIDIA H100" in hopper and "compute capability 5.0-8.6 only and this GPU has 9.0" in hopper
    monkeypatch.setattr(device, "mxnet_has_cuda", lambda: True)
    monkeypatch.setattr(device, "gpu_names", lambda: [])
    assert device.select_devices().reason == "this MXNet has CUDA but sees no GPU: no NVIDIA GPU or driver on this machine"


def test_this_machine_is_described_truthfully():
    """Here: the CPU build of MXNet (requirements.txt), so the reason names it."""
    if device.mxnet_has_cuda() or device.gpu_names():
        pytest.skip("a GPU machine or a CUDA build of MXNet: the cases above cover it")
    assert device.select_devices().reason == "no NVIDIA GPU on this machine (and this MXNet build is CPU-only)"


def test_a_gpu_that_cannot_run_kernels_falls_back(monkeypatch):
    # What a Hopper card looks like to mxnet-cu112: counted, but the first convolution fails.
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 1)
    monkeypatch.setattr(device, "gpu_names", lambda: ["NVIDIA H100 80GB HBM3"])

    def probe(i):
        raise mx.base.MXNetError("Traceback (most recent call last):\n  File x\nCheck failed: e == cudaSuccess: "
                                 "no kernel image is available for execution on the device")

    monkeypatch.setattr(device, "_probe_gpu", probe)
    info = device.select_devices()
    assert info.kind == "cpu"
    assert "NVIDIA H100" in info.reason and "no kernel image" in info.reason and "5.0-8.6" in info.reason
    assert "Traceback" not in info.reason


def test_usable_gpus_are_all_selected(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 2)
    monkeypatch.setattr(device, "gpu_names", lambda: ["NVIDIA A100", "NVIDIA A100"])
    monkeypatch.setattr(device, "_probe_gpu", lambda i: None)
    info = device.select_devices()
    assert info.kind == "gpu" and info.contexts == [mx.gpu(0), mx.gpu(1)]
    assert "gpu(0) NVIDIA A100" in info.description
    assert device.select_devices(prefer_gpu=False).kind == "cpu"
