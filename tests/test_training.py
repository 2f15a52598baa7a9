"""Training: the loss goes down, checkpoints are atomic, resume continues, a kill loses nothing saved."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ssd.base.errors import SSDError
from ssd.training.events import read_events
from ssd.store import list_models, read_meta
from ssd.data.synthetic import generate
from ssd.training.config import TrainConfig
from ssd.training.loop import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth"))
    generate(root, num_train=32, num_val=8, seed=5)
    return root


def _cfg(data, out, **kw):
    base = dict(data=data, out=str(out), epochs=3, batch_size=16, augment=False, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_training_lowers_the_loss_and_saves_a_complete_model(data, tmp_path):
    res = train(_cfg(data, tmp_path / "m"), install_signal_handlers=False)
    losses = [h["loss"] for h in res.history]
    assert res.status == "done" and len(losses) == 3
    assert losses[-1] < 0.8 * losses[0]
    assert all(0 <= h["val_map"] <= 1 for h in res.history)
    meta = read_meta(str(tmp_path / "m"))
    assert meta["status"] == "done" and meta["classes"] == ["pikachu"]
    assert meta["anchors"]["total"] == 5444 and meta["versions"]["mxnet"] == "1.9.1"
    assert len(meta["metrics"]["history"]) == 3
    ok, broken = list_models(str(tmp_path))
    assert [m.name for m in ok] == ["m"] and not broken
    types = [e["type"] for e in read_events(str(tmp_path / "m"))]
    assert types[0] == "start" and types.count("epoch") == 3 and types[-1] == "done"


def test_same_seed_gives_the_same_run(data, tmp_path):
    a = train(_cfg(data, tmp_path / "a", epochs=1, augment=True, input_size=64), install_signal_handlers=False)
    b = train(_cfg(data, tmp_path / "b", epochs=1, augment=True, input_size=64), install_signal_handlers=False)
    assert a.history[0]["loss"] == pytest.approx(b.history[0]["loss"], rel=1e-5)


def test_resume_continues_from_the_last_checkpoint(data, tmp_path):
    out = tmp_path / "r"
    train(_cfg(data, out, epochs=1, input_size=64), install_signal_handlers=False)
    with pytest.raises(SSDError, match="--resume"):
        train(_cfg(data, out, epochs=2, input_size=64), install_signal_handlers=False)
    res = train(_cfg(data, out, epochs=2, input_size=64, resume=True), install_signal_handlers=False)
    assert [h["epoch"] for h in res.history] == [1, 2]
    ck = json.load(open(out / "checkpoints" / "checkpoint.json"))
    assert ck["epoch"] == 2
    starts = [e for e in read_events(str(out)) if e["type"] == "start"]
    assert starts[-1]["resumed_from"] == 1


def test_stop_request_ends_cleanly_and_keeps_the_checkpoint(data, tmp_path):
    out = tmp_path / "s"
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3  # epoch 1 has 2 iterations; stop early in epoch 2

    res = train(_cfg(data, out, epochs=3, input_size=64), stop=stop, install_signal_handlers=False)
    assert res.status == "stopped" and len(res.history) == 1
    assert read_meta(str(out))["status"] == "stopped"
    res = train(_cfg(data, out, epochs=2, input_size=64, resume=True), install_signal_handlers=False)
    assert [h["epoch"] for h in res.history] == [1, 2]


def test_kill_mid_epoch_then_resume(data, tmp_path):
    out = tmp_path / "k"
    cmd = [sys.executable, "-m", "ssd", "train", "--data", data, "--out", str(out), "--epochs", "3",
           "--batch-size", "8", "--no-augment", "--limit-val", "4"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            evs = read_events(str(out))
            if any(e["type"] == "progress" and e["epoch"] == 2 for e in evs):
                break
            assert proc.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("training never reached epoch 2")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    ck = json.load(open(out / "checkpoints" / "checkpoint.json"))
    assert ck["epoch"] == 1
    assert read_meta(str(out))["arch"] == "tiny"  # the model saved after epoch 1 is intact
    r = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resuming after epoch 1" in r.stderr
    ck = json.load(open(out / "checkpoints" / "checkpoint.json"))
    assert ck["epoch"] == 3 and [h["epoch"] for h in ck["history"]] == [1, 2, 3]


def test_bad_config_and_missing_data_give_clear_errors(tmp_path):
    with pytest.raises(SSDError, match="epochs"):
        train(TrainConfig(data=str(tmp_path), out=str(tmp_path / "x"), epochs=0), install_signal_handlers=False)
    with pytest.raises(SSDError, match="does not exist"):
        train(TrainConfig(data=str(tmp_path / "nope"), out=str(tmp_path / "x")), install_signal_handlers=False)
    for absurd, what in (({"momentum": 5.0}, "momentum"), ({"wd": 1e308}, "weight decay"),
                         ({"lr": 1e300}, "learning rate"), ({"input_size": 100000}, "input size"),
                         ({"sizes": [[0.2, 0.3], [0.4]]}, "anchors.*2 scales but ratios has 5"),
                         ({"ratios": [[0.0, -1.0]]}, "positive"), ({"ratios": [[float("nan"), 1.0]]}, "finite"), ({"sizes": [[0.5, 0.9]], "ratios": [[1.0]]}, "two scales")):
        with pytest.raises(SSDError, match=what):
            train(TrainConfig(data=str(tmp_path), out=str(tmp_path / "x"), **absurd), install_signal_handlers=False)
    assert not (tmp_path / "x").exists()


def test_a_run_that_cannot_start_leaves_no_output_folder(data, tmp_path):
    """No data, data that does not open, a bad option: refused before anything is created."""
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "run"
    for kw, match in ((dict(data=str(tmp_path / "nope")), "does not exist"),
                      (dict(data=str(empty)), "not a dataset"),
                      (dict(data=data, epochs=0), "epochs")):
        events = []
        with pytest.raises(SSDError, match=match):
            train(TrainConfig(out=str(out), **kw), on_event=events.append, install_signal_handlers=False)
        assert not out.exists()
        assert [e["type"] for e in events] == (["error"] if "epochs" not in kw else [])


def test_a_run_folder_made_by_a_job_launcher_is_told_why_the_run_could_not_start(tmp_path):
    out = tmp_path / "run"
    out.mkdir()       # the background job's launcher made it to hold train.log
    with pytest.raises(SSDError, match="does not exist"):
        train(TrainConfig(data=str(tmp_path / "nope"), out=str(out)), install_signal_handlers=False)
    last = read_events(str(out))[-1]
    assert last["type"] == "error" and "does not exist" in last["message"]
    assert os.listdir(out) == ["events.jsonl"]


def test_batchnorm_recalibration_makes_predict_mode_match_the_weights():
    """MXNet's BN statistics lag fast-moving weights; recalibration re-estimates them."""
    import mxnet as mx
    from mxnet import autograd

    from ssd.models.tiny import TinySSD
    from ssd.training.batchnorm import recalibrate_batchnorm

    net = TinySSD(1)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    x = mx.nd.random.normal(2, 3, shape=(8, 3, 64 * 4, 64 * 4))
    with autograd.train_mode():
        want = net(x)[1].asnumpy()
    before = net(x)[1].asnumpy()  # running stats still at their initial 0/1
    assert np.abs(before - want).max() > 0.1
    assert recalibrate_batchnorm(net, [x]) == 12
    after = net(x)[1].asnumpy()
    np.testing.assert_allclose(after, want, rtol=1e-2, atol=1e-2)
    # momentum is restored for training
    assert all(b._kwargs["momentum"] == 0.9 for b in net.blocks[0][0]._children.values()
               if hasattr(b, "_kwargs") and "momentum" in b._kwargs)


def test_explicit_options_win_over_architecture_defaults():
    from ssd.models.registry import recipe_for
    from ssd.training.config import resolve_defaults

    cfg = TrainConfig(data="", out="", lr=0.2, momentum=0.0)
    filled = resolve_defaults(cfg)
    assert cfg.lr == 0.2 and cfg.momentum == 0.0
    assert cfg.input_size == recipe_for("tiny").defaults(32)["input_size"] and "lr=0.01" not in filled
    zoo_cfg = TrainConfig(data="", out="", arch="ssd_512_mobilenet1.0", lr=0.2, input_size=256)
    resolve_defaults(zoo_cfg)
    assert zoo_cfg.lr == 0.2 and zoo_cfg.input_size == 256 and zoo_cfg.lr_schedule == "step"


def test_a_resume_that_changes_what_is_trained_is_refused_and_touches_nothing(data, tmp_path):
    """Resuming at another input size (or on other data, with another batch size) used to train on
    silently and publish the old best weights under the new input size; now it is one clear error."""
    out = tmp_path / "r"
    train(_cfg(data, out, epochs=1, input_size=64), install_signal_handlers=False)
    before = {p: (out / p).read_bytes() for p in ("meta.json", "model.params", "events.jsonl",
                                                  "checkpoints/checkpoint.json")}
    other = tmp_path / "other"
    generate(str(other), num_train=32, num_val=8, seed=9)
    for change, what in (({"input_size": 96}, "input_size"), ({"data": str(other)}, "data"),
                         ({"batch_size": 8}, "batch_size")):
        kw = {"epochs": 2, "input_size": 64, "resume": True, **change}
        with pytest.raises(SSDError, match=f"cannot resume.*{what}"):
            train(_cfg(kw.pop("data", data), out, **kw), install_signal_handlers=False)
    assert {p: (out / p).read_bytes() for p in before} == before
    res = train(_cfg(data, out, epochs=2, input_size=64, resume=True), install_signal_handlers=False)
    assert [h["epoch"] for h in res.history] == [1, 2] and read_meta(str(out))["input_size"] == 64


def test_a_new_run_never_overwrites_a_saved_model(data, tmp_path):
    """A model folder without checkpoints (shipped, converted, or copied) used to be overwritten by
    ``train --out`` into it; and a refused run wrote an error into the good run's event log."""
    out = tmp_path / "m"
    train(_cfg(data, out, epochs=1, input_size=64), install_signal_handlers=False)
    for with_checkpoint in (True, False):
        if not with_checkpoint:
            import shutil

            shutil.rmtree(out / "checkpoints")
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        with pytest.raises(SSDError, match="already holds"):
            train(_cfg(data, out, epochs=1, input_size=64, lr=0.5), install_signal_handlers=False)
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_images_the_decode_once_cache_could_not_decode_are_reported(tmp_path):
    """A truncated JPEG in a camera-trap set was dropped by the cache without a word (only the
    uncached path warned): the run must say how many images it left out, and why."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cct_fixture import make_ena24_like

    ena = make_ena24_like(str(tmp_path / "ena"), n_images=30, size=(160, 120))
    out = tmp_path / "m"
    train(TrainConfig(data=ena["root"], out=str(out), epochs=1, batch_size=8, input_size=64, augment=False,
                      max_iters_per_epoch=1), install_signal_handlers=False)
    warnings = [e["message"] for e in read_events(str(out)) if e["type"] == "warning"]
    assert any("1 image(s)" in w and "corrupt image" in w for w in warnings), warnings


def test_ctrl_c_stops_training_with_the_stopped_exit_status(tmp_path):
    """A stopped run exited 0 like a finished one, so ``train && …`` chains and job schedulers took a
    Ctrl-C or a time limit's SIGTERM for a completed run; ``detect`` already exits 130 when stopped."""
    data = tmp_path / "d"
    generate(str(data), num_train=200, num_val=0, seed=2, size=64)
    out = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-m", "ssd", "train", "--data", str(data), "--out", str(out),
                             "--epochs", "5", "--batch-size", "2", "--input-size", "64", "--no-augment"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 120
        while not any(e["type"] == "progress" for e in read_events(str(out))):
            assert time.time() < deadline and proc.poll() is None, "training never reported progress"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and stdout.startswith("stopped")


def test_resume_with_fewer_epochs_than_done_is_refused_and_changes_nothing(data, tmp_path, capsys):
    """``--resume --epochs 1`` after 2 epochs used to record 1 as the run's length (the saved record
    then said fewer epochs than were trained); --epochs is the total to reach, so it is refused."""
    from ssd.cli.main import main

    out = tmp_path / "r"
    train(_cfg(data, out, epochs=2, input_size=64), install_signal_handlers=False)
    before = {p: (out / p).read_bytes() for p in ("meta.json", "model.params", "events.jsonl",
                                                  "checkpoints/checkpoint.json")}
    args = ["train", "--data", data, "--out", str(out), "--batch-size", "16", "--no-augment", "--seed", "1",
            "--input-size", "64", "--resume", "--epochs", "1"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "2 epochs" in err and "--epochs is the total" in err
    assert {p: (out / p).read_bytes() for p in before} == before
    assert main(args[:-1] + ["2"]) == 0   # as many as done: nothing left to train, accepted


def test_resume_on_a_regenerated_dataset_of_the_same_name_is_refused(tmp_path):
    """``data synth`` again into the same folder (another seed and count) between a run and its
    resume used to go unnoticed: the folder's path, the only thing compared, was the same."""
    folder = tmp_path / "synth"
    generate(str(folder), num_train=16, num_val=4, seed=5)
    out = tmp_path / "r"
    train(_cfg(str(folder), out, epochs=1, input_size=64), install_signal_handlers=False)
    ck_path = out / "checkpoints" / "checkpoint.json"
    assert json.loads(ck_path.read_text())["dataset"]      # the dataset's identity is recorded
    generate(str(folder), num_train=20, num_val=4, seed=9)
    before = {p: (out / p).read_bytes() for p in ("meta.json", "model.params", "checkpoints/checkpoint.json")}
    with pytest.raises(SSDError) as info:
        train(_cfg(str(folder), out, epochs=2, input_size=64, resume=True), install_signal_handlers=False)
    msg = str(info.value)
    assert "cannot resume" in msg and "\n" not in msg
    assert "seed 5 → 9" in msg and "num_train 16 → 20" in msg
    assert {p: (out / p).read_bytes() for p in before} == before
    # A checkpoint written before datasets were fingerprinted has nothing to compare: it resumes.
    state = json.loads(ck_path.read_text())
    del state["dataset"]
    ck_path.write_text(json.dumps(state))
    res = train(_cfg(str(folder), out, epochs=2, input_size=64, resume=True), install_signal_handlers=False)
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert json.loads(ck_path.read_text())["dataset"]      # and records it from now on
