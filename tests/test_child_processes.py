"""The processes of a distributed run start in their own process group and die with the launcher,
without a ``preexec_fn``.

Why the last part: a ``preexec_fn`` makes Python fork (copying the launcher's page tables, MXNet
loaded) instead of vfork/posix_spawn; under memory pressure the distributed tests' scheduler
failed to start with "Cannot allocate memory". These tests start ``sleep``, not MXNet.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc")


@pytest.fixture
def popen_calls(monkeypatch):
    """Every ``subprocess.Popen`` call's keyword arguments (the real Popen still runs)."""
    calls = []
    real = subprocess.Popen

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    return calls


def _gone(pid: int, within_s: float = 10.0) -> bool:
    from ssd.base.processes import pid_alive

    end = time.time() + within_s
    while time.time() < end:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_cluster_node_gets_its_own_group_without_preexec_fn(popen_calls):
    from ssd.training.cluster import Cluster

    cluster = Cluster(1, 1, ["--help"])
    try:
        node = cluster._spawn("scheduler", 0, ["sleep", "30"], dict(os.environ), "127.0.0.1")
        assert popen_calls and all(c.get("preexec_fn") is None for c in popen_calls), popen_calls
        assert os.getpgid(node.proc.pid) == node.proc.pid      # its own group: stop() kills it whole
        assert os.getsid(node.proc.pid) == node.proc.pid
    finally:
        cluster.stop(grace_s=1)
    assert node.proc.returncode is not None


def test_a_child_dies_with_its_launcher(tmp_path):
    """SIGKILL to the launcher (no handler, no cleanup runs) still takes its child down."""
    code = ("import sys, time\nfrom ssd.base.processes import start_child\n"
            "p = start_child(['sleep', '60'])\nprint(p.pid, flush=True)\ntime.sleep(60)\n")
    launcher = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    try:
        child = int(launcher.stdout.readline())
        assert os.getpgid(child) == child
        assert not _gone(child, 0.3), "the child should run while its launcher does"
    finally:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
        launcher.stdout.close()
    survived = not _gone(child)
    if survived:
        os.kill(child, signal.SIGKILL)
    assert not survived, "the child outlived its launcher"


def test_a_missing_program_is_an_oserror_as_popen_gives():
    from ssd.base.processes import start_child

    with pytest.raises(FileNotFoundError):
        start_child([os.path.join(os.sep, "nonexistent", "python")])
