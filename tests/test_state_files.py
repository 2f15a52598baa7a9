"""Our own state files (checkpoints, a run's settings and progress, a dataset's description) when a
user points a command at a folder holding a FIFO or a file nested 300,000 deep under their name:
one clear line, never a hang (a FIFO held ``open`` for ever, SIGTERM included) or a traceback."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, List

import pytest
from PIL import Image

from conftest import REPO_ROOT, SHIPPED_MODEL
from test_reliability import _in_thread
from test_reliability_inputs import _release

DEEP = "[" * 300_000 + "]" * 300_000


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _deep(path: Path) -> None:
    path.write_text(DEEP)


def _deep_journal(path: Path) -> None:
    """A journal whose header line starts as ours, then nests past the parser's depth."""
    path.write_text('{"ssd_batch_journal":1,"settings":' + DEEP + "}\n")


def _deep_legacy(path: Path) -> None:
    """A format-1 checkpoint (what runs before the journal wrote) nested past the parser's depth."""
    path.write_text('{"ssd_batch_checkpoint":1,"settings":' + DEEP + "}")


def _ssd(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m ssd`` in a child that the timeout kills: an old version hung on the FIFO."""
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "SSD_FORCE_CPU": "1"}
    return subprocess.run([sys.executable, "-m", "ssd", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def _train_run(tmp_path: Path, synth_dir: str, plant: Callable[[Path], None]) -> List[str]:
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    plant(tmp_path / "run" / "checkpoints" / "checkpoint.json")
    return ["train", "--data", synth_dir, "--out", "run", "--epochs", "1", "--resume"]


def _detect_run(tmp_path: Path, plant: Callable[[Path], None], name: str = "out.checkpoint.jsonl") -> List[str]:
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (64, 48), (30, 120, 40)).save(tmp_path / "imgs" / "a.jpg")
    plant(tmp_path / name)
    return ["detect", "--model", SHIPPED_MODEL, "--json", "out.json", "--checkpoint", name, "--resume", "imgs"]


def _model_folder(tmp_path: Path, plant: Callable[[Path], None]) -> List[str]:
    shutil.copytree(SHIPPED_MODEL, tmp_path / "model")
    os.unlink(tmp_path / "model" / "meta.json")
    plant(tmp_path / "model" / "meta.json")
    Image.new("RGB", (64, 48)).save(tmp_path / "a.jpg")
    return ["detect", "--model", "model", "a.jpg"]


CASES = {
    "train --resume, checkpoint.json a FIFO": (lambda t, d: _train_run(t, d, _fifo), "FIFO"),
    "train --resume, checkpoint.json deep": (lambda t, d: _train_run(t, d, _deep), "nested"),
    "detect --resume, journal a FIFO": (lambda t, d: _detect_run(t, _fifo), "not a batch journal"),
    "detect --resume, journal header deep": (lambda t, d: _detect_run(t, _deep_journal), "not a batch checkpoint"),
    "detect --resume, old checkpoint deep": (lambda t, d: _detect_run(t, _deep_legacy, "old.json"), "nested"),
    "detect, model meta.json deep": (lambda t, d: _model_folder(t, _deep), "nested"),
    "detect, model meta.json a FIFO": (lambda t, d: _model_folder(t, _fifo), "FIFO"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_state_file_that_is_a_fifo_or_deep_is_one_clear_error(case, tmp_path, synth_dir):
    make, reason = CASES[case]
    done = _ssd(make(tmp_path, synth_dir), tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and lines and lines[-1].startswith("error:"), done.stderr[-2000:]
    assert reason in lines[-1] and "RecursionError" not in lines[-1]


def test_a_run_folder_of_the_app_with_fifo_or_deep_files_is_read_as_unreadable(tmp_path):
    """The camera-trap page reads every run's progress and settings on each rerun: a FIFO there
    froze the page; a deep file was a RecursionError traceback."""
    from ssd.camtrap.settings import RunSettings, SettingsError
    from ssd.jobs.camera import BATCH_PROGRESS, BATCH_SETTINGS, batch_status

    def read_back(run: Path) -> None:
        assert batch_status(str(run))["state"] == "new"
        with pytest.raises(SettingsError, match="FIFO|nested"):
            RunSettings.load(str(run / BATCH_SETTINGS))

    for plant in (_fifo, _deep):
        run = tmp_path / plant.__name__
        run.mkdir()
        plant(run / BATCH_PROGRESS)
        plant(run / BATCH_SETTINGS)
        try:
            _in_thread(lambda: read_back(run))
        finally:
            for name in (BATCH_PROGRESS, BATCH_SETTINGS):   # lets an old version's reader go
                _release(run / name)


def test_a_data_folder_whose_dataset_json_is_deep_is_a_clear_error(tmp_path, synth_dir):
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    os.unlink(data / "dataset.json")
    _deep(data / "dataset.json")
    done = _ssd(["data", "info", str(data)], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error:") and "nested" in done.stderr
