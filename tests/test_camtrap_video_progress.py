"""A long clip is not silent: progress moves within it, and a first Ctrl-C is answered at once."""
import io
import os
import signal

from video_clips import write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")


def test_the_first_ctrl_c_says_at_once_that_the_run_stops_after_the_current_file(capfd):
    from ssd.base.signals import stop_requests

    with stop_requests(second_interrupts=True, notice="stopping after the current file") as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set()
        assert "stopping after the current file" in capfd.readouterr().err     # before the block ends
    with stop_requests() as stop:               # training's: no notice asked, none printed
        os.kill(os.getpid(), signal.SIGINT)
    assert stop.is_set() and capfd.readouterr().err == ""


def test_progress_moves_within_a_long_clip(tmp_path, monkeypatch):
    from ssd.camtrap import progress
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.settings import RunSettings

    monkeypatch.setattr(progress, "PROGRESS_LOG_EVERY_S", 0.0)
    folder = tmp_path / "card"
    folder.mkdir()
    write_video(folder / "long.mp4", frames=12, fps=4.0, size=(64, 48))
    out = io.StringIO()
    res = run_batch(RunSettings(MODEL, [str(folder)], frame_every=0.25, workers=1), stream=out)
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("running: 0/1")]
    assert not res.stopped
    assert any("long.mp4: 6/12 frames" in ln for ln in lines), out.getvalue()


def test_the_apps_status_file_carries_the_clip_and_its_frames(tmp_path, monkeypatch):
    """The page reads the status file, not the log: a long clip's frames must be there too (the
    page's bar said "0/6 images" for minutes), and gone once the clip is done."""
    import json

    from ssd import jobs
    from ssd.camtrap import progress

    monkeypatch.setattr(progress, "PROGRESS_EVERY_S", 0.0)
    status_file = str(tmp_path / "progress.json")
    p = progress.Progress(total=6, done=0, stream=None, status_file=status_file)
    p.clip("cam1/a.mp4")(120, 600)
    with open(status_file) as fh:
        status = json.load(fh)
    assert status["clip"] == {"file": "cam1/a.mp4", "frames_done": 120, "frames_total": 600}
    assert jobs.batch_progress_text(status).startswith("0/6 images (cam1/a.mp4: 120/600 frames), ")
    assert 0.0 < jobs.batch_progress_fraction(status) < 1 / 6
    p.done = 1
    p.report()
    with open(status_file) as fh:
        status = json.load(fh)
    assert "clip" not in status and jobs.batch_progress_text(status).startswith("1/6 images, ")
    for bad in ("x", {"file": 3, "frames_done": 1, "frames_total": 2}, {"file": "a", "frames_done": "1"}):
        assert jobs.batch_progress_text(dict(status, clip=bad)).startswith("1/6 images, ")
        assert jobs.batch_progress_fraction(dict(status, clip=bad)) == 1 / 6


def test_the_pages_progress_bar_names_the_clip_as_plain_text(tmp_path, monkeypatch, shipped_models_root):
    """The run panel's bar shows the clip's frames; the clip's name is escaped as the page escapes
    names (a progress text is Markdown)."""
    import json

    from streamlit.testing.v1 import AppTest

    from ssd import jobs
    from ssd.jobs.process import JobInfo

    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(tmp_path))
    run_dir = os.path.join(jobs.camera_runs_dir(), "season")
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, jobs.BATCH_PROGRESS), "w") as fh:
        json.dump({"state": "running", "done": 0, "total": 6, "rate": 0.0, "eta_s": None, "failures": 0,
                   "clip": {"file": "cam1/*big*.mp4", "frames_done": 120, "frames_total": 600}}, fh)
    monkeypatch.setattr(jobs, "current_batch_job", lambda root: JobInfo(os.getpid(), "season", run_dir, [], 0.0))
    at = AppTest.from_file(os.path.join(REPO, "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [el.proto.text for el in at.get("progress")]
    assert any(t.startswith(r"0/6 images (cam1/\*big\*.mp4: 120/600 frames), ") for t in texts), texts
