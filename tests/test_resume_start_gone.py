"""A run that started from a model folder resumes once that folder is gone or changed: on a resume
the starting point is a record (the checkpoint brings every weight), never something to load. A
resume that asks for another start is still refused."""
from __future__ import annotations

import json
import os
import shutil

import pytest

LITE = "ssdlite320_mobilenet_v3_large"
TINY_ARGS = ["--input-size", "64", "--batch-size", "4", "--max-iters", "2", "--device", "cpu"]


def _meta(folder: str) -> dict:
    with open(os.path.join(folder, "meta.json")) as f:
        return json.load(f)


@pytest.fixture
def tiny_run(tmp_path, synth_dir):
    """``(start folder A, run B from A after one epoch)``, both tiny at 64 px."""
    from ssd.cli.main import main

    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    assert main(["train", "--data", synth_dir, "--out", a, "--epochs", "1"] + TINY_ARGS) == 0
    assert main(["train", "--data", synth_dir, "--out", b, "--pretrained", a, "--epochs", "1"] + TINY_ARGS) == 0
    return a, b


def test_a_tiny_run_resumes_after_its_start_folder_is_deleted(tiny_run, synth_dir, capsys):
    from ssd.cli.main import main

    a, b = tiny_run
    start = _meta(b)["start"]
    assert start["pretrained"] == os.path.abspath(a) and start["loaded"] > 0
    shutil.rmtree(a)
    capsys.readouterr()
    assert main(["train", "--data", synth_dir, "--out", b, "--epochs", "2", "--resume", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "resuming after epoch 1" in err
    meta = _meta(b)
    assert meta["status"] == "done" and [h["epoch"] for h in meta["metrics"]["history"]] == [1, 2]
    assert meta["start"] == start            # the original start's record, kept


def test_a_tiny_run_resumes_after_its_start_folder_changed(tiny_run, synth_dir):
    from ssd.cli.main import main

    a, b = tiny_run
    start = _meta(b)["start"]
    changed = {**_meta(a), "classes": ["zebra", "okapi"]}
    with open(os.path.join(a, "meta.json"), "w") as f:
        json.dump(changed, f)
    os.remove(os.path.join(a, "model.params"))
    with open(os.path.join(a, "model.params"), "wb") as f:
        f.write(b"not weights")
    assert main(["train", "--data", synth_dir, "--out", b, "--epochs", "2", "--resume", "--device", "cpu"]) == 0
    meta = _meta(b)
    assert meta["status"] == "done" and len(meta["metrics"]["history"]) == 2 and meta["start"] == start


def test_a_resume_asking_for_another_start_is_still_refused(tiny_run, synth_dir, tmp_path, capsys):
    from ssd.cli.main import main

    a, b = tiny_run
    other = str(tmp_path / "other")
    shutil.copytree(a, other)
    shutil.rmtree(a)
    before = _meta(b)
    assert main(["train", "--data", synth_dir, "--out", b, "--epochs", "2", "--resume",
                 "--pretrained", other, "--device", "cpu"]) == 2
    assert "pretrained" in capsys.readouterr().err
    assert _meta(b) == before
    # the same folder named again (relative, now gone) is the run's own start, not another one
    os.chdir(tmp_path)
    assert main(["train", "--data", synth_dir, "--out", b, "--epochs", "2", "--resume",
                 "--pretrained", "A", "--device", "cpu"]) == 0


def test_the_train_pages_resume_continues_without_the_start_folder(tiny_run, synth_dir):
    from ssd.jobs.training import resume_config
    from ssd.training.loop import train

    a, b = tiny_run
    start = _meta(b)["start"]
    shutil.rmtree(a)
    cfg = resume_config(b)                  # what the Resume button starts
    cfg.epochs, cfg.device = 2, "cpu"
    res = train(cfg, install_signal_handlers=False)
    assert res.status == "done" and len(res.history) == 2 and _meta(b)["start"] == start


def test_an_ssdlite_run_resumes_after_its_detector_folder_is_deleted(tmp_path, synth_dir):
    from test_ssdlite import torchvision_style_state

    from ssd.models.ssdlite.recipe import coco_detector
    from ssd.store import save_model
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    start = str(tmp_path / "coco")
    save_model(start, *coco_detector(torchvision_style_state()[1]))
    out = str(tmp_path / "tuned")
    opts = dict(data=synth_dir, out=out, arch=LITE, batch_size=2, max_iters_per_epoch=1, limit_train=2,
                limit_val=2, input_size=128, device="cpu", precision="fp32")
    assert train(TrainConfig(epochs=1, pretrained=start, **opts), install_signal_handlers=False).status == "done"
    recorded = _meta(out)["start"]
    assert recorded["pretrained"] == os.path.abspath(start) and recorded["loaded"] > 400
    shutil.rmtree(start)
    res = train(TrainConfig(epochs=2, pretrained=start, resume=True, **opts), install_signal_handlers=False)
    assert res.status == "done" and len(res.history) == 2 and _meta(out)["start"] == recorded


def test_no_recipes_check_needs_the_start_folder_on_a_resume(tmp_path, synth_dir):
    from ssd.base.errors import SSDError
    from ssd.training.config import TrainConfig, prepared

    gone = str(tmp_path / "gone")
    for arch in ("tiny", LITE, "ssd_300_vgg16_atrous"):
        opts = dict(data=synth_dir, out=str(tmp_path / arch), arch=arch, pretrained=gone, input_size=320)
        with pytest.raises(SSDError, match="--pretrained"):
            prepared(TrainConfig(**opts))                       # a new run: still refused
        prepared(TrainConfig(resume=True, **opts))              # a resume: the start is a record
