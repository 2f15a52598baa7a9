"""Several people on one app server (two or three tabs at once): one session's Start, Stop or upload
must never land on another session's run, job or file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

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


@pytest.fixture
def sleeper():
    """A process in a session of its own, as a job is (``killpg`` reaches it); killed afterwards."""
    procs = []

    def start() -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def _lock(path, pid: int, out: str) -> None:
    with open(path, "w") as fh:
        fh.write(json.dumps({"pid": pid, "name": os.path.basename(out), "out": out, "argv": [],
                                "started": 0.0}))


@pytest.mark.parametrize("kind", ["camera", "training"])
def test_stop_stops_the_job_the_page_showed_not_whichever_runs_now(tmp_path, sleeper, kind):
    """Tab B showed A's run X with its Stop button; X ended and A started Y before B's click reached
    the server. Stop sent SIGTERM to whatever job held the lock then: Y, a run B never saw."""
    stop, lock_name = ((jobs.stop_batch_job, jobs.BATCH_LOCK_FILE) if kind == "camera"
                       else (jobs.stop_job, jobs.LOCK_FILE))
    shown, now = sleeper(), sleeper()
    shown.kill()
    shown.wait()
    _lock(tmp_path / lock_name, now.pid, str(tmp_path / "y"))
    assert stop(str(tmp_path), pid=shown.pid) is False
    assert now.poll() is None                          # Y runs on
    assert stop(str(tmp_path), pid=now.pid, timeout=10) is True
    assert now.wait(timeout=10) != 0


def test_a_cached_unreadable_upload_is_named_as_this_session_named_it():
    """The detection cache is shared by every session: B's upload of the bytes A uploaded as
    'alice-site-7.jpg' (unreadable) said "'alice-site-7.jpg' could not be read" in B's tab."""
    from ssd.inference.batch import DetectionCache, detect_images

    class NoNetwork:
        input_size = 64

        def detect_many(self, *a, **k):
            raise AssertionError("an unreadable file never reaches the network")

    cache, data = DetectionCache(), b"not an image at all"
    first = detect_images(NoNetwork(), [("alice-site-7.jpg", data)], 0.45, cache)
    assert "alice-site-7.jpg" in first[0].error
    second = detect_images(NoNetwork(), [("bob.jpg", data)], 0.45, cache)
    assert second[0].name == "bob.jpg" and second[0].error
    assert "alice" not in second[0].error and "bob.jpg" in second[0].error


@pytest.mark.parametrize("page", ["camera_traps", "train"])
def test_each_pages_stop_button_names_the_run_it_showed(app_env, sleeper, page):
    """The page wiring: tab B's Stop, drawn for run X, clicked after X ended and Y took the lock."""
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT

    root, lock_name, key = ((jobs.camera_runs_dir(), jobs.BATCH_LOCK_FILE, "ct_stop") if page == "camera_traps"
                            else (app_env["models"], jobs.LOCK_FILE, "train_stop"))
    os.makedirs(os.path.join(root, "x"))
    shown, now = sleeper(), sleeper()
    _lock(os.path.join(root, lock_name), shown.pid, os.path.join(root, "x"))
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=60).run()
    at.switch_page(f"app_pages/{page}.py").run()
    stop = at.button(key=key)
    shown.kill()
    shown.wait()
    _lock(os.path.join(root, lock_name), now.pid, os.path.join(root, "y"))
    stop.click().run()
    assert now.poll() is None


def test_another_persons_finished_run_does_not_take_over_the_results_shown():
    """B browses (and reviews) run P; A's run Q finishes. B's next click switched B's page to Q's
    results (and dropped B's review): "a run finished since the page last looked" counted any run,
    not the runs this session started. Q is listed for B; only A's page follows it."""
    from ssd.jobs import results_to_show

    p, q = "/r/p/results.json", "/r/q/results.json"
    before, after = {p: 1.0}, {q: 2.0, p: 1.0}
    assert results_to_show(after, before, p, "other", mine={"/r/q"}) == q            # A started Q
    assert results_to_show(after, before, p, "other", mine=set()) == p              # B did not
    assert results_to_show(after, before, "other", "other", mine=set()) == "other"
    assert results_to_show(after, {}, None, "other", mine=set()) == q               # a new tab: the newest


def _finished_run(tmp_path, runs_root: str, name: str) -> str:
    run_dir = os.path.join(runs_root, name)
    os.makedirs(run_dir)
    jobs.in_run_folder(_settings(tmp_path, "m"), run_dir).save(os.path.join(run_dir, jobs.BATCH_SETTINGS))
    path = os.path.join(run_dir, jobs.BATCH_RESULTS)
    with open(path, "w") as fh:
        json.dump({"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal"}, "images": []}, fh)
    return path


def test_the_camera_page_keeps_showing_what_this_tab_browses_when_another_run_ends(app_env, tmp_path):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT

    runs_root = jobs.camera_runs_dir()
    p = _finished_run(tmp_path, runs_root, "p")
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=60).run()
    at.switch_page("app_pages/camera_traps.py").run()
    assert at.selectbox(key="ct_results").value == p
    q = _finished_run(tmp_path, runs_root, "q")            # another tab's run finished meanwhile
    os.utime(q, (os.path.getmtime(p) + 5,) * 2)
    at.run()
    assert at.selectbox(key="ct_results").value == p
    assert "q" in at.selectbox(key="ct_results").options        # listed, not shown


def test_delete_refuses_a_run_whose_resume_is_starting_in_another_tab(tmp_path):
    """A lock without its pid yet is a job starting (its Resume, from another tab, may be this very
    run): Delete waits for it instead of removing the folder under the starting job."""
    from ssd import jobs
    from ssd.base.errors import JobError
    from ssd.jobs.training import LOCK_FILE
    from ssd.training.events import EVENTS_FILE

    root = tmp_path / "models"
    run = root / "run1"
    run.mkdir(parents=True)
    (run / EVENTS_FILE).write_text("")
    (root / LOCK_FILE).write_text("")              # launch() holds it; the pid comes once the process runs
    with pytest.raises(JobError, match="starting"):
        jobs.delete_run(str(root), str(run))
    assert run.is_dir()
    os.unlink(root / LOCK_FILE)
    jobs.delete_run(str(root), str(run))            # nothing starting: deleted, and the lock not left behind
    assert not run.exists() and not (root / LOCK_FILE).exists()
