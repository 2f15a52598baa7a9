"""GPU selection never crashes: no GPU, or a GPU MXNet cannot use, falls back to the CPU with a reason."""
import mxnet as mx

from ssd.base import device


def test_no_gpu_means_cpu_with_a_reason():
    info = device.select_devices()
    assert info.kind == "cpu" and info.contexts == [mx.cpu()]
    assert "no GPU visible" in info.reason and info.reason in info.summary()


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
