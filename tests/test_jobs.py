"""Background jobs: the app's training and download processes are the CLI, one at a time."""
import time

import pytest

from ssd import jobs
from ssd.base.errors import JobError
from ssd.training.config import TrainConfig


def test_config_to_argv_passes_only_what_was_set(tmp_path):
    cfg = TrainConfig(data="d", out="o", epochs=3, lr=0.2, augment=False, sizes=[[0.1, 0.2], [0.4]])
    argv = jobs.config_to_argv(cfg)
    assert argv[:1] == ["train"] and "--no-augment" in argv
    assert argv[argv.index("--lr") + 1] == "0.2" and argv[argv.index("--sizes") + 1] == "0.1,0.2;0.4"
    assert "--momentum" not in argv and "--input-size" not in argv  # left to the architecture's defaults
    from ssd.cli.main import build_parser
    args = build_parser().parse_args(argv)
    assert args.lr == 0.2 and args.sizes == [[0.1, 0.2], [0.4]] and args.augment is False and args.momentum is None


def test_every_training_setting_survives_the_trip_through_the_command_line():
    """The app starts and resumes runs as ``python -m ssd train ARGV``: a setting the command cannot take
    made the job fail ('unrecognized arguments: --warmup-iters'), one it drops (``cache=False``)
    trained otherwise than asked. Each field set to a value other than its default comes back."""
    import dataclasses

    from ssd.cli.main import build_parser

    base = TrainConfig(data="d", out="o")
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("data", "out", "command"):
            continue
        value = getattr(base, f.name)
        other = (not value if isinstance(value, bool) else [[0.1, 0.2], [0.4]] if f.name in ("sizes", "ratios")
                 else value + 1 if isinstance(value, int) else value / 2 if isinstance(value, float) else None)
        if other is None:
            continue                              # a text choice: covered by the round trip above
        argv = jobs.config_to_argv(dataclasses.replace(base, **{f.name: other}))
        args = build_parser().parse_args(argv)
        assert getattr(args, f.name, None) == other, (f.name, argv)


def test_download_job_runs_the_cli_in_the_background_and_reports_offline(tmp_path, closed_port):
    out = tmp_path / "data" / "pikachu"
    info = jobs.start_data_job(str(tmp_path / "data"), "pikachu", str(out),
                               ["--base-url", f"http://127.0.0.1:{closed_port}/"])
    assert info.argv[:3] == ["data", "pikachu", "--out"]
    with pytest.raises(JobError, match="already running"):
        if jobs.current_data_job(str(tmp_path / "data")) is None:
            raise JobError("already running (finished before the second start; nothing to race)")
        jobs.start_data_job(str(tmp_path / "data"), "banana", str(tmp_path / "data" / "banana"))
    deadline = time.time() + 60
    while jobs.current_data_job(str(tmp_path / "data")) is not None and time.time() < deadline:
        time.sleep(0.2)
    assert jobs.current_data_job(str(tmp_path / "data")) is None  # the lock is released when it ends
    log = jobs.read_log_tail(str(out), 20, jobs.DATA_LOG_FILE)
    assert "error:" in log and "train.rec" in log and "Traceback" not in log
    with pytest.raises(JobError, match="unknown dataset"):
        jobs.start_data_job(str(tmp_path / "data"), "imagenet", str(out))


def _start_event(run_dir, pid):
    import socket

    from ssd.training.events import EventLog

    log = EventLog(str(run_dir))
    log.emit("start", pid=pid, host=socket.gethostname(), config={"epochs": 2})
    log.emit("progress", epoch=1, epochs=2, iter=3, iters=10, global_iter=3, total_iters=20, loss=1.5,
             samples_per_s=4.0, eta_s=30.0, lr=0.01)
    return log


def test_a_run_started_outside_the_app_is_followed_while_its_process_lives(tmp_path, monkeypatch):
    """`python -m ssd train` or rank 0 of `launch`: no job lock, but its start event names its process."""
    import os
    import subprocess
    import sys

    root = tmp_path / "models"
    log = _start_event(root / "cli-run", os.getpid())            # this process: alive
    status = jobs.run_status(str(root / "cli-run"))
    assert status.state == "external" and status.progress["iter"] == 3
    assert jobs.external_run(str(root)) == str(root / "cli-run")

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _start_event(root / "dead-run", gone.pid)                      # its process has ended: killed?
    assert jobs.run_status(str(root / "dead-run")).state == "interrupted"

    log.emit("done", best={}, epochs_done=2)
    assert jobs.run_status(str(root / "cli-run")).state == "done" and jobs.external_run(str(root)) is None


def test_train_page_shows_a_run_started_outside_the_app(app_env, tmp_path):
    import os

    from streamlit.testing.v1 import AppTest

    _start_event(os.path.join(app_env["models"], "zz-cli-run"), os.getpid())
    try:
        at = AppTest.from_file(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py"),
                               default_timeout=120).run()
        at.switch_page("app_pages/train.py").run()
        assert not at.exception
        shown = " ".join(m.value for m in at.markdown)
        assert "training outside the app" in shown and "zz-cli-run" in shown
    finally:
        import shutil

        shutil.rmtree(os.path.join(app_env["models"], "zz-cli-run"), ignore_errors=True)


def test_a_lock_being_written_is_not_taken_for_a_stale_one(tmp_path):
    """``launch`` creates the lock (O_EXCL), starts the process, then writes its pid. A poll from any
    tab in between read the empty lock as damaged and deleted it: the job ran unlocked and a second
    Start launched a second job. A fresh unreadable lock means "starting"; only an old one is stale."""
    import os

    lock = tmp_path / jobs.training.LOCK_FILE
    lock.write_text("")
    assert jobs.current_job(str(tmp_path)) is None and lock.exists()
    with pytest.raises(JobError, match="starting right now"):
        jobs.start_job(str(tmp_path), TrainConfig(data=str(tmp_path), out=str(tmp_path / "second")))
    old = time.time() - 600
    os.utime(lock, (old, old))                     # a launcher killed mid-write long ago
    assert jobs.current_job(str(tmp_path)) is None and not lock.exists()
