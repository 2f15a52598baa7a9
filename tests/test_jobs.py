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
