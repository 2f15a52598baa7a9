"""Several people on one app server (two or three tabs at once): one session's Start, Stop or upload
must never land on another session's run, job or file."""
from __future__ import annotations

import pytest

from ssd import jobs
from ssd.base.errors import JobError
from ssd.camtrap.settings import RunSettings
from ssd.jobs.camera import BATCH_JOURNAL


def _settings(tmp_path, model: str) -> RunSettings:
    photos = tmp_path / "photos"
    photos.mkdir(exist_ok=True)
    return RunSettings(model, (str(photos),), recursive=True)


def test_a_start_racing_another_sessions_start_leaves_that_run_alone(tmp_path):
    """Session A's Start has taken the runs folder's lock and saved run "season"'s settings; its
    process is starting. Session B's Start of "season" (same default name, same moment) was refused
    only at the lock, after it had written its own settings over A's run.json and deleted A's
    checkpoint: A's resume then ran B's settings, or lost A's progress."""
    runs_root = tmp_path / "runs"
    run_dir = runs_root / "season"
    run_dir.mkdir(parents=True)
    mine = jobs.in_run_folder(_settings(tmp_path, "model-a"), str(run_dir))
    mine.save(str(run_dir / jobs.BATCH_SETTINGS))
    saved = (run_dir / jobs.BATCH_SETTINGS).read_bytes()
    (runs_root / jobs.BATCH_LOCK_FILE).write_text("")      # A's launcher: lock taken, pid not yet written
    with pytest.raises(JobError, match="starting right now"):
        jobs.start_batch_job(str(runs_root), "season", _settings(tmp_path, "model-b"))
    assert (run_dir / jobs.BATCH_SETTINGS).read_bytes() == saved
    journal = run_dir / BATCH_JOURNAL                      # A's first checkpoint; B ticked "Replace"
    journal.write_text('{"ssd_batch_journal": 1}\n')
    with pytest.raises(JobError, match="starting right now"):
        jobs.start_batch_job(str(runs_root), "season", _settings(tmp_path, "model-b"), replace=True)
    assert (run_dir / jobs.BATCH_SETTINGS).read_bytes() == saved
    assert journal.read_text() == '{"ssd_batch_journal": 1}\n'
    with pytest.raises(JobError, match="starting right now"):
        jobs.start_batch_job(str(runs_root), "other", _settings(tmp_path, "model-b"))
    assert not (runs_root / "other").exists()      # no half-made run left in the list or the names
