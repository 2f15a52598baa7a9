"""Detection on a real GPU with ONNX Runtime's CUDA provider: what ``scripts/gpu_check.sh`` runs on a card.

These tests need what CI machines do not have, and skip saying which part is missing:

* ``onnxruntime-gpu`` (ONNX Runtime offering its CUDA provider),
* an NVIDIA card that the driver lists (``nvidia-smi``, else ``/proc/driver/nvidia``),
* ``SSD_GPU_MODEL``: a model folder with its fp32 ONNX graph (``python -m ssd export --model M
  --format onnx --out DIR``). MXNet is not needed: nothing here imports it.

When all three are there, a session that does not start on the card is a failure, not a skip: that
is the thing a GPU machine is lent to check. The tolerances are the ones the engines are held to on
the CPU (``tests/test_onnx.py``): the same classes, boxes within 1e-3, scores within 1e-4.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

BOX_TOL, SCORE_TOL = 1e-3, 1e-4
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def gpu_model(tmp_path_factory) -> str:
    """A copy of ``SSD_GPU_MODEL`` (the tests never write into the original), or a skip naming what is missing."""
    from ssd.inference.onnx_engine import CUDA, onnxruntime_problem

    problem = onnxruntime_problem()
    if problem:
        pytest.skip(f"no GPU test: {problem}")
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        pytest.skip("no GPU test: ONNX Runtime here is the CPU build (scripts/gpu_check.sh installs onnxruntime-gpu)")
    from ssd.base.hardware import gpu_names      # what the engine names the card with: nvidia-smi, else /proc

    if not gpu_names():
        pytest.skip("no GPU test: the driver lists no card (nvidia-smi, /proc/driver/nvidia)")
    source = os.environ.get("SSD_GPU_MODEL")
    if not source or not os.path.isfile(os.path.join(source, "model.onnx")):
        pytest.skip("no GPU test: set SSD_GPU_MODEL to a folder made by `python -m ssd export --format onnx`")
    dest = str(tmp_path_factory.mktemp("gpu") / "model")
    shutil.copytree(source, dest)
    return dest


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    """Sixteen generated scenes with objects in them, at 256² (the test models' input size)."""
    from PIL import Image

    from ssd.data.synthetic import render_example

    return np.stack([np.asarray(Image.fromarray(render_example(seed=5, index=i, split="val")[0]).resize((256, 256)))
                     for i in range(16)])


@pytest.fixture(autouse=True)
def gpu_wanted(monkeypatch) -> None:
    monkeypatch.delenv("SSD_FORCE_CPU", raising=False)


def _agree(a, b) -> bool:
    """One image's detections ``(classes, scores, boxes)`` on two devices, within the engines' tolerances."""
    return (np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], atol=SCORE_TOL)
            and np.allclose(a[2], b[2], atol=BOX_TOL))


def test_the_session_starts_on_the_card_and_says_which(gpu_model):
    from ssd.inference.onnx_engine import load_onnx

    det = load_onnx(gpu_model, "fp32", prefer_gpu=True)
    assert det.device.startswith("GPU 0 (") and det.device.endswith(", CUDA provider)"), det.device_note
    assert det.device_note == ""
    assert "NVIDIA" in det.device


def test_gpu_and_cpu_detections_agree(gpu_model, pixels):
    from ssd.inference.onnx_engine import load_onnx
    from ssd.inference.thresholds import EVAL_FLOOR

    gpu = load_onnx(gpu_model, "fp32", prefer_gpu=True)
    cpu = load_onnx(gpu_model, "fp32", prefer_gpu=False)
    assert cpu.device.startswith("CPU")
    on_gpu = gpu.predict_arrays(pixels, floor=EVAL_FLOOR)
    on_cpu = cpu.predict_arrays(pixels, floor=EVAL_FLOOR)
    assert sum(len(d[0]) for d in on_cpu) > 0          # something to compare: the scenes hold objects
    disagree = [i for i, (g, c) in enumerate(zip(on_gpu, on_cpu)) if not _agree(g, c)]
    assert disagree == []


def test_a_batch_gives_what_single_images_give_on_the_card(gpu_model, pixels):
    from ssd.inference.onnx_engine import load_onnx

    gpu = load_onnx(gpu_model, "fp32", prefer_gpu=True)
    batched = gpu.predict_arrays(pixels[:8])
    single = [gpu.predict_arrays(pixels[i:i + 1])[0] for i in range(8)]
    assert all(_agree(b, s) for b, s in zip(batched, single))


def test_auto_picks_onnxruntime_on_the_card(gpu_model):
    from ssd.inference.engines import load_detector

    det = load_detector(gpu_model, "auto")
    assert (det.engine, det.precision) == ("onnxruntime", "fp32")
    assert det.device.startswith("GPU 0 (")


def _detect(model: str, folder: str, out: str, **env: str) -> dict:
    argv = [sys.executable, "-m", "ssd", "detect", "--model", model, "--engine", "onnxruntime", "--precision",
            "fp32", "--json", out, "--quiet", folder]
    res = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                         env={k: v for k, v in dict(os.environ, **env).items() if v != ""})
    assert res.returncode == 0, res.stderr
    with open(out, encoding="utf-8") as fh:
        return json.load(fh)


def test_detect_on_a_folder_names_the_card_and_matches_the_cpu(gpu_model, tmp_path):
    from PIL import Image

    from ssd.data.synthetic import render_example

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(render_example(seed=9, index=i, split="val")[0]).resize((1920, 1080)).save(
            folder / f"frame{i}.jpg", quality=90)
    on_gpu = _detect(gpu_model, str(folder), str(tmp_path / "gpu.json"), SSD_FORCE_CPU="")
    on_cpu = _detect(gpu_model, str(folder), str(tmp_path / "cpu.json"), SSD_FORCE_CPU="1")
    assert on_gpu["info"]["ssd_batch"]["inference"]["device"].startswith("GPU 0 (")
    assert on_cpu["info"]["ssd_batch"]["inference"]["device"].startswith("CPU")
    by_file = {im["file"]: im["detections"] for im in on_cpu["images"]}
    assert len(on_gpu["images"]) == len(by_file) == 6
    for image in on_gpu["images"]:
        mine, theirs = image["detections"], by_file[image["file"]]
        assert _each_found(mine, theirs) and _each_found(theirs, mine), image["file"]


def _each_found(these: list, among: list, above: float = 0.06) -> bool:
    """Every detection of ``these`` scoring ``above`` has its twin in ``among``: same category, score and box
    within the tolerances plus the results file's rounding (scores to 3 decimals, boxes to 4)."""
    def twin(d: dict, e: dict) -> bool:
        return (d["category"] == e["category"] and abs(d["conf"] - e["conf"]) <= SCORE_TOL + 1e-3
                and max(abs(a - b) for a, b in zip(d["bbox"], e["bbox"])) <= BOX_TOL + 1e-4)

    return all(any(twin(d, e) for e in among) for d in these if d["conf"] >= above)
