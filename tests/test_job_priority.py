"""The app's background jobs run at a lower CPU priority than the server; a person's CLI run does not.

Why it matters: a job used every core at the server's priority, and the Detect page's work waited
behind it (docs/PERFORMANCE.md, "The app while a job runs").
"""
import os
import subprocess
import sys
import time
from typing import Dict

import pytest

from ssd import jobs
from ssd.base.priority import JOB_NICE, JOB_NICE_ENV, requested_level
from ssd.training.config import TrainConfig
from ssd.training.events import read_events

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _threads(pid: int) -> Dict[str, int]:
    """``{"tid name": nice}`` for every thread of ``pid``."""
    seen = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as fh:
                name = fh.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                nice = int(fh.read().rsplit(")", 1)[1].split()[16])
        except (OSError, IndexError, ValueError):
            continue
        seen[f"{tid} {name}"] = nice
    return seen


def _threads_once_training(pid: int, run_dir: str, log) -> Dict[str, int]:
    """The job's threads once it reports training progress: by then it runs its batch loader
    thread (ssd/data/batches.py) and MXNet's engine and OpenMP threads, all started by the job."""
    deadline = time.time() + 120
    while time.time() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            pytest.fail("the job ended before it trained:\n" + log())
        if any(e.get("type") == "progress" for e in read_events(run_dir)):
            return _threads(pid)
        time.sleep(0.2)
    pytest.fail("the job never reported progress:\n" + log())


def _autogroup_nice(pid: int):
    """The nice value of ``pid``'s session scheduling group, None without autogroups."""
    try:
        with open(f"/proc/{pid}/autogroup") as fh:
            return int(fh.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def _config(synth_dir: str, out: str) -> TrainConfig:
    return TrainConfig(data=synth_dir, out=out, epochs=500, batch_size=8, device="cpu", limit_val=4, seed=0)


@pytest.fixture
def own_nice() -> int:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    if own >= JOB_NICE:
        pytest.skip(f"the tests already run at nice {own}: a job cannot be seen to run lower")
    return own


def test_a_job_the_app_launches_runs_every_thread_at_the_job_priority(synth_dir, tmp_path, monkeypatch, own_nice):
    monkeypatch.delenv(JOB_NICE_ENV, raising=False)
    models_root = str(tmp_path / "models")
    cfg = _config(synth_dir, str(tmp_path / "models" / "job"))
    info = jobs.start_job(models_root, cfg)          # the Train page's call
    try:
        threads = _threads_once_training(info.pid, cfg.out, lambda: jobs.read_log_tail(cfg.out, 20, jobs.LOG_FILE))
        group = _autogroup_nice(info.pid)
    finally:
        jobs.stop_job(models_root, timeout=30)
    assert len(threads) >= 3, threads               # main, batch loader, MXNet's own
    assert set(threads.values()) == {JOB_NICE}, threads
    if group is not None:                          # sessions share the CPU as groups: the job's is lowered too
        assert group == JOB_NICE
    assert os.getpriority(os.PRIO_PROCESS, 0) == own_nice   # the launcher (the server) stays where it was


def test_the_cli_run_by_a_person_keeps_the_priority_it_was_given(synth_dir, tmp_path, own_nice):
    env = {k: v for k, v in os.environ.items() if k != JOB_NICE_ENV}
    out = str(tmp_path / "cli-run")
    argv = jobs.config_to_argv(_config(synth_dir, out))
    log = tmp_path / "cli.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "ssd"] + argv, cwd=REPO, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        threads = _threads_once_training(proc.pid, out, lambda: log.read_text(errors="replace")[-2000:])
    finally:
        proc.terminate()
        proc.wait(30)
    assert len(threads) >= 3, threads
    assert set(threads.values()) == {own_nice}, threads


def test_the_level_is_set_not_added_so_a_jobs_own_ssd_children_stay_at_it():
    """A cluster's workers are ``python -m ssd`` children of a job: they inherit the variable and the
    job's nice value, and must end at the same level, not 10 lower again."""
    code = ("import os; from ssd.base.priority import lower_from_environment as f; "
            f"e = {{'{JOB_NICE_ENV}': '{JOB_NICE}'}}; print(f(e), f(e), os.getpriority(os.PRIO_PROCESS, 0))")
    env = {k: v for k, v in os.environ.items() if k != JOB_NICE_ENV}
    own = os.getpriority(os.PRIO_PROCESS, 0)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    level = max(own, JOB_NICE)
    assert done.stdout.split() == [str(level)] * 3


@pytest.mark.parametrize("raw, level", [("10", 10), (" 5 ", 5), ("99", 19), ("-5", 0), ("", None), ("x", None)])
def test_the_variable_is_read_as_a_level_within_what_linux_allows(raw, level):
    assert requested_level({JOB_NICE_ENV: raw}) == level
    assert requested_level({}) is None
