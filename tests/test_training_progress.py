"""Training progress as the Train page shows it: one bar for the whole run that never goes back, the
phase by name (training, or validating with image k of n advancing as it goes), the epoch's own loss
and speed while it is validated, and an ETA that counts validation at the run's own pace."""
from __future__ import annotations

import os
import socket

import pytest

from ssd import jobs
from ssd.training.events import EventLog, read_events
from ssd.training.progress import RunProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _simulate(epochs=3, iters=4, val_total=5, s_iter=1.0, s_val=0.2, save_s=0.5):
    """A run at a known pace: (true seconds left, the run's event fields) at every step."""
    clock = FakeClock()
    p = RunProgress(epochs, 0, iters, batch_size=8, val_total=val_total, clock=clock)
    total = epochs * (iters * s_iter + val_total * s_val + save_s)
    seen = []
    for epoch in range(epochs):
        p.epoch_starts()
        for it in range(iters):
            clock.now += s_iter
            p.step_done()
            seen.append((total - clock.now, p.training_fields(epoch, it + 1)))
        p.validation_starts()
        for k in range(1, val_total + 1):
            clock.now += s_val
            p.validated(k)
            seen.append((total - clock.now, p.validation_fields(epoch)))
        clock.now += save_s
        p.epoch_ends()
    return p, seen


def test_the_fraction_never_goes_back_and_reaches_1_only_at_the_end():
    p, seen = _simulate()
    fractions = [f["fraction"] for _, f in seen]
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    assert max(fractions) < 1.0 and p.fraction() == 1.0
    # the last validation image of an epoch is not a full bar (the old bar showed 100 % there)
    first_epoch_end = next(f for _, f in seen if f["phase"] == "validate" and f["val_done"] == 5)
    assert first_epoch_end["fraction"] < 0.5


def test_the_eta_counts_validation_at_the_runs_own_pace():
    _, seen = _simulate()
    # once the first epoch has ended, every estimate is within a second of the truth
    after_first = [(left, f) for left, f in seen if f["epoch"] >= 2]
    for left, f in after_first:
        assert abs(f["eta_s"] - left) <= 1.0 + 1e-9, (left, f)
    # during the first training pass validation is estimated, not left out: more than the iterations
    left, f = seen[1]                                       # epoch 1, iteration 2
    assert f["eta_s"] > (3 * 4 - 2) * 1.0
    # validation images advance the estimate as they go
    val = [f for _, f in seen if f["phase"] == "validate" and f["epoch"] == 3]
    assert [f["val_done"] for f in val] == [1, 2, 3, 4, 5]
    assert all(b["eta_s"] < a["eta_s"] for a, b in zip(val, val[1:]))
    assert val[-1]["val_images_per_s"] == pytest.approx(5.0)


def test_a_resumed_run_starts_from_its_recorded_validation_time():
    clock = FakeClock()
    p = RunProgress(4, 2, 10, batch_size=8, val_total=50, history=[{"epoch": 2, "val_time_s": 30.0}], clock=clock)
    p.epoch_starts()
    clock.now += 2.0
    p.step_done()
    assert p.eta_s() == pytest.approx(19 * 2.0 + 2 * 30.0)
    assert p.fraction() >= 0.5                              # two of four epochs were done before


def test_the_event_stream_of_a_run(synth_dir, tmp_path, monkeypatch):
    from ssd.training import progress
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    monkeypatch.setattr(progress, "PROGRESS_EVERY_S", 0.0)   # every iteration and image reports
    out = str(tmp_path / "run")
    train(TrainConfig(data=synth_dir, out=out, epochs=2, batch_size=8, limit_train=16, limit_val=12,
                      max_iters_per_epoch=2, device="cpu", augment=False, input_size=64), install_signal_handlers=False)
    events = read_events(out)
    steps = [e for e in events if e["type"] == "progress"]
    fractions = [e["fraction"] for e in steps]
    assert all(b >= a for a, b in zip(fractions, fractions[1:])) and fractions[-1] < 1.0
    assert {e["phase"] for e in steps} == {"train", "validate"}
    epochs = {e["epoch"]: e for e in events if e["type"] == "epoch"}
    for n in (1, 2):
        val = [e for e in steps if e["phase"] == "validate" and e["epoch"] == n]
        done = [e["val_done"] for e in val]
        assert done[0] == 0 and done[-1] == 12 and len(set(done)) >= 4       # advancing as it goes
        assert all(b >= a for a, b in zip(done, done[1:]))
        assert all(e["loss"] == epochs[n]["loss"] and e["samples_per_s"] == epochs[n]["samples_per_s"]
                   for e in val)                           # this epoch's, not the previous one's
        assert epochs[n]["val_time_s"] > 0
    train_events = [e for e in steps if e["phase"] == "train"]
    assert all(e["eta_s"] >= 0 for e in steps) and train_events[0]["eta_s"] > 0
    assert "validating, image 12/12" in jobs.progress_text(steps[-1])


def _validating_run(run_dir: str) -> None:
    log = EventLog(run_dir)
    log.emit("start", pid=os.getpid(), host=socket.gethostname(), config={"epochs": 3})
    log.emit("epoch", epoch=1, loss=2.5, samples_per_s=40.0, val_map=0.25)
    log.emit("progress", phase="train", epoch=2, epochs=3, iter=19, iters=19, global_iter=38, total_iters=57,
             fraction=0.55, eta_s=120.0, loss=0.8, samples_per_s=55.0)
    log.emit("progress", phase="validate", epoch=2, epochs=3, val_done=12, val_total=50, global_iter=38,
             total_iters=57, fraction=0.6, eta_s=88.0, loss=0.75, samples_per_s=57.5, val_images_per_s=3.0)


def test_the_train_page_names_the_phase_and_shows_the_validated_epochs_figures(tmp_path):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT

    _validating_run(os.path.join(os.environ["SSD_MODELS_DIR"], "zz-validating"))
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    bars = [e.proto for e in at.get("progress")]
    assert [(b.value, b.text) for b in bars] == [(60, "epoch 2/3 · validating, image 12/50 · ETA 1:28")]
    figures = {m.label: m.value for m in at.metric}
    assert figures["Loss"] == "0.7500" and figures["Samples/s"] == "57.5" and figures["Epochs done"] == "1/3"
