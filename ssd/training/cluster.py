"""The processes of a distributed run: one scheduler, S servers and N workers (ps-lite).

MXNet's parameter server is three kinds of process that find each other through the
scheduler's address in the ``DMLC_*`` environment (``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``,
``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER``). The scheduler and the servers
are ``python -c "import mxnet"`` (importing MXNet with that role runs the node and exits when
the workers are done); the workers run ``python -m ssd train … --kvstore dist_sync``.

``Cluster`` starts them on this machine (loopback) or, from a hosts file, over ssh the way
MXNet's ``tools/launch.py`` (``dmlc_tracker.ssh``) does, and watches them:

* every process gets its own process group (and, on Linux, dies with the launcher), and the
  launcher kills whole groups, so no orphan stays behind — not even a data-loader child;
* the first worker that fails (non-zero exit or a signal) ends the run: the others are blocked
  in a gradient exchange that will never complete, so they are terminated, then killed, and
  ``LaunchError`` names the worker, its exit status and its last output lines;
* a worker is named by its rank, as it names itself ("worker 2 of 2"), once it has printed
  ``distributed.joined_line``; before that by its pid alone;
* SIGINT/SIGTERM to the launcher do the same (the last complete epoch stays resumable);
* an optional overall timeout bounds the run.

The wheel's tracker (``dmlc_tracker``) is used for what it knows: the host address the
workers can reach and the ssh command line. It is imported with ``Thread.isAlive`` restored,
which Python 3.9 removed and which its module still calls.
"""
from __future__ import annotations

import collections
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Sequence, TextIO

from ssd.base.processes import start_child
from ssd.base.text import terminal_safe
from ssd.training.distributed import DistributedError, reported_rank, worker_label

TAIL_LINES = 12          # output lines kept per process for the error message
GRACE_S = 5.0            # SIGTERM → SIGKILL
SERVER_EXIT_S = 30.0     # how long the scheduler and servers get to exit after the workers
POLL_S = 0.2
NODE_CODE = "import mxnet"   # with DMLC_ROLE=scheduler/server, importing MXNet runs the node


class LaunchError(DistributedError):
    """The distributed run failed: which process, how, and its last output (one line each,
    escaped by ``Cluster._pump``)."""

    multiline = True


@dataclass
class Node:
    """One process of the run and the tail of what it printed."""

    role: str                  # scheduler | server | worker
    index: int
    proc: subprocess.Popen
    host: str = "127.0.0.1"
    tail: Deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    rank: Optional[int] = None     # a worker's, once it has printed it (``distributed.joined_line``)
    workers: int = 0

    @property
    def name(self) -> str:
        """A worker is named by the rank the parameter server gave it, as its own lines name it; the
        order the launcher started it in is another numbering, so it is never shown."""
        if self.role == "worker":
            return "worker" if self.rank is None else worker_label(self.rank, self.workers)
        return self.role if self.role == "scheduler" else f"{self.role} {self.index}"

    @property
    def prefix(self) -> str:
        """What the launcher puts before each echoed line: the name and the pid an error would name."""
        return f"[{self.name}, pid {self.proc.pid}]" if self.role == "worker" else f"[{self.name}]"

    def described(self) -> str:
        """Name, pid and host, for an error message."""
        if self.role == "worker" and self.rank is None:
            return f"a worker (pid {self.proc.pid}, {self.host}; it had not reported its rank yet)"
        return f"{self.name} (pid {self.proc.pid}, {self.host})"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now, for the scheduler."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def read_hosts(path: str) -> List[tuple]:
    """``(host, ssh port)`` per line of an MXNet/MPI-style hosts file (``host[:port] [slots=N]``)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:      # a byte-order mark (Notepad) is not part of a host
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise LaunchError(f"cannot read the hosts file {path}: {getattr(err, 'strerror', None) or err}") from None
    hosts = []
    for raw in lines:
        line = raw.split("#", 1)[0].split("slots=", 1)[0].strip()
        if not line:
            continue
        host, _, port = line.partition(":")
        if not port:
            port = "22"
        # a host ssh would read as an option ("-oProxyCommand=…" runs a program here) is not a host
        if not port.isdigit() or not 0 < int(port) < 65536 or not host or host.startswith("-") \
                or not host.isprintable() or any(c.isspace() or c in "'\";`$" for c in host):
            raise LaunchError(f"{path}: cannot read host line {raw!r} (expected host or host:port, port 1-65535)")
        hosts.append((host, port))
    if not hosts:
        raise LaunchError(f"{path} lists no hosts")
    return hosts


def dmlc_tracker():
    """The wheel's ``dmlc_tracker`` package, importable and usable on Python ≥ 3.9."""
    if not hasattr(threading.Thread, "isAlive"):
        threading.Thread.isAlive = threading.Thread.is_alive  # removed in 3.9, still called by the tracker
    import dmlc_tracker.ssh  # noqa: F401  (the ssh submitter: get_env)
    import dmlc_tracker.tracker  # noqa: F401

    return dmlc_tracker


class Cluster:
    """A scheduler, ``servers`` servers and ``workers`` workers running ``worker_argv``; see module doc."""

    def __init__(self, workers: int, servers: int, worker_argv: Sequence[str], hosts: Optional[str] = None,
                 host_ip: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 python: str = sys.executable, cwd: Optional[str] = None, echo: Optional[TextIO] = None) -> None:
        if workers < 1:
            raise LaunchError("--workers must be at least 1")
        if servers < 1:
            raise LaunchError("--servers must be at least 1 (the parameter server sums the gradients)")
        self.workers, self.servers, self.worker_argv = workers, servers, list(worker_argv)
        self.hosts = read_hosts(hosts) if hosts else None
        self.python, self.cwd = python, cwd or os.getcwd()
        self.extra_env = dict(env or {})
        self.echo = echo
        self.nodes: List[Node] = []
        self._lock = threading.Lock()
        self._stopped = False
        self.root = ("127.0.0.1" if self.hosts is None
                     else host_ip or dmlc_tracker().tracker.get_host_ip("auto"))
        self.port = free_port("127.0.0.1" if self.hosts is None else "")

    # ------------------------------------------------------------------ environment and commands
    def base_env(self) -> Dict[str, str]:
        """The ``DMLC_*`` variables every node reads (what ps-lite needs to find the scheduler)."""
        env = {"DMLC_PS_ROOT_URI": self.root, "DMLC_PS_ROOT_PORT": str(self.port),
               "DMLC_NUM_SERVER": str(self.servers), "DMLC_NUM_WORKER": str(self.workers)}
        if self.hosts is None:
            env["DMLC_NODE_HOST"] = "127.0.0.1"   # loopback only: every node binds 127.0.0.1
        return env

    def _local_env(self, role: str) -> Dict[str, str]:
        env = {**os.environ, **self.base_env(), **self.extra_env, "DMLC_ROLE": role}
        # the workers run this very copy of the library, whatever the current folder
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_library_root(), os.environ.get("PYTHONPATH")) if p)
        if role != "worker":
            env["OMP_NUM_THREADS"] = "1"   # scheduler and servers only move and sum arrays
        elif "OMP_NUM_THREADS" not in self.extra_env and "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.workers))  # they share the cores
        return env

    def _node_argv(self, role: str) -> List[str]:
        if role == "worker":
            return [self.python, "-m", "ssd", *self.worker_argv]
        return [self.python, "-c", NODE_CODE]

    def _ssh_argv(self, role: str, host: str, port: str) -> List[str]:
        """ssh command for one remote node, as ``dmlc_tracker.ssh`` builds it (env exports, cd, run)."""
        env = {**self.base_env(), **self.extra_env, "DMLC_ROLE": role, "DMLC_NODE_HOST": host}
        exports = dmlc_tracker().ssh.get_env({k: shlex.quote(v) for k, v in env.items()})
        remote = f"{exports} cd {shlex.quote(self.cwd)}; exec {' '.join(shlex.quote(a) for a in self._node_argv(role))}"
        # -tt: the remote command gets a terminal, so it is hung up when this ssh is killed
        return ["ssh", "-tt", "-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes", host, "-p", port, remote]

    # ------------------------------------------------------------------ processes
    def _spawn(self, role: str, index: int, argv: List[str], env: Dict[str, str], host: str) -> Node:
        try:
            # its own group, and it dies with the launcher (start_child: without forking the launcher)
            proc = start_child(argv, env=env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        except OSError as err:
            raise LaunchError(f"cannot start the {role} ({argv[0]}): {err.strerror}") from None
        node = Node(role, index, proc, host)
        threading.Thread(target=self._pump, args=(node,), daemon=True, name=f"ssd-{role}-{index}").start()
        with self._lock:
            self.nodes.append(node)
        return node

    def _pump(self, node: Node) -> None:
        """Keep each output line of a node (its tail) and echo the workers' lines with a prefix."""
        for raw in iter(node.proc.stdout.readline, b""):
            # escaped: over ssh the output holds whatever the remote host prints (banners, profiles)
            line = terminal_safe(raw.decode("utf-8", "replace").rstrip("\r\n"))
            node.tail.append(line)
            if node.role == "worker" and node.rank is None:
                node.rank, node.workers = reported_rank(line) or (None, 0)
            if self.echo is not None and (node.role == "worker" or "error" in line.lower()):
                self.echo.write(f"{node.prefix} {line}\n")
                self.echo.flush()
        node.proc.stdout.close()

    def start(self) -> "Cluster":
        """Scheduler first (here), then servers, then workers; locally or over ssh by the hosts file."""
        self._spawn("scheduler", 0, self._node_argv("scheduler"), self._local_env("scheduler"), self.root)
        roles = [("server", i) for i in range(self.servers)] + [("worker", i) for i in range(self.workers)]
        for k, (role, i) in enumerate(roles):
            if self.hosts is None:
                self._spawn(role, i, self._node_argv(role), self._local_env(role), "127.0.0.1")
            else:
                host, port = self.hosts[k % len(self.hosts)]
                self._spawn(role, i, self._ssh_argv(role, host, port), dict(os.environ), host)
        return self

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until the workers are done and the rest has exited; ``LaunchError`` on any failure."""
        deadline = None if timeout is None else time.time() + timeout
        try:
            while True:
                failed = self._first_failure()
                if failed is not None:
                    raise self._failure(failed)
                workers = [n for n in self.nodes if n.role == "worker"]
                if all(n.proc.poll() == 0 for n in workers):
                    self._await_servers()
                    return
                if deadline is not None and time.time() > deadline:
                    raise LaunchError(f"the distributed run did not finish within {timeout:g} s; stopped it")
                time.sleep(POLL_S)
        finally:
            self.stop()

    def _first_failure(self) -> Optional[Node]:
        """The first process that failed (non-zero status or a signal), if any.

        A scheduler or server that exits 0 is not a failure: it does so once rank 0 has told the
        servers to stop, while the workers may still be on their way out.
        """
        for n in sorted(self.nodes, key=lambda n: n.role != "worker"):  # a dead worker is the cause
            if n.proc.poll() not in (None, 0):
                return n
        return None

    def _failure(self, node: Node) -> LaunchError:
        rc = node.proc.returncode
        how = (f"was killed by {signal.Signals(-rc).name}" if rc < 0 and -rc in signal.Signals._value2member_map_
               else f"exited with status {rc}")
        time.sleep(0.3)  # let its output pump read the last lines
        tail = "\n".join(f"    {line}" for line in list(node.tail)[-TAIL_LINES:]) or "    (no output)"
        return LaunchError(f"{node.described()} {how}; stopped the run "
                           f"({self.workers} workers, {self.servers} servers). Its last output:\n{tail}")

    def _await_servers(self) -> None:
        """After the workers: rank 0 has told the servers to stop; give them a bounded time."""
        end = time.time() + SERVER_EXIT_S
        while time.time() < end and any(n.proc.poll() is None for n in self.nodes):
            time.sleep(POLL_S)

    def stop(self, grace_s: float = GRACE_S) -> None:
        """SIGTERM every live process group, SIGKILL what is left after ``grace_s``; reap all. Once."""
        if self._stopped:
            return
        self._stopped = True
        live = [n for n in self.nodes if n.proc.poll() is None]
        for n in live:
            _signal_group(n.proc, signal.SIGTERM)
        end = time.time() + grace_s
        while time.time() < end and any(n.proc.poll() is None for n in live):
            time.sleep(0.05)
        for n in self.nodes:
            _signal_group(n.proc, signal.SIGKILL)   # also reaches a group's leftover children
            try:
                n.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def pids(self) -> List[int]:
        return [n.proc.pid for n in self.nodes]


def _library_root() -> str:
    """The folder holding the ``ssd`` package this launcher runs from."""
    import ssd

    return os.path.dirname(os.path.dirname(os.path.abspath(ssd.__file__)))


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)    # the child called setsid(): its pid is its group id
    except (ProcessLookupError, PermissionError):
        pass


def run(cluster: Cluster, timeout: Optional[float] = None) -> None:
    """Start ``cluster`` and wait for it, turning SIGTERM into a clean stop of every process."""
    def _term(signum, _frame):
        raise LaunchError(f"the launcher received {signal.Signals(signum).name}; stopped every process of the run")

    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _term)
    try:
        cluster.start()
        cluster.wait(timeout)
    except BaseException:
        cluster.stop()
        raise
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
