"""What this machine is: its CPU kind and instruction set, its NVIDIA GPUs' names. No MXNet here.

Why a module of its own: every output names the device that produced it, and a process that runs
ONNX Runtime must be able to say so without paying MXNet's import (``ssd.base.device`` probes
GPUs with MXNet and imports it).
"""
from __future__ import annotations

import os
import re
from typing import List


def _nvidia_smi(field: str) -> List[str]:
    """One ``nvidia-smi --query-gpu`` field per GPU; empty without the tool, a driver or an answer."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [l.strip() for l in out.stdout.splitlines() if l.strip()] if out.returncode == 0 else []


def gpu_names() -> List[str]:
    """Marketing names of the NVIDIA GPUs ("NVIDIA A100-SXM4-40GB"), best effort, never raises.

    MXNet 1.9 exposes no device name, so ask the driver: nvidia-smi, else /proc.
    """
    import glob

    names = _nvidia_smi("name")
    if names:
        return names
    for info in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
        try:
            with open(info, encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("Model:"):
                        names.append(line.split(":", 1)[1].strip())
        except OSError:
            continue
    return names


def gpu_compute_capabilities() -> List[str]:
    """Compute capability of each NVIDIA GPU ("8.6", "9.0"), as the driver reports it; may be empty."""
    return [c for c in _nvidia_smi("compute_cap") if re.fullmatch(r"\d+\.\d+", c)]


def cpu_flags(path: str = "/proc/cpuinfo") -> List[str]:
    """The instruction-set flags of this CPU (Linux ``/proc/cpuinfo``); empty where unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


# (family, model range) → AMD's name for the core (the kinds seen on the development machines and
# their neighbours; anything else is described by its flags alone)
_AMD_CORES = ((25, range(0x00, 0x10), "Zen 3"), (25, range(0x10, 0x20), "Zen 4"), (25, range(0x20, 0x60), "Zen 3"),
              (25, range(0x60, 0x80), "Zen 4"), (25, range(0x90, 0xB0), "Zen 4"), (26, range(0x00, 0x50), "Zen 5"))


def _cpuinfo_field(name: str, path: str = "/proc/cpuinfo") -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_kind(path: str = "/proc/cpuinfo") -> str:
    """"AMD EPYC (Zen 5: AVX-512 with VNNI and BF16), 2 cores" — the CPU a figure was measured on."""
    name = _cpuinfo_field("model name", path) or "unknown CPU"
    core = ""
    if _cpuinfo_field("vendor_id", path) == "AuthenticAMD":
        try:
            family, model = int(_cpuinfo_field("cpu family", path)), int(_cpuinfo_field("model", path))
        except ValueError:
            family, model = -1, -1
        core = next((c for f, models, c in _AMD_CORES if f == family and model in models), "")
    elif _cpuinfo_field("vendor_id", path) == "GenuineIntel":
        # a virtual machine often names no model ("Intel(R) Xeon(R) Processor"): family and model say which
        core = "family {} model {}".format(_cpuinfo_field("cpu family", path) or "?", _cpuinfo_field("model", path) or "?")
    flags = set(cpu_flags(path))
    if "avx512f" in flags:
        # AMX (Intel Sapphire Rapids and later) has its own INT8 and bfloat16 matrix units: figures differ with it
        extra = [w for f, w in (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16"), ("amx_int8", "AMX")) if f in flags]
        isa = "AVX-512" + (" with " + ", ".join(extra[:-1]) + " and " + extra[-1] if len(extra) > 1
                           else " with " + extra[0] if extra else "")
    else:
        isa = "AVX2 only" if "avx2" in flags else "no AVX2"
    kind = f"{core}: {isa}" if core else isa
    return f"{name} ({kind}), {os.cpu_count() or 1} cores"
