"""The Train page resumes a run whose starting folder was deleted since: the checkpoint brings every
weight, and the run's report still names the folder it started from."""
from __future__ import annotations

import json
import os
import shutil
import time

from conftest import open_app_page


def _meta(folder: str) -> dict:
    with open(os.path.join(folder, "meta.json")) as f:
        return json.load(f)


def _stopped_after_one_epoch(root, synth_dir) -> tuple:
    """``(start folder A, run B from A, stopped after its first of 2 epochs)``, tiny at 64 px."""
    from ssd.training.config import TrainConfig
    from ssd.training.loop import train

    a, b = str(root / "A"), str(root / "B")
    opts = dict(data=synth_dir, batch_size=4, max_iters_per_epoch=2, limit_train=8, limit_val=4, input_size=64,
                device="cpu")
    assert train(TrainConfig(out=a, epochs=1, **opts), install_signal_handlers=False).status == "done"
    epochs = []
    res = train(TrainConfig(out=b, epochs=2, pretrained=a, **opts), on_event=lambda e: epochs.append(
        e) if e.get("type") == "epoch" else None, stop=lambda: bool(epochs), install_signal_handlers=False)
    assert res.status == "stopped" and len(res.history) == 1
    return a, b


def test_resume_on_the_page_continues_a_run_whose_start_folder_is_gone(tmp_path, synth_dir, data_root, monkeypatch):
    from ssd import jobs
    from ssd.base.text import md_escape

    root = tmp_path / "models"
    a, b = _stopped_after_one_epoch(root, synth_dir)
    start = _meta(b)["start"]
    assert start["pretrained"] == os.path.abspath(a)
    shutil.rmtree(a)
    at = open_app_page(monkeypatch, root, data_root, "app_pages/train.py")
    assert [m.value for m in at.info if "**B** stopped" in m.value]
    at = next(x for x in at.button if x.label == "Resume").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    job = jobs.current_job(str(root))
    assert job is not None and job.out == b
    assert [m.value for m in at.markdown if "**B** — training" in m.value]     # the run continuing
    deadline = time.time() + 150
    while jobs.current_job(str(root)) is not None and time.time() < deadline:
        time.sleep(0.5)
    assert jobs.current_job(str(root)) is None, "the resumed job did not finish in time"
    at = at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.value for m in at.success if "**B** finished" in m.value], jobs.train_log_tail(b, 30)
    meta = _meta(b)
    assert meta["status"] == "done" and [h["epoch"] for h in meta["metrics"]["history"]] == [1, 2]
    assert meta["start"] == start                           # the original start's record, kept
    at.selectbox(key="train_inspect").set_value(b)
    at = at.run()
    facts = " ".join(m.value for m in at.markdown if "**architecture**" in m.value)
    assert "**started from**: " + md_escape(f"{a} (no longer there") in facts, facts
    assert md_escape("(classes reused by name: pikachu)") in facts, facts
