"""Pick where to compute: every usable GPU, else the CPU, always with a reason a person can read.

"Usable" is tested, not assumed: the mxnet-cu112 build has kernels for compute capability
5.0-8.6 only, so on a Hopper card (H100/H200) ``num_gpus()`` is 1 but the first convolution
fails. We run one tiny convolution per GPU and fall back to the CPU with the error's gist.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List

import mxnet as mx

from ssd.base.errors import error_gist
# re-exported: the same facts are read without MXNet there
from ssd.base.hardware import cpu_flags, gpu_compute_capabilities, gpu_names  # noqa: F401


@dataclass
class DeviceInfo:
    contexts: List[mx.Context]
    kind: str                      # "gpu" or "cpu"
    description: str               # e.g. "2 GPU(s): gpu(0), gpu(1)" or "CPU (2 cores)"
    reason: str = ""               # why not GPU, when on the CPU
    gpu_errors: List[str] = field(default_factory=list)

    def summary(self) -> str:
        return self.description + (f" — {self.reason}" if self.reason else "")


def _probe_gpu(i: int) -> None:
    ctx = mx.gpu(i)
    x = mx.nd.ones((1, 3, 8, 8), ctx=ctx)
    w = mx.nd.ones((4, 3, 3, 3), ctx=ctx)
    y = mx.nd.Convolution(x, w, no_bias=True, kernel=(3, 3), num_filter=4)
    y.wait_to_read()
    float(y.sum().asscalar())


def mxnet_has_cuda() -> bool:
    """Whether this MXNet was built with CUDA (``mxnet-cu112``) rather than for the CPU only (``mxnet``)."""
    try:
        return bool(mx.runtime.Features().is_enabled("CUDA"))
    except Exception:  # noqa: BLE001 - a build without the feature list: say CPU-only, the common case
        return False


MXNET_CAPABILITY = (5.0, 8.6)   # compute capabilities mxnet-cu112 has kernels for


def _capability_note(caps: List[str]) -> str:
    """Why MXNet could not use these GPUs even with its CUDA build, or "" when it could."""
    beyond = [c for c in caps if not MXNET_CAPABILITY[0] <= float(c) <= MXNET_CAPABILITY[1]]
    if not beyond:
        return ""
    return (f"; MXNet's CUDA build runs on compute capability {MXNET_CAPABILITY[0]}-{MXNET_CAPABILITY[1]} "
            f"only and this GPU has {', '.join(sorted(set(beyond)))}, so it cannot use it either")


def no_gpu_reason() -> str:
    """Why MXNet sees no GPU, naming which case it is: a CPU-only MXNet build (with or without an
    NVIDIA GPU in the machine), or a CUDA build that finds no NVIDIA GPU or driver."""
    names, cuda = gpu_names(), mxnet_has_cuda()
    found = ", ".join(names)
    if cuda:
        return ("this MXNet has CUDA but sees no GPU: "
                + (f"{found} is listed by the driver, yet not visible to this process (CUDA_VISIBLE_DEVICES?)"
                   if names else "no NVIDIA GPU or driver on this machine"))
    if names:
        return (f"this MXNet build is CPU-only, and the machine has {found}: install requirements-gpu.txt "
                f"(mxnet-cu112) to use it" + _capability_note(gpu_compute_capabilities()))
    return "no NVIDIA GPU on this machine (and this MXNet build is CPU-only)"


BF16_FLAGS = ("avx512_bf16", "amx_bf16")   # CPU flags of native bfloat16 arithmetic


def cpu_bfloat16() -> str:
    """The flag by which this CPU computes bfloat16 natively ("avx512_bf16"), or "" when it cannot.

    Why a flag and not a try: oneDNN runs bfloat16 on any AVX-512 CPU, but without these
    instructions it emulates them and is slower than fp32.
    """
    flags = set(cpu_flags())
    return next((f for f in BF16_FLAGS if f in flags), "")


def select_devices(prefer_gpu: bool = True) -> DeviceInfo:
    """Every GPU that can really run a convolution, else the CPU (never raises)."""
    cpu = DeviceInfo([mx.cpu()], "cpu", f"CPU ({os.cpu_count() or 1} cores)")
    if not prefer_gpu or os.environ.get("SSD_FORCE_CPU") == "1":
        cpu.reason = "the CPU was requested"
        return cpu
    try:
        n = mx.context.num_gpus()
    except Exception as err:  # CPU builds may raise instead of returning 0
        n = 0
        cpu.gpu_errors.append(error_gist(err))
    if n == 0:
        cpu.reason = no_gpu_reason()
        return cpu
    usable, errors = [], []
    for i in range(n):
        try:
            _probe_gpu(i)
            usable.append(mx.gpu(i))
        except Exception as err:  # MXNetError: no kernel image, missing CUDA libs, OOM...
            errors.append(f"gpu({i}): {error_gist(err, 200)}")
    if not usable:
        found = ", ".join(gpu_names()) or f"{n} GPU(s)"
        cpu.reason = (f"{found} found but none can run MXNet kernels (mxnet-cu112 supports compute "
                      f"capability 5.0-8.6 only): " + "; ".join(errors))
        cpu.gpu_errors = errors
        return cpu
    models = gpu_names()
    names = ", ".join(f"{c} {models[c.device_id]}" if c.device_id < len(models) else str(c) for c in usable)
    return DeviceInfo(usable, "gpu", f"{len(usable)} GPU(s): {names}", gpu_errors=errors)
