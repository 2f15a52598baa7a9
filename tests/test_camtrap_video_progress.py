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
