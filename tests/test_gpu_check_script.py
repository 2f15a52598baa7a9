"""``scripts/gpu_check.sh`` before it reaches a card: its arguments, and the pieces of a wheel it joins.

The script is run where a GPU machine is lent once, so what can go wrong before the card is checked
here: a bad argument must stop it at once, and a wheel copied in pieces must be joined exactly and
refused when it does not match its sha256 (no network is used: ``--wheels`` installs with
``--no-index``).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "scripts", "gpu_check.sh")


def _run(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, SSD_GPU_SITE=str(tmp_path / "site"))
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=300)


def test_a_model_folder_without_its_onnx_graph_stops_it(tmp_path):
    res = _run("--model", str(tmp_path), "--out", str(tmp_path / "out"), tmp_path=tmp_path)
    assert res.returncode == 2
    assert "must hold model.onnx" in res.stderr and "export" in res.stderr


def test_an_unknown_argument_stops_it(tmp_path):
    res = _run("--modle", "x", tmp_path=tmp_path)
    assert res.returncode == 2 and "unknown argument '--modle'" in res.stderr


def _pieces(folder, name: str, payload: bytes, digest: str) -> None:
    folder.mkdir()
    half = len(payload) // 2
    (folder / f"{name}.part-aa").write_bytes(payload[:half])
    (folder / f"{name}.part-ab").write_bytes(payload[half:])
    (folder / f"{name}.sha256").write_text(f"{digest}  {name}\n")


@pytest.fixture
def model(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not read before the install")
    return str(folder)


def test_pieces_are_joined_exactly_and_checked(tmp_path, model):
    payload = os.urandom(200_000)
    name = "onnxruntime_gpu-0.0.1-py3-none-any.whl"
    _pieces(tmp_path / "wheels", name, payload, hashlib.sha256(payload).hexdigest())
    res = _run("--model", model, "--wheels", str(tmp_path / "wheels"), "--out", str(tmp_path / "out"),
               tmp_path=tmp_path)
    assert (tmp_path / "wheels" / name).read_bytes() == payload
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():   # the CPU build: pip gets the fake wheel
        assert res.returncode == 3 and "pip could not install onnxruntime-gpu" in res.stderr


def test_pieces_that_do_not_match_their_sha256_are_refused(tmp_path, model):
    payload = os.urandom(200_000)
    name = "onnxruntime_gpu-0.0.1-py3-none-any.whl"
    _pieces(tmp_path / "wheels", name, payload, hashlib.sha256(payload + b"!").hexdigest())
    res = _run("--model", model, "--wheels", str(tmp_path / "wheels"), "--out", str(tmp_path / "out"),
               tmp_path=tmp_path)
    assert res.returncode == 3
    assert "does not match its sha256" in res.stderr
    assert not (tmp_path / "wheels" / name).exists()
