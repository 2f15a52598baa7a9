"""Reliability under faults and hostile input: each test failed on the code before its fix."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import pytest

from ssd.base import faults
from ssd.base.errors import SSDError
from ssd.data.synthetic import generate
from ssd.store import read_meta
from ssd.training.config import TrainConfig
from ssd.training.loop import train

SAVE_STEPS = ["checkpoint: params", "checkpoint: optimizer", "checkpoint: best params", "checkpoint: json",
              "model: weights pending", "model: metadata pending", "model: weights in place"]


@pytest.fixture(scope="module")
def no_val_data(tmp_path_factory) -> str:
    """8 images, no validation split: every epoch is the best so far, so every save publishes a model."""
    root = str(tmp_path_factory.mktemp("synth8"))
    generate(root, num_train=8, num_val=0, seed=3, size=64)
    return root


@pytest.fixture(scope="module")
def val_data(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("synth8v"))
    generate(root, num_train=8, num_val=4, seed=3, size=64)
    return root


def _cfg(data: str, out, epochs: int, resume: bool = False) -> TrainConfig:
    return TrainConfig(data=data, out=str(out), epochs=epochs, batch_size=8, input_size=64, augment=False,
                       seed=1, device="cpu", warmup_iters=0, resume=resume)


def _sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _best_epoch(out) -> int:
    return int(read_meta(str(out))["metrics"]["best"]["epoch"])


@pytest.fixture
def hook():
    yield
    faults.HOOK = None


@pytest.fixture(scope="module")
def one_epoch_run(no_val_data, tmp_path_factory):
    """A run after its first epoch, and the sha256 of each epoch's weights as the saver wrote them."""
    out = tmp_path_factory.mktemp("base") / "run"
    weights = {}

    def record(step: str) -> None:
        if step == "checkpoint: params":
            state_epoch = len(weights) + 1
            weights[state_epoch] = _sha(os.path.join(out, "checkpoints", "checkpoint.params"))

    faults.HOOK = record
    try:
        train(_cfg(no_val_data, out, 1), install_signal_handlers=False)
    finally:
        faults.HOOK = None
    return out, weights


@pytest.mark.parametrize("kill_at", SAVE_STEPS)
def test_a_kill_at_any_step_of_the_save_keeps_weights_and_metadata_together(
        no_val_data, one_epoch_run, tmp_path, hook, kill_at):
    base, weights = one_epoch_run
    out = tmp_path / "run"
    shutil.copytree(base, out)
    epoch2 = {}

    def kill(step: str) -> None:
        if step == "checkpoint: params":
            epoch2["sha"] = _sha(os.path.join(out, "checkpoints", "checkpoint.params"))
        if step == kill_at and "sha" in epoch2:    # during epoch 2's save (not the resume's republish)
            raise faults.SimulatedKill(step)

    faults.HOOK = kill
    with pytest.raises(faults.SimulatedKill):
        train(_cfg(no_val_data, out, 2, resume=True), install_signal_handlers=False)
    faults.HOOK = None
    known = {1: weights[1], 2: epoch2["sha"]}
    best = _best_epoch(out)                        # what a reader (the app, `ssd models`) sees now
    assert _sha(os.path.join(out, "model.params")) == known[best], f"killed at {kill_at!r}"
    train(_cfg(no_val_data, out, 2, resume=True), install_signal_handlers=False)
    assert _best_epoch(out) == 2
    ck = json.load(open(out / "checkpoints" / "checkpoint.json"))
    assert ck["epoch"] == 2
    assert _sha(os.path.join(out, "model.params")) == _sha(os.path.join(out, "checkpoints", ck["best_params"]))
    assert not [f for f in os.listdir(out) if f.endswith((".pending", ".tmp"))]


class _Boom:
    """Unpickling this creates a marker file: proof that a pickle was loaded."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant_pickle(ckdir, marker: str) -> None:
    _Boom.marker = marker
    with open(os.path.join(ckdir, "checkpoint.states"), "wb") as fh:
        pickle.dump(_Boom(), fh)


def test_resume_never_unpickles_and_reproduces_an_uninterrupted_run(val_data, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_cfg(val_data, straight, 2), install_signal_handlers=False)
    first_epoch_saved = lambda: os.path.exists(split / "checkpoints" / "checkpoint.json")  # noqa: E731
    assert train(_cfg(val_data, split, 2), stop=first_epoch_saved, install_signal_handlers=False).status == "stopped"
    marker = str(tmp_path / "pwned")
    _plant_pickle(split / "checkpoints", marker)
    train(_cfg(val_data, split, 2, resume=True), install_signal_handlers=False)
    assert not os.path.exists(marker)
    import mxnet as mx

    a = mx.nd.load(str(straight / "checkpoints" / "checkpoint.params"))
    b = mx.nd.load(str(split / "checkpoints" / "checkpoint.params"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k].asnumpy(), b[k].asnumpy(), rtol=1e-4, atol=1e-6, err_msg=k)


def test_a_pickled_optimizer_state_alone_is_refused_not_loaded(val_data, tmp_path):
    out = tmp_path / "run"
    train(_cfg(val_data, out, 1), install_signal_handlers=False)
    ck = out / "checkpoints"
    os.unlink(ck / "optimizer.json")
    os.unlink(ck / "optimizer.params")
    marker = str(tmp_path / "pwned")
    _plant_pickle(ck, marker)
    with pytest.raises(SSDError, match="pickle"):
        train(_cfg(val_data, out, 2, resume=True), install_signal_handlers=False)
    assert not os.path.exists(marker)


def test_one_bad_meta_is_listed_as_broken_and_the_rest_still_work(tiny_model_dir, tmp_path, capsys):
    from ssd.cli.main import main
    from ssd.store import list_models

    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root / "good")
    shutil.copytree(tiny_model_dir, root / "bad")
    meta = json.load(open(root / "bad" / "meta.json"))
    meta["metrics"] = {"best": []}
    json.dump(meta, open(root / "bad" / "meta.json", "w"))
    ok, broken = list_models(str(root))
    assert [m.name for m in ok] == ["good"] and "good" in ok[0].label
    assert [b.name for b in broken] == ["bad"] and "metrics.best" in broken[0].error
    assert main(["models", "--root", str(root)]) == 0
    cap = capsys.readouterr()
    out = cap.out + cap.err
    assert "good" in out and "metrics.best" in out


# ------------------------------------------------------------------ datasets complete or absent

def test_a_killed_synth_leaves_the_previous_set_whole_and_nothing_listed(tmp_path):
    from ssd.data.dataset import open_dataset
    from ssd.workspace import dataset_folders

    out = tmp_path / "data" / "synth"
    generate(str(out), num_train=6, num_val=2, seed=1, size=64)

    def kill_in_val(done: int, total: int) -> None:
        if done == 22:                  # the new train split is written, the val split is not
            raise faults.SimulatedKill("synth")

    with pytest.raises(faults.SimulatedKill):
        generate(str(out), num_train=20, num_val=4, seed=2, size=64, progress=kill_in_val)
    splits = open_dataset(str(out))
    assert (len(splits.train), len(splits.val)) == (6, 2)
    assert json.load(open(out / "dataset.json"))["seed"] == 1
    assert dataset_folders(str(tmp_path / "data")) == [str(out)]


def test_a_synth_set_without_its_marker_or_with_missing_images_is_refused(tmp_path):
    from ssd.base.errors import DatasetError
    from ssd.data.dataset import open_dataset

    out = tmp_path / "s"
    generate(str(out), num_train=4, num_val=2, seed=1, size=64)
    info = json.load(open(out / "dataset.json"))
    json.dump({**info, "num_train": 9}, open(out / "dataset.json", "w"))
    with pytest.raises(DatasetError, match="incomplete.*python -m ssd data synth"):
        open_dataset(str(out))
    json.dump({k: v for k, v in info.items() if k != "complete"}, open(out / "dataset.json", "w"))
    with pytest.raises(DatasetError, match="completion marker.*python -m ssd data synth"):
        open_dataset(str(out))


def test_a_failed_download_leaves_nothing_a_loader_or_picker_accepts(tmp_path, monkeypatch):
    from ssd.base.errors import DatasetError, DownloadError
    from ssd.data import fetchers
    from ssd.data.dataset import open_dataset
    from ssd.workspace import dataset_folders

    real = tmp_path / "real"
    generate(str(real), num_train=3, num_val=1, seed=1, size=64)

    def fake_download(url, dest, **kw):
        name = os.path.basename(dest)
        if name == "val.rec":
            raise DownloadError(f"{url}: connection reset")
        shutil.copyfile(real / name, dest)
        return dest

    monkeypatch.setattr(fetchers, "download", fake_download)
    root = tmp_path / "data"
    out = root / "pikachu"
    with pytest.raises(DownloadError):
        fetchers.fetch_pikachu(str(out), base_url="http://127.0.0.1:9/")
    assert (out / "train.rec").exists()          # the half that arrived is kept for the next try
    (root / "only-a-log").mkdir()
    (root / "only-a-log" / "download.log").write_text("Traceback ...")
    assert dataset_folders(str(root)) == []
    with pytest.raises(DatasetError, match="interrupted.*data pikachu"):
        open_dataset(str(out))


# ------------------------------------------------------------------ CCT paths stay inside

def test_cct_entries_that_leave_the_image_folder_are_refused_counted_and_named(tmp_path, capsys):
    from PIL import Image

    from ssd.cli.main import main
    from ssd.data.dataset import open_dataset

    root = tmp_path / "cct"
    (root / "images").mkdir(parents=True)
    outside = tmp_path / "secret.jpg"
    Image.new("RGB", (64, 48), (200, 0, 0)).save(outside)
    for i in range(3):
        Image.new("RGB", (64, 48), (0, 60 * i, 0)).save(root / "images" / f"ok{i}.jpg")
    os.symlink(outside, root / "images" / "link.jpg")
    names = [f"ok{i}.jpg" for i in range(3)] + ["../../secret.jpg", str(outside), "link.jpg"]
    doc = {"images": [{"id": i, "file_name": n, "width": 64, "height": 48} for i, n in enumerate(names)],
           "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 20, 20]}
                           for i in range(len(names))],
           "categories": [{"id": 1, "name": "thing"}]}
    (root / "camera_traps.json").write_text(json.dumps(doc))
    opened = []
    real_open = Image.open

    def spy(fp, *a, **kw):
        opened.append(os.path.realpath(str(fp)) if isinstance(fp, (str, os.PathLike)) else fp)
        return real_open(fp, *a, **kw)

    Image.open = spy
    try:
        splits = open_dataset(str(root), check_images=True)
        n = len(splits.train) + (len(splits.val) if splits.val is not None else 0)
        for ds in (splits.train, splits.val):
            for i in range(len(ds) if ds is not None else 0):
                ds[i]
    finally:
        Image.open = real_open
    assert n == 3
    assert str(outside) not in opened
    reason = next(k for k in splits.skipped if k.startswith("file_name outside"))
    assert splits.skipped[reason] == 3 and "../../secret.jpg" in reason and str(outside) in reason
    assert main(["data", "info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "file_name outside the image folder" in out and "../../secret.jpg" in out


# ------------------------------------------------------------------ metadata is plain text

EVIL = "![seen](http://198.51.100.7/pixel.png) [click](http://198.51.100.7/x) :red[alarm]"


def _rendered_markdown(at) -> list:
    return [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success")
            for e in getattr(at, kind)]


def test_metadata_from_a_stranger_reaches_the_page_as_plain_text(tiny_model_dir, tmp_path, monkeypatch, data_root):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT

    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root / "shared")
    meta = json.load(open(root / "shared" / "meta.json"))
    meta.update(classes=[EVIL], status=EVIL, default=True)
    meta["training"]["command"] = EVIL
    meta["dataset"]["path"] = EVIL
    json.dump(meta, open(root / "shared" / "meta.json", "w"))
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    icons = []
    import streamlit

    real = streamlit.set_page_config
    monkeypatch.setattr(streamlit, "set_page_config", lambda **kw: (icons.append(kw.get("page_icon")), real(**kw)))
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    seen = _rendered_markdown(at)
    for page in ("app_pages/train.py", "app_pages/anchors.py"):
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        seen += _rendered_markdown(at)
    assert any("198.51.100.7" in v for v in seen)          # the metadata is shown...
    assert not [v for v in seen if "](http" in v or "![" in v or ":red[" in v]  # ...never as Markdown
    assert icons and all(os.path.isfile(str(i)) for i in icons)  # the favicon ships with the app


# ------------------------------------------------------------------ only regular, whole images

def _encoded(fmt: str) -> bytes:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray((rng.random((96, 128, 3)) * 255).astype(np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def _in_thread(fn, timeout: float = 30.0):
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) if it does not return."""
    import threading

    box = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            box["error"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "hung"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_fifos_and_devices_named_jpg_are_refused_without_hanging(tmp_path, tiny_model_dir, capsys):
    from ssd.base.errors import ImageError
    from ssd.cli.main import main
    from ssd.data.images import load_image

    fifo, dev, good = tmp_path / "pipe.jpg", tmp_path / "zero.jpg", tmp_path / "good.png"
    os.mkfifo(fifo)
    os.symlink("/dev/zero", dev)
    good.write_bytes(_encoded("PNG"))
    for path, kind in ((fifo, "FIFO"), (dev, "device")):
        with pytest.raises(ImageError, match=kind):
            _in_thread(lambda: load_image(str(path)))
    rc = _in_thread(lambda: main(["detect", "--model", tiny_model_dir, str(fifo), str(dev), str(good)]), timeout=120)
    err = capsys.readouterr().err
    assert rc == 0 and "FIFO" in err and "device" in err and "1 image(s) processed, 2 failed" in err


def test_damaged_images_are_reported_not_accepted():
    from ssd.base.errors import ImageError
    from ssd.data.images import load_image

    png, jpg = _encoded("PNG"), _encoded("JPEG")
    sos = jpg.find(b"\xff\xda")
    mid = (sos + len(jpg)) // 2
    damaged_jpg = jpg[:mid] + b"\xff\xd3" + jpg[mid + 2:]   # a restart marker the file never declared
    for data, why in ((png[:-12], "IEND"), (damaged_jpg, "damaged")):
        with pytest.raises(ImageError, match=why):
            load_image(data, name="x")
    assert load_image(png, name="ok").image.size == (128, 96)
    assert load_image(jpg, name="ok").image.size == (128, 96)


# ------------------------------------------------------------------ outputs and numbers checked first

def test_output_targets_are_checked_before_the_work_and_never_replace_special_files(tmp_path, tiny_model_dir,
                                                                                    capsys, monkeypatch):
    from ssd.base.atomic import atomic_write_text
    from ssd.base.errors import OutputError
    from ssd.cli.main import main
    from ssd.inference import detector

    img = tmp_path / "a.png"
    img.write_bytes(_encoded("PNG"))
    loaded = []
    monkeypatch.setattr(detector.Detector, "load", classmethod(lambda cls, *a, **k: loaded.append(a) or 1 / 0))
    link = tmp_path / "link.json"
    os.symlink(tmp_path / "elsewhere.json", link)
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    cases = [(["--json", str(tmp_path / "missing" / "x.json")], "does not exist"),
             (["--json", str(link)], "symbolic link"), (["--csv", str(fifo)], "FIFO"),
             (["--csv", str(tmp_path)], "folder")]
    for extra, why in cases:
        assert main(["detect", "--model", tiny_model_dir, str(img)] + extra) == 2
        assert why in capsys.readouterr().err
    assert main(["eval", "--model", tiny_model_dir, "--data", str(tmp_path), "--json", str(link)]) == 2
    assert loaded == []                                 # refused before loading the model
    with pytest.raises(OutputError, match="symbolic link"):
        atomic_write_text(str(link), "x")
    assert os.path.islink(link) and not os.path.exists(tmp_path / "elsewhere.json")


def test_two_outputs_naming_one_file_are_refused_before_the_work(tmp_path, tiny_model_dir, capsys, monkeypatch):
    """``detect --json season.json --csv season.json`` wrote the results, then the CSV over them: the
    season's results were lost without a word. Two outputs of one command must be two files."""
    from ssd.cli.main import main
    from ssd.inference import detector

    img = tmp_path / "a.png"
    img.write_bytes(_encoded("PNG"))
    loaded = []
    monkeypatch.setattr(detector.Detector, "load", classmethod(lambda cls, *a, **k: loaded.append(a) or 1 / 0))
    same = str(tmp_path / "season.json")
    for other in (same, str(tmp_path / "." / "season.json")):
        assert main(["detect", "--model", tiny_model_dir, str(img), "--json", same, "--csv", other]) == 2
        assert "one file" in capsys.readouterr().err
    assert loaded == [] and not os.path.exists(same)


@pytest.mark.parametrize("argv, flag, allowed", [
    (["train", "--data", "d", "--out", "o", "--batch-size", "0"], "--batch-size", "≥ 1"),
    (["train", "--data", "d", "--out", "o", "--batch-size", "-4"], "--batch-size", "≥ 1"),
    (["train", "--data", "d", "--out", "o", "--epochs", "0"], "--epochs", "≥ 1"),
    (["train", "--data", "d", "--out", "o", "--lr", "-0.1"], "--lr", "> 0"),
    (["train", "--data", "d", "--out", "o", "--lr", "nan"], "--lr", "> 0"),
    (["detect", "--model", "m", "x.jpg", "--threshold", "1.5"], "--threshold", "0–1"),
    (["detect", "--model", "m", "x.jpg", "--nms", "0"], "--nms", "(0, 1]"),
    (["detect", "--model", "m", "x.jpg", "--batch-size", "0"], "--batch-size", "≥ 1"),
    (["eval", "--model", "m", "--data", "d", "--nms", "1.2"], "--nms", "(0, 1]"),
    (["data", "synth", "--out", "o", "--num-train", "0"], "--num-train", "≥ 1"),
    (["data", "synth", "--out", "o", "--num-val", "-1"], "--num-val", "≥ 0"),
])
def test_numeric_arguments_outside_their_range_are_argparse_errors(argv, flag, allowed, capsys):
    from ssd.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and flag in err and allowed in err


# ------------------------------------------------------------------ figures from many sessions at once

def test_figures_built_and_rendered_from_many_threads_never_collide():
    import threading

    from ssd.viz.plots import figure_png, training_curves_figure

    hist = [{"epoch": i + 1, "loss": 10.0 / (i + 1), "val_map": 0.1 * i, "lr": 0.01 / (i + 1),
             "class_err": 0.5 / (i + 1), "bbox_mae": 0.01 / (i + 1)} for i in range(8)]
    errors, pngs = [], []

    def session() -> None:
        for _ in range(3):
            try:
                pngs.append(figure_png(training_curves_figure(hist), dpi=40))
            except Exception as err:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(err)[:200])

    threads = [threading.Thread(target=session) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(pngs) == 12 and all(p.startswith(b"\x89PNG") for p in pngs)


# ------------------------------------------------------------------ the app process stays flat

def test_the_app_process_stays_flat_over_many_reruns_that_run_the_network(tiny_model_dir, monkeypatch, data_root):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_memory", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "bench_memory.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    from ssd.inference.worker import worker_thread_ident

    r = bench.measure(os.path.dirname(tiny_model_dir), runs=24)
    assert r["forward_calls"] >= 24                  # the network really ran on every rerun
    assert worker_thread_ident() is not None
    assert r["growth_mib"] < 40, r                   # was ~6-15 MiB per rerun before the worker


# ------------------------------------------------------------------ leftovers of interrupted work

def test_leftover_temp_files_and_staging_are_removed_on_the_next_run(no_val_data, one_epoch_run, tmp_path):
    base, _ = one_epoch_run
    out = tmp_path / "run"
    shutil.copytree(base, out)
    stale = [out / ".model.params.k3j2.tmp", out / "checkpoints" / ".checkpoint.params.x9.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    train(_cfg(no_val_data, out, 2, resume=True), install_signal_handlers=False)
    assert not [p for p in stale if p.exists()]
    dead = tmp_path / "data" / ".synth.partial-999999999"        # a staging folder of a killed synth
    (dead / ".partial").mkdir(parents=True)
    generate(str(tmp_path / "data" / "synth"), num_train=2, num_val=0, seed=1, size=64)
    assert sorted(os.listdir(tmp_path / "data")) == ["synth"]


def test_a_failed_run_can_be_deleted_from_the_train_page(tmp_path, monkeypatch, data_root):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT
    from ssd.base.errors import DatasetError, JobError
    from ssd import jobs

    root = tmp_path / "models"
    (root / "failed").mkdir(parents=True)       # the job launcher makes the run folder for its log
    with pytest.raises(DatasetError):
        train(_cfg(str(tmp_path / "no-such-data"), root / "failed", 1), install_signal_handlers=False)
    with pytest.raises(JobError):
        jobs.delete_run(str(root), str(tmp_path))                 # not a run folder of the models root
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="train_delete").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not (root / "failed").exists()
    # a delete that worked says so as a success, not in the red box of a failure
    assert not at.error, [e.value for e in at.error]
    assert any("Deleted failed" in m.value for m in at.success), [m.value for m in at.success]


# ------------------------------------------------------------------ the Train page says what it does

def test_validation_has_its_own_progress_and_a_resumed_job_hides_the_old_progress(val_data, tmp_path):
    from ssd import jobs
    from ssd.training.events import read_events

    out = tmp_path / "run"
    train(_cfg(val_data, out, 1), install_signal_handlers=False)
    events = read_events(str(out))
    val = [e for e in events if e["type"] == "progress" and e.get("phase") == "validate"]
    assert val and val[-1]["val_done"] == val[-1]["val_total"] == 4
    assert jobs.progress_text(val[0]).startswith("epoch 1/1 · validating, image 0/4 (getting ready")
    assert 0.5 < jobs.progress_fraction(val[-1]) < 1.0      # the run's share: its checkpoint is still to come
    assert jobs.run_status(str(out)).progress["phase"] == "validate"
    import time

    relaunched = time.time() + 5                     # Resume pressed: a new process, no event from it yet
    status = jobs.run_status(str(out), running=True, started=relaunched)
    assert status.progress is None and status.message == "starting" and len(status.history) == 1


# ------------------------------------------------------------------ the time per image includes decoding

def test_detection_time_per_image_counts_that_images_decode(tiny_model_dir, monkeypatch):
    import time

    from ssd.data import images
    from ssd.inference.batch import detect_images
    from ssd.inference.detector import Detector

    det = Detector.load(tiny_model_dir)
    real = images.load_image

    def slow_decode(*a, **kw):
        time.sleep(0.08)
        return real(*a, **kw)

    monkeypatch.setattr(images, "load_image", slow_decode)
    out = detect_images(det, [("a.png", _encoded("PNG")), ("b.png", _encoded("JPEG"))], 0.45, None)
    for item in out:
        t = item.raw.timings_ms
        assert t["load"] >= 80 and t["total"] >= t["load"] + t["network"] - 1e-6


# ------------------------------------------------------------------ the diagram on a phone

def test_home_page_offers_the_ssd_diagram_as_text_that_wraps_on_a_phone(app_env):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT
    from ssd.models.registry import anchors_for_meta
    from ssd.store import read_meta

    import html
    import re

    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    # one st.html holds the figure and its text; CSS shows the text instead of the figure below 640 px
    block = next(h.proto.body for h in at.get("html") if "ssd-diagram-narrow" in h.proto.body)
    assert "@media (max-width: 640px)" in block
    text = html.unescape(re.search(r'<div class="ssd-diagram-narrow">(.*?)</div>', block, re.S).group(1))
    aset = anchors_for_meta(read_meta(app_env["model"]))
    for i, (h, w) in enumerate(aset.feature_maps):
        assert f"{h}×{w} · {aset.anchors_per_cell(i)} anchors/cell" in text
    assert f"{aset.total()} anchors in all" in text
    assert max(len(line) for line in text.splitlines()) <= 100   # short lines: they wrap, not shrink


# ------------------------------------------------------------------ a zoo model's anchors per cell

def test_anchors_page_counts_a_zoo_models_anchors_per_cell_from_its_generators(tmp_path, monkeypatch, data_root):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT
    from ssd.models.registry import anchors_for_meta

    meta = {"arch": "ssd_512_mobilenet1.0", "classes": ["deer"], "input_size": 512, "default": True,
            "zoo": {"variant": "custom"}}
    folder = tmp_path / "models" / "zoo"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "model.params").write_bytes(b"")        # listed; the Anchors page never loads weights
    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=180).run()
    at.switch_page("app_pages/anchors.py").run()
    assert not at.exception, [e.value for e in at.exception]
    per_cell = anchors_for_meta(meta).per_cell
    assert per_cell == [4, 6, 6, 6, 4, 4]                # GluonCV: ratios (1, 2, .5) then (1, 2, .5, 3, 1/3)
    labels = at.selectbox(key="anchors_scale").options
    assert [int(l.split("(")[1].split()[0]) for l in labels] == per_cell
    at.selectbox(key="anchors_scale").set_value(1).run()
    assert next(m.value for m in at.metric if m.label == "Anchors in this cell") == "6"
