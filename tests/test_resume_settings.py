"""``train --out RUN --resume`` continues the run with its own settings: an option left out takes
the value the run recorded (its architecture, starting point, learning rate, input size…); an
option given with another value is refused, as before."""
from __future__ import annotations

import json
import os

import pytest

from ssd.training.defaults import EPOCHS
from train_capture import caught  # noqa: F401  (the fixture)

LITE = "ssdlite320_mobilenet_v3_large"


def _run_record(out, arch: str, settings: dict, meta_args=None) -> str:
    """A run folder as far as resuming reads it: checkpoints/checkpoint.json (and meta.json)."""
    os.makedirs(os.path.join(out, "checkpoints"))
    state = {"epoch": 1, "history": [{"epoch": 1}], "arch": arch, "classes": ["deer"], "settings": settings}
    with open(os.path.join(out, "checkpoints", "checkpoint.json"), "w") as f:
        json.dump(state, f)
    if meta_args is not None:
        with open(os.path.join(out, "meta.json"), "w") as f:
            json.dump({"arch": arch, "classes": ["deer"], "training": {"args": meta_args}}, f)
    return str(out)


def test_resume_without_model_continues_the_runs_own_architecture_and_settings(tmp_path, caught, capsys):
    from ssd.cli.main import main

    run = _run_record(tmp_path / "run", LITE, {"arch": LITE, "input_size": 320, "lr": 0.05, "batch_size": 16,
                                               "lr_schedule": "cosine", "pretrained": "imagenet", "seed": 3})
    assert main(["train", "--data", str(tmp_path), "--out", run, "--resume", "--epochs", "4"]) == 2
    cfg = caught[-1]
    assert (cfg.arch, cfg.input_size, cfg.lr, cfg.batch_size, cfg.pretrained, cfg.seed, cfg.epochs) == \
        (LITE, 320, 0.05, 16, "imagenet", 3, 4)          # was: tiny at 256 px, refused as other settings
    assert f"arch={LITE!r}" in capsys.readouterr().err   # what was taken from the run is said


def test_an_option_given_on_resume_is_kept_to_be_compared_even_when_it_is_the_default(tmp_path, caught):
    from ssd.cli.main import main

    run = _run_record(tmp_path / "run", "tiny", {"arch": "tiny", "batch_size": 16, "lr": 0.05})
    assert main(["train", "--data", str(tmp_path), "--out", run, "--resume", "--batch-size", "32",
                 "--model", "tiny"]) == 2
    assert (caught[-1].batch_size, caught[-1].lr) == (32, 0.05)


def test_an_older_checkpoint_takes_its_starting_point_from_meta_and_ignores_odd_values(tmp_path, caught):
    from ssd.cli.main import main

    run = _run_record(tmp_path / "run", LITE, {"arch": LITE, "lr": "fast", "batch_size": True},
                      meta_args={"pretrained": "imagenet", "lr": 0.5, "epochs": 9})
    assert main(["train", "--data", str(tmp_path), "--out", run, "--resume"]) == 2
    cfg = caught[-1]
    assert (cfg.arch, cfg.pretrained, cfg.lr, cfg.batch_size, cfg.epochs) == (LITE, "imagenet", None, 32, EPOCHS)


def test_a_new_run_takes_nothing_from_a_folder(tmp_path, caught):
    from ssd.cli.main import main

    run = _run_record(tmp_path / "run", LITE, {"arch": LITE, "lr": 0.05})
    assert main(["train", "--data", str(tmp_path), "--out", run]) == 2
    assert (caught[-1].arch, caught[-1].lr) == ("tiny", None)


def test_a_tiny_run_with_its_own_options_resumes_with_none_repeated(tmp_path, synth_dir, capsys):
    from ssd.cli.main import main

    out = str(tmp_path / "run")
    first = ["train", "--data", synth_dir, "--out", out, "--input-size", "64", "--lr", "0.05", "--batch-size", "8",
             "--max-iters", "2", "--limit-val", "4", "--device", "cpu", "--seed", "2", "--epochs", "1"]
    assert main(first) == 0
    capsys.readouterr()
    again = ["train", "--data", synth_dir, "--out", out, "--resume", "--device", "cpu"]
    assert main(again + ["--epochs", "3", "--lr", "0.2"]) == 2            # a differing value: refused
    assert "lr=0.2 (the run has 0.05)" in capsys.readouterr().err
    assert main(again + ["--epochs", "2"]) == 0                          # was refused: lr, input size, …
    with open(os.path.join(out, "checkpoints", "checkpoint.json")) as f:
        state = json.load(f)
    assert state["epoch"] == 2 and state["settings"]["input_size"] == 64 and state["settings"]["lr"] == 0.05
