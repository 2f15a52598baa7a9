"""Shared fixtures: a tiny synthetic dataset and a tiny trained model, made once per test session.

Nothing here depends on the shipped default model or on the network. Fixtures are generic so
any test module can use them:

* ``data_root``      – a data folder (what ``SSD_DATA_DIR`` points at) holding ``synthetic-pikachu``
* ``synth_dir``      – that synthetic Pikachu set: 64 train / 16 val images, seed 0
* ``tiny_model_dir`` – a model trained on it (2 epochs, batch 16) in its own models folder
* ``models_root``    – the models folder holding ``tiny_model_dir`` (what ``SSD_MODELS_DIR`` points at)
* ``app_env``        – points ``SSD_MODELS_DIR`` / ``SSD_DATA_DIR`` at the two folders above
* ``shipped_models_root`` – a models folder holding a copy of the shipped default model, and nothing else
* ``ssd300_reference`` / ``ssdlite_reference`` – torchvision's own SSDs with random weights, their
  checkpoint and outputs (skipped where /usr/bin/python3 has no torchvision)
* ``ssd300_model_dir`` / ``ssdlite_model_dir`` – those checkpoints converted by ``models import``

No test sees the user's ``models/`` or ``data/``: ``own_folders`` (autouse) points ``SSD_MODELS_DIR``
and ``SSD_DATA_DIR`` at empty temporary folders before every test, so a page, a job or a command that
looks up "the models folder" finds the test's own; ``SSD_PHOTO_ROOTS`` is the session's temporary
folder, where tests keep their photos. Tests that check the shipped default model name
``SHIPPED_MODEL`` (that one folder) explicitly.
"""
from __future__ import annotations

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("OMP_NUM_THREADS", "1")

TINY_TRAIN, TINY_VAL = 64, 16
SHIPPED_MODEL = os.path.join(REPO_ROOT, "models", "tiny-pikachu")


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory):
    """Verdicts (ONNX, INT8) of the session's own, for module fixtures too: a model a module fixture
    quantizes is remembered where its tests look, never in the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "own-cache"))
        yield


@pytest.fixture(autouse=True)
def own_folders(monkeypatch, tmp_path_factory) -> None:
    """Empty models and data folders of the test's own: a model the user trained in ``models/``
    (or a dataset in ``data/``) never changes what a test sees."""
    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path_factory.mktemp("own-models")))
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path_factory.mktemp("own-data")))
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(tmp_path_factory.getbasetemp()))   # tests' photos live there
    monkeypatch.setenv("SSD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "own-cache"))   # ONNX verdicts


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def synth_dir(data_root) -> str:
    from ssd.data.synthetic import generate

    path = os.path.join(data_root, "synthetic-pikachu")
    generate(path, num_train=TINY_TRAIN, num_val=TINY_VAL, seed=0)
    return path


@pytest.fixture(scope="session")
def models_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def shipped_models_root(tmp_path_factory) -> str:
    """A models folder holding a copy of the shipped ``tiny-pikachu`` alone (pages that need a
    real, old-format model see it, never the user's other models)."""
    import shutil

    root = tmp_path_factory.mktemp("shipped-models")
    shutil.copytree(SHIPPED_MODEL, os.path.join(root, "tiny-pikachu"),
                    ignore=shutil.ignore_patterns("checkpoints", "events.jsonl", "train.log"))
    return str(root)


@pytest.fixture(scope="session")
def tiny_model_dir(models_root, synth_dir) -> str:
    """A real (if weak) model: 2 epochs of batch 16 over 64 synthetic images, on the CPU.

    ``SSD_TEST_TINY_MODEL`` names one made so already (the isolation test's nested run hands over its
    own): copied instead of trained again."""
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    out = os.path.join(models_root, "tiny-test")
    if os.environ.get("SSD_TEST_TINY_MODEL"):
        import shutil

        shutil.copytree(os.environ["SSD_TEST_TINY_MODEL"], out)
        return out
    cfg = TrainConfig(data=synth_dir, out=out, epochs=2, batch_size=16, warmup_iters=2, device="cpu",
                      seed=0, default=True, limit_val=8)
    train(cfg, install_signal_handlers=False)
    return out


def open_app_page(monkeypatch, models: str, data: str, page: str):
    """The app (AppTest, on the CPU) over the ``models`` and ``data`` folders, switched to ``page``
    (``app_pages/train.py``), with no exception raised on the way."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SSD_MODELS_DIR", str(models))
    monkeypatch.setenv("SSD_DATA_DIR", str(data))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    at = at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app_env(monkeypatch, models_root, tiny_model_dir, data_root):
    monkeypatch.setenv("SSD_MODELS_DIR", models_root)
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    return {"models": models_root, "data": data_root, "model": tiny_model_dir}


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on: an 'unreachable host' without touching the network."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _torchvision_reference(model: str, tmp_path_factory) -> str:
    """torchvision's ``model`` with deterministic random weights: ``checkpoint.pth`` and
    ``reference.npz`` (tests/torchvision_reference.py, run by /usr/bin/python3); skips without it."""
    from exactness import make_reference, reference_unavailable

    why = reference_unavailable()
    if why:
        pytest.skip(f"torchvision reference unavailable: {why}")
    return make_reference(model, str(tmp_path_factory.mktemp(f"tv-{model}")))


def _imported(reference: str, name: str, tmp_path_factory) -> str:
    """That checkpoint converted into a model folder (``models import … --as NAME``)."""
    from ssd.store import import_model

    root = tmp_path_factory.mktemp(f"tv-models-{name}")
    return import_model(os.path.join(reference, "checkpoint.pth"), name, str(root / name))


@pytest.fixture(scope="session")
def ssd300_reference(tmp_path_factory) -> str:
    return _torchvision_reference("ssd300_vgg16", tmp_path_factory)


@pytest.fixture(scope="session")
def ssd300_model_dir(ssd300_reference, tmp_path_factory) -> str:
    return _imported(ssd300_reference, "ssd300_vgg16_coco", tmp_path_factory)


@pytest.fixture(scope="session")
def ssdlite_reference(tmp_path_factory) -> str:
    return _torchvision_reference("ssdlite320_mobilenet_v3_large", tmp_path_factory)


@pytest.fixture(scope="session")
def ssdlite_model_dir(ssdlite_reference, tmp_path_factory) -> str:
    return _imported(ssdlite_reference, "ssdlite320_mobilenet_v3_large_coco", tmp_path_factory)
