"""Distributed training on MXNet's parameter server, on loopback (127.0.0.1) only.

The run tests start real processes: 1 scheduler, 1 server and 2 workers training TinySSD on 16
synthetic 64×64 images. Workers write a trace (``$SSD_DIST_TRACE_DIR``): their shard, the images
they read and their trainable parameters right after the start and after the last step.
"""
from __future__ import annotations

import os
import signal
import stat
import sys
import time

import numpy as np
import pytest

from conftest import REPO_ROOT

N_TRAIN = 16


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> str:
    from ssd.data.synthetic import generate

    path = str(tmp_path_factory.mktemp("dist") / "synth16")
    generate(path, num_train=N_TRAIN, num_val=4, seed=0, size=64)
    return path


def _train_args(data: str, out: str, epochs: int = 1, *extra: str):
    return ["train", "--data", data, "--out", out, "--epochs", str(epochs), "--batch-size", "4",
            "--input-size", "64", "--device", "cpu", "--lr", "0.01", "--lr-schedule", "constant",
            "--limit-val", "2", *extra]


def _params(path: str):
    import mxnet as mx

    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def _check_workers_agree(trace_dir: str, expected_steps: int, n_train: int = N_TRAIN):
    """Both workers took the same steps, read only their own disjoint shard, and end identical."""
    from ssd.training.distributed import trace_of

    t0, t1 = trace_of(trace_dir, 0), trace_of(trace_dir, 1)
    assert t0["workers"] == t1["workers"] == 2
    assert t0["steps"] == t1["steps"] == expected_steps
    assert set(t0["shard"]).isdisjoint(t1["shard"])
    assert sorted(t0["shard"] + t1["shard"]) == list(range(n_train))
    for t in (t0, t1):
        assert set(t["seen"]) <= set(t["shard"]) and t["seen"], "a worker read images outside its shard"
    for when in ("start", "end"):     # right after the start (rank 0's weights everywhere), after the last step
        s0, s1 = (_params(os.path.join(trace_dir, f"rank{r}.{when}.params")) for r in (0, 1))
        assert s0.keys() == s1.keys() and len(s0) > 10
        for k in s0:
            assert np.array_equal(s0[k], s1[k]), f"{k} differs between the workers at the {when}"
    return _params(os.path.join(trace_dir, "rank0.end.params"))


class _SummingServer:
    """A parameter server's sync round for workers run as threads: every call blocks until all workers
    made it, then each gets the sum (float32, in rank order) of what they sent."""

    def __init__(self, workers: int) -> None:
        import threading

        self.slots = [None] * workers
        self.barrier = threading.Barrier(workers, timeout=20)

    def exchange(self, rank: int, value):
        self.slots[rank] = value
        self.barrier.wait()
        total = None if value is None else np.sum(np.stack(self.slots), axis=0, dtype=np.float32)
        self.barrier.wait()                   # nobody overwrites a slot before all have read the sum
        return total


class _FakeDistKV:
    """What the distributed helpers use of a ``dist_sync`` kvstore: ``init`` (a barrier) and
    ``pushpull`` (the servers' sum over the workers)."""

    type = "dist_sync"

    def __init__(self, server: _SummingServer, rank: int) -> None:
        self.server, self.rank, self.num_workers, self.keys = server, rank, len(server.slots), []

    def init(self, key, value) -> None:
        self.keys.append(key)
        self.server.exchange(self.rank, None)

    def pushpull(self, key, value, out=None, priority=0) -> None:
        self.keys.append(key)
        (value if out is None else out)[:] = self.server.exchange(self.rank, value.asnumpy())


def _on_two_workers(work):
    """``work(member, params)`` on two worker threads whose small networks start different (rank 1's
    as MXNet's initialization left it in a failed run: zeros); returns ``[(params, error), …]`` by rank."""
    import threading

    import mxnet as mx
    from mxnet.gluon import nn

    from ssd.training.distributed import Membership

    server, results = _SummingServer(2), [None, None]

    def worker(rank: int) -> None:
        net = nn.HybridSequential()
        net.add(nn.Conv2D(4, 3), nn.BatchNorm(), nn.Dense(3))
        net.initialize(mx.init.Xavier() if rank == 0 else mx.init.Zero())
        net(mx.nd.zeros((1, 2, 5, 5)))
        params = list(net.collect_params().values())
        if rank == 0:   # values an inexact sum would change: tiny, huge, negative zero
            params[0].set_data(mx.nd.array(np.array([1e-40, -0.0, 3e38, -1.5e-7], np.float32).repeat(
                params[0].data().size // 4 + 1)[:params[0].data().size].reshape(params[0].shape)))
        try:
            work(Membership(rank, 2, _FakeDistKV(server, rank)), params)
            results[rank] = (params, None)
        except Exception as err:  # noqa: BLE001 - the test reads it
            results[rank] = (params, err)

    threads = [threading.Thread(target=worker, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_every_worker_starts_from_rank_0s_weights_exactly():
    """MXNet 1.9's own initialization can leave a worker with other weights (its first pull answered
    after the first gradient sum replaced the weights on the server): the explicit broadcast makes
    every worker's parameters rank 0's, bit for bit, whatever a worker held before."""
    from ssd.training.distributed import broadcast_from_rank0

    before = {}

    def work(member, params):
        if member.rank == 0:
            before.update({p.name: p.data().asnumpy().copy() for p in params})
        broadcast_from_rank0(member, params)

    (p0, e0), (p1, e1) = _on_two_workers(work)
    assert e0 is None and e1 is None, (e0, e1)
    assert len(p0) == 8     # running mean and variance too: both workers start with the same statistics
    for a, b in zip(p0, p1):
        assert np.array_equal(a.data().asnumpy(), before[a.name]), f"rank 0's {a.name} changed"
        assert np.array_equal(b.data().asnumpy(), before[a.name]), f"rank 1's {b.name} is not rank 0's"
    assert p1[0].data().asnumpy().ravel()[0] == np.float32(1e-40), "the sum must be exact"


def test_workers_whose_weights_differ_stop_the_run_naming_the_parameter():
    """The check at each epoch's end: every worker learns of a difference (one exchange carries all
    workers' fingerprints), and all stop with the same error naming the first parameter that differs."""
    from ssd.training.distributed import DistributedError, check_in_step

    def agree(member, params):
        check_in_step(member, params, "after epoch 1")

    def differ(member, params):
        if member.rank == 0:    # both start equal, then one weight of rank 0 moves by one float step
            w = params[-2].data().asnumpy()
            w.ravel()[3] = np.nextafter(w.ravel()[3], np.float32(1))
            params[-2].set_data(mx_array(w))
        check_in_step(member, params, "after epoch 3")

    def mx_array(a):
        import mxnet as mx

        return mx.nd.array(a, dtype=a.dtype)

    from ssd.training.distributed import broadcast_from_rank0

    results = _on_two_workers(lambda m, p: (broadcast_from_rank0(m, p), agree(m, p)))
    assert [err for _, err in results] == [None, None]
    results = _on_two_workers(lambda m, p: (broadcast_from_rank0(m, p), differ(m, p)))
    names = [p.name for p in results[0][0]]
    for _, err in results:
        assert isinstance(err, DistributedError), err
        assert "after epoch 3" in str(err) and names[-2] in str(err) and "--resume" in str(err)
        assert "worker 1 of 2" in str(err) and "worker 2 of 2" in str(err)


def _fake_ssh(folder: str) -> str:
    """An ``ssh`` that runs the remote command here (its last argument), for the hosts-file mode."""
    path = os.path.join(folder, "ssh")
    with open(path, "w") as fh:
        fh.write('#!/bin/bash\nfor last; do :; done\nexec bash -c "$last"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return folder


def test_two_workers_train_one_model_then_resume_over_ssh(small_set, tmp_path, monkeypatch):
    """Loopback run, then ``--resume`` of the same run through the hosts-file (ssh) path."""
    from ssd.cli.main import main
    from ssd.store import read_meta
    from ssd.training.events import read_events

    monkeypatch.chdir(REPO_ROOT)
    models = tmp_path / "models"
    out, trace = str(models / "dist-tiny"), str(tmp_path / "trace")
    monkeypatch.setenv("SSD_DIST_TRACE_DIR", trace)
    t = time.time()
    assert main(["launch", "--workers", "2", "--servers", "1", "--timeout", "120", "--",
                 *_train_args(small_set, out, 1)]) == 0
    first = time.time() - t
    p_epoch1 = _check_workers_agree(trace, expected_steps=2)       # 8 images per shard, batch 4
    assert os.listdir(models) == ["dist-tiny"], "exactly one model folder"
    meta = read_meta(out)
    dist = meta["training"]["distributed"]
    assert dist["workers"] == 2 and dist["global_batch"] == 8 and dist["shard_size"] == N_TRAIN // 2
    events = read_events(out)
    assert [e["type"] for e in events].count("start") == 1, "only rank 0 writes the event log"
    epoch = [e for e in events if e["type"] == "epoch"][0]
    assert epoch["lr"] == pytest.approx(0.02), "the learning rate follows the global batch (2 × 0.01)"
    assert "val_map" in epoch and os.path.isfile(os.path.join(out, "model.params"))

    # --resume: both workers load rank 0's checkpoint; this time the nodes start through `ssh`
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\n# a comment\n")
    monkeypatch.setenv("PATH", _fake_ssh(str(tmp_path)) + os.pathsep + os.environ["PATH"])
    assert main(["launch", "--workers", "2", "--servers", "1", "--hosts", str(hosts), "--host-ip", "127.0.0.1",
                 "--timeout", "120", "--", *_train_args(small_set, out, 2, "--resume")]) == 0
    p_epoch2 = _check_workers_agree(trace, expected_steps=4)
    assert any(not np.array_equal(p_epoch1[k], p_epoch2[k]) for k in p_epoch1), "epoch 2 trained"
    starts = [e for e in read_events(out) if e["type"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_from"] == 1
    assert [h["epoch"] for h in read_meta(out)["metrics"]["history"]] == [1, 2]
    assert os.listdir(models) == ["dist-tiny"]
    print(f"first run {first:.1f} s")
    _train_page_shows(monkeypatch, str(models), str(tmp_path))


def _train_page_shows(monkeypatch, models: str, data: str) -> None:
    """The Train page follows a distributed run like any other: rank 0's event log."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SSD_MODELS_DIR", models)
    monkeypatch.setenv("SSD_DATA_DIR", data)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    at = at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Run **dist-tiny** finished" in s.value for s in at.success)
    assert next(m.value for m in at.metric if m.label == "Epochs done") == "2/2"


def test_a_zoo_model_trains_on_two_workers(tmp_path, monkeypatch):
    """GluonCV's plan gets its shard too: ssd_512_mobilenet1.0 at 128 px, one step per worker."""
    from ssd.cli.main import main
    from ssd.data.synthetic import generate
    from ssd.store import read_meta

    monkeypatch.chdir(REPO_ROOT)
    data = str(tmp_path / "synth8")
    generate(data, num_train=8, num_val=2, seed=0, size=128)
    out, trace = str(tmp_path / "models" / "zoo"), str(tmp_path / "trace")
    monkeypatch.setenv("SSD_DIST_TRACE_DIR", trace)
    assert main(["launch", "--workers", "2", "--timeout", "180", "--", "train", "--data", data, "--out", out,
                 "--model", "ssd_512_mobilenet1.0", "--epochs", "1", "--batch-size", "2", "--input-size", "128",
                 "--device", "cpu", "--no-augment", "--limit-val", "1", "--max-iters", "1"]) == 0
    _check_workers_agree(trace, expected_steps=1, n_train=8)
    dist = read_meta(out)["training"]["distributed"]
    assert dist["lr"] == pytest.approx(2 * dist["lr_configured"]) and dist["shard_size"] == 4
    assert os.listdir(tmp_path / "models") == ["zoo"]


def _our_processes(port: int):
    """Live processes (ours) whose environment names this run's scheduler port."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"DMLC_PS_ROOT_PORT={port}".encode() in env and state != "Z":
            found.append(int(pid))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_worker_stops_the_run_with_an_error(small_set, tmp_path, monkeypatch):
    from ssd.training.cluster import Cluster, LaunchError
    from ssd.training.events import read_events

    monkeypatch.chdir(REPO_ROOT)
    out = str(tmp_path / "models" / "doomed")
    run = Cluster(2, 1, _train_args(small_set, out, 200) + ["--kvstore", "dist_sync"]).start()
    try:
        deadline = time.time() + 90
        while not any(e["type"] == "progress" for e in read_events(out)):
            assert time.time() < deadline, "the run never started training"
            assert all(n.proc.poll() is None for n in run.nodes), [list(n.tail) for n in run.nodes]
            time.sleep(0.2)
        assert len(_our_processes(run.port)) == 4
        victim = [n for n in run.nodes if n.role == "worker"][1]
        os.kill(victim.proc.pid, signal.SIGKILL)
        t = time.time()
        with pytest.raises(LaunchError) as err:
            run.wait(timeout=60)
        assert time.time() - t < 20, "the run should end promptly, not hang"
    finally:
        run.stop()
    msg = str(err.value)
    assert victim.rank is not None, "a training worker has reported its rank"
    assert f"worker {victim.rank + 1} of 2 (pid {victim.proc.pid}, 127.0.0.1) was killed by SIGKILL" in msg
    assert all(n.proc.returncode is not None for n in run.nodes)
    assert _our_processes(run.port) == [], "no orphan process may remain"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_to_the_launcher_stops_every_process(small_set, tmp_path):
    import re
    import subprocess
    import threading

    from ssd.training.events import read_events

    out = str(tmp_path / "models" / "stopped")
    launcher = subprocess.Popen([sys.executable, "-m", "ssd", "launch", "--workers", "2", "--timeout", "120", "--",
                                 *_train_args(small_set, out, 200)], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(launcher.stderr), daemon=True).start()
    try:
        deadline = time.time() + 90
        while not any(e["type"] == "progress" for e in read_events(out)):
            assert time.time() < deadline and launcher.poll() is None, "".join(lines)
            time.sleep(0.2)
        port = int(re.search(r"scheduler 127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
        assert len(_our_processes(port)) == 4
        launcher.send_signal(signal.SIGTERM)
        rc = launcher.wait(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    time.sleep(0.5)
    assert rc == 2 and "received SIGTERM" in "".join(lines)
    assert _our_processes(port) == [], "no orphan process may remain"


def test_shards_are_equal_disjoint_and_deterministic():
    from ssd.base.errors import SSDError
    from ssd.data.dataset import InMemoryDataset
    from ssd.data.shard import Shard, shard_indices

    shards = [shard_indices(10, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]                 # the 10th image is left out
    assert sorted(sum(shards, [])) == list(range(9))
    assert shards == [shard_indices(10, r, 3) for r in range(3)]
    with pytest.raises(SSDError, match="too few"):
        shard_indices(1, 0, 2)
    imgs = [np.full((4, 4, 3), i, np.uint8) for i in range(5)]
    ds = InMemoryDataset(imgs, [np.array([[0, .1, .1, .5, .5]], np.float32)] * 5, ["a"])
    shard = Shard(ds, [1, 3])
    assert len(shard) == 2 and shard[1][0][0, 0, 0] == 3 and shard.seen == {3}
    assert len(shard.labels()) == 2
    with pytest.raises(IndexError):
        shard[2]


def test_launch_runs_train_with_a_distributed_kvstore():
    from ssd.base.errors import SSDError
    from ssd.cli.launch import worker_argv

    assert worker_argv(["--", "train", "--data", "d"]) == ["train", "--data", "d", "--kvstore", "dist_sync"]
    assert worker_argv(["train", "--kvstore=dist_sync_device"])[-1] == "--kvstore=dist_sync_device"
    with pytest.raises(SSDError, match="not a distributed kvstore"):
        worker_argv(["train", "--kvstore", "device"])
    with pytest.raises(SSDError, match="runs a training command"):
        worker_argv(["detect", "x.jpg"])


def test_hosts_file_lines(tmp_path):
    from ssd.training.cluster import LaunchError, read_hosts

    f = tmp_path / "hosts"
    f.write_text("10.0.0.1\n10.0.0.2:2222 slots=4\n\n# spare\n")
    assert read_hosts(str(f)) == [("10.0.0.1", "22"), ("10.0.0.2", "2222")]
    f.write_text("bad;host\n")
    with pytest.raises(LaunchError, match="cannot read host line"):
        read_hosts(str(f))


def test_dist_kvstore_without_the_launcher_is_a_clear_error(small_set, tmp_path, monkeypatch):
    from ssd.training.config import TrainConfig
    from ssd.training.distributed import DistributedError
    from ssd.training.loop import train

    monkeypatch.delenv("DMLC_ROLE", raising=False)
    cfg = TrainConfig(data=small_set, out=str(tmp_path / "m"), epochs=1, kvstore="dist_sync", device="cpu")
    with pytest.raises(DistributedError, match="python -m ssd launch"):
        train(cfg, install_signal_handlers=False)
    assert not os.path.exists(cfg.out)


def test_a_host_with_control_characters_is_not_a_host(tmp_path):
    from ssd.training.cluster import LaunchError, read_hosts

    f = tmp_path / "hosts"
    f.write_text("node\x1b[1ma\n")
    with pytest.raises(LaunchError, match="cannot read host line"):
        read_hosts(str(f))


def test_what_a_node_prints_is_echoed_with_its_control_characters_escaped():
    """Over ssh a worker's output includes whatever the remote host prints (a login banner, a shell
    profile): an escape sequence there would retitle or clear the person's terminal."""
    import io
    from types import SimpleNamespace

    from ssd.training.cluster import Cluster, Node

    echo = io.StringIO()
    proc = SimpleNamespace(stdout=io.BytesIO(b"epoch 1 \x1b]0;owned\x07\x1b[2J done\r\n"), pid=1)
    node = Node("worker", 0, proc)
    Cluster._pump(SimpleNamespace(echo=echo), node)
    assert echo.getvalue() == "[worker, pid 1] epoch 1 \\x1b]0;owned\\x07\\x1b[2J done\n"
    assert "\x1b" not in node.tail[-1]


def test_a_failed_run_prints_the_workers_last_lines_one_per_line(monkeypatch, capsys):
    """The launcher's error names the failed worker and shows its last output lines: printed with
    literal ``\\n`` escapes it was one unreadable line. The lines stay escaped (``_pump``)."""
    from ssd.cli.main import main
    from ssd.training import cluster

    def failing(run, timeout=None):
        raise cluster.LaunchError("worker 2 of 2 (pid 7, 127.0.0.1) was killed by SIGKILL; stopped the run. "
                                  "Its last output:\n    epoch 1 \\x1b[2J\n    epoch 2")

    monkeypatch.setattr(cluster, "run", failing)
    rc = main(["launch", "--workers", "2", "--", "train", "--data", "d", "--out", "m"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "\\n" not in err
    assert "Its last output:\n    epoch 1 \\x1b[2J\n    epoch 2\n" in err


def _pumped(output: bytes, pid: int = 4321):
    import io
    from types import SimpleNamespace

    from ssd.training.cluster import Cluster, Node

    echo = io.StringIO()
    node = Node("worker", 0, SimpleNamespace(stdout=io.BytesIO(output), pid=pid))
    Cluster._pump(SimpleNamespace(echo=echo), node)
    return node, echo.getvalue().splitlines()


def test_a_workers_prefix_uses_the_rank_it_reports_not_its_start_order():
    """The launcher started this worker first, but the parameter server made it rank 1: its own
    lines say "worker 2 of 2", so from then on the launcher's prefix says so too (with the pid the
    launcher knows it by), never "worker 0"."""
    from ssd.training.distributed import Membership, joined_line

    joined = joined_line(Membership(rank=1, workers=2)).encode()
    node, lines = _pumped(b"mxnet warming up\n" + joined + b"\ntraining on cpu, worker 2 of 2 (8 images)\n")
    assert lines[0] == "[worker, pid 4321] mxnet warming up"
    assert lines[1].startswith("[worker 2 of 2, pid 4321] worker 2 of 2 ")
    assert lines[2] == "[worker 2 of 2, pid 4321] training on cpu, worker 2 of 2 (8 images)"
    assert node.name == "worker 2 of 2"
    assert not any("worker 0" in line or "worker 1" in line for line in lines)


def test_a_failed_worker_is_named_by_its_pid_and_its_reported_rank():
    from types import SimpleNamespace

    from ssd.training.cluster import Cluster
    from ssd.training.distributed import Membership, joined_line

    node, _ = _pumped(joined_line(Membership(rank=0, workers=2)).encode() + b"\nepoch 1\n", pid=77)
    node.proc.returncode = -9
    msg = str(Cluster._failure(SimpleNamespace(workers=2, servers=1), node))
    assert msg.startswith("worker 1 of 2 (pid 77, 127.0.0.1) was killed by SIGKILL"), msg
    silent, _ = _pumped(b"Traceback: no module named mxnet\n", pid=78)
    silent.proc.returncode = 1
    msg = str(Cluster._failure(SimpleNamespace(workers=2, servers=1), silent))
    assert msg.startswith("a worker (pid 78, 127.0.0.1; it had not reported its rank yet) exited with status 1")


def test_a_banner_line_that_looks_like_a_rank_is_not_taken_for_one():
    node, _ = _pumped(b"welcome: worker 2 of 2 joined the parameter server\n")
    assert node.rank is None
