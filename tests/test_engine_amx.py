"""Inference processes let MXNet's oneDNN use AMX where the CPU has it and Linux grants it.

Why: the oneDNN inside MXNet 1.9.1 stops at AVX-512 BF16 unless ``ONEDNN_MAX_CPU_ISA`` allows AMX,
and it never asks Linux for AMX's tile state, so allowed alone its AMX code dies of SIGILL.
``ssd.base.engine.configure`` asks (``arch_prctl``) and raises the cap only when granted. On the
Intel Xeon with AMX, TinySSD's INT8 forward took 0.65× the time with identical scores
(scripts/bench_amx.py, docs/PERFORMANCE.md)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, SHIPPED_MODEL

ISA = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from ssd.base.engine import configure
rep = configure(sys.argv[2])
print(os.environ.get("ONEDNN_MAX_CPU_ISA", "-"), os.environ.get("DNNL_MAX_CPU_ISA", "-"), rep["onednn_isa"])
"""


def _has_amx() -> bool:
    from ssd.base.hardware import cpu_flags

    return "amx_int8" in cpu_flags()


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MXNET_ENGINE_TYPE", "OMP_WAIT_POLICY")}
    env.update(extra)
    return env


def _isa_line(kind: str, **extra: str) -> str:
    res = subprocess.run([sys.executable, "-c", ISA, REPO_ROOT, kind], capture_output=True, text=True, timeout=120,
                         env=_env(**extra))
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip()


def test_inference_allows_amx_only_where_the_cpu_has_it():
    line = _isa_line("inference")
    if _has_amx():
        assert line == "AVX512_CORE_AMX AVX512_CORE_AMX AVX512_CORE_AMX (granted by Linux)"
    else:
        assert line.startswith("- - ")


def test_training_and_a_users_choice_are_left_alone():
    assert _isa_line("training").startswith("- - ")
    assert _isa_line("inference", ONEDNN_MAX_CPU_ISA="AVX512_CORE_VNNI").startswith("AVX512_CORE_VNNI - ")
    assert _isa_line("inference", DNNL_MAX_CPU_ISA="AVX2").startswith("- AVX2 ")


def test_no_cap_is_raised_when_linux_refuses(monkeypatch):
    from ssd.base import engine

    monkeypatch.setattr(engine, "_amx_granted", lambda: False)
    for var in engine.ONEDNN_ISA_VARS:
        monkeypatch.delenv(var, raising=False)
    assert engine._allow_amx(engine.ONEDNN_ISA_FOR_KIND["inference"]) == ""
    assert all(var not in os.environ for var in engine.ONEDNN_ISA_VARS)


FORWARD = r"""
import os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from ssd.base.engine import configure
if sys.argv[3] == "configure":
    configure("inference")
import mxnet as mx
from ssd.inference.engines import load_detector
det = load_detector(sys.argv[2], "mxnet", "int8")
x = np.random.default_rng(0).integers(0, 255, (8, 256, 256, 3), dtype=np.uint8)
np.save(sys.argv[4], det._forward_raw(x)[1])
"""


@pytest.mark.skipif(not _has_amx(), reason="this CPU has no AMX")
def test_int8_forward_with_amx_runs_and_matches_avx512(tmp_path):
    """The forward must not die of SIGILL (tile state granted) and gives the VNNI kernels' scores."""
    import numpy as np

    model = tmp_path / "tiny-pikachu"
    shutil.copytree(SHIPPED_MODEL, model)
    outs = {}
    capped = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI", "DNNL_MAX_CPU_ISA": "AVX512_CORE_VNNI",
              "MXNET_ENGINE_TYPE": "NaiveEngine"}
    for how, extra in (("configure", {}), ("capped", capped)):
        outs[how] = tmp_path / f"{how}.npy"
        res = subprocess.run([sys.executable, "-c", FORWARD, REPO_ROOT, str(model), how, str(outs[how])],
                             capture_output=True, text=True, timeout=300,
                             env=_env(SSD_CACHE_DIR=str(tmp_path / "cache"), DNNL_VERBOSE="1", **extra))
        assert res.returncode == 0, res.stderr[-2000:]
        if how == "configure":
            assert "avx512_core_amx_int8" in res.stdout       # oneDNN ran AMX kernels
    a, b = np.load(outs["configure"]), np.load(outs["capped"])
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-5


APP_RUN = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from streamlit.testing.v1 import AppTest
AppTest.from_file(os.path.join(sys.argv[1], "app.py"), default_timeout=180).run()
AppTest.from_file(os.path.join(sys.argv[1], "app.py"), default_timeout=180).run()   # a rerun: MXNet loaded
from ssd.base.engine import report
rep = report()
print(os.environ.get("ONEDNN_MAX_CPU_ISA", "-"), "|", rep["kind"], "|", rep["note"])
"""


def test_the_app_process_configures_its_engine_once_and_allows_amx(tmp_path):
    """The app's Detect page runs MXNet in the server's process: it gets AMX like ``detect`` does, and a
    rerun (MXNet long loaded) leaves the first run's settings and note as they were."""
    res = subprocess.run([sys.executable, "-c", APP_RUN, REPO_ROOT], capture_output=True, text=True, timeout=300,
                         env=_env(SSD_MODELS_DIR=str(tmp_path / "models"), SSD_DATA_DIR=str(tmp_path / "data"),
                                  SSD_CACHE_DIR=str(tmp_path / "cache")), cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    isa, kind, note = (part.strip() for part in res.stdout.strip().splitlines()[-1].split("|"))
    assert kind == "app" and "already imported" not in note
    assert isa == ("AVX512_CORE_AMX" if _has_amx() else "-")
