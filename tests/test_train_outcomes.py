"""What the Train page says about a run that was stopped: kept epochs only when there are some.

A student who pressed Stop during the first epoch was told "stopped (its last epoch is kept)" while the
run folder held no checkpoint and no weights (and no Resume button came with it)."""
from __future__ import annotations

import json
import os

from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")


def _stopped_run(root, epochs_done: int) -> str:
    """A run folder as a Stop pressed during epoch ``epochs_done + 1`` leaves it (no checkpoint)."""
    run = os.path.join(root, "stopped-early")
    os.makedirs(run)
    events = [{"type": "start", "time": 1.0, "config": {"epochs": 20, "out": run}, "pid": 0},
              {"type": "progress", "time": 2.0, "phase": "train", "epoch": epochs_done + 1, "epochs": 20, "iter": 14,
               "iters": 25, "global_iter": 14, "total_iters": 500, "fraction": 0.03, "eta_s": 300},
              {"type": "stopped", "time": 3.0, "best": {}, "epochs_done": epochs_done}]
    with open(os.path.join(run, "events.jsonl"), "w", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(e) + "\n" for e in events))
    return run


def _train_page(root, monkeypatch) -> AppTest:
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_run_stopped_in_its_first_epoch_does_not_claim_a_kept_epoch(tmp_path, monkeypatch):
    _stopped_run(tmp_path, 0)
    at = _train_page(tmp_path, monkeypatch)
    said = " ".join(m.value for m in at.info if "stopped-early" in m.value)
    assert "stopped" in said, [m.value for m in at.info]
    assert "kept" not in said or "nothing" in said, said
    assert "before its first epoch ended" in said, said
    assert not [b for b in at.button if b.label == "Resume"]          # nothing to resume from
    assert [b for b in at.button if b.label == "Delete this run"]


def test_a_run_stopped_after_an_epoch_keeps_it_and_offers_resume(tmp_path, monkeypatch):
    from ssd.training.checkpoint import CHECKPOINT_DIR

    run = _stopped_run(tmp_path, 1)
    os.makedirs(os.path.join(run, CHECKPOINT_DIR))
    with open(os.path.join(run, CHECKPOINT_DIR, "checkpoint.json"), "w", encoding="utf-8") as fh:
        json.dump({"epoch": 1}, fh)
    at = _train_page(tmp_path, monkeypatch)
    said = " ".join(m.value for m in at.info if "stopped-early" in m.value)
    assert "its last epoch is kept" in said, said
    assert [b for b in at.button if b.label == "Resume"]


def test_a_folder_whose_training_kept_nothing_says_so_in_the_model_lists(tmp_path):
    """A run stopped before its first epoch leaves metadata but no weights: the pickers' list of
    unusable folders says why and what to do, not a bare "no model.params yet"."""
    from ssd.store import list_models

    folder = tmp_path / "models" / "half"
    folder.mkdir(parents=True)
    with open(os.path.join(REPO_ROOT, "models", "tiny-pikachu", "meta.json")) as fh:
        (folder / "meta.json").write_text(json.dumps(json.load(fh)))
    ok, broken = list_models(str(tmp_path / "models"))
    assert not ok and [b.name for b in broken] == ["half"]
    assert "has not finished a first epoch" in broken[0].error and "train into it again" in broken[0].error


def test_generate_makes_the_synthetic_set_it_was_given_and_selects_it(tmp_path, monkeypatch):
    """The Generate button (a plain button since the settings left their form) draws the set with the
    sizes typed, and the dataset picker offers it at once."""
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    at = _train_page(tmp_path / "models", monkeypatch)
    at.text_input(key="synth_name").set_value("tiny-set")
    at.number_input(key="synth_train").set_value(6)
    at.number_input(key="synth_val").set_value(2)
    at.button(key="synth_generate").click().run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    assert at.selectbox(key="train_dataset").value == str(tmp_path / "data" / "tiny-set")
    assert any("6 train / 2 val" in s.value for s in at.success)
