"""``python -m ssd launch``: a distributed training run on MXNet's parameter server.

``python -m ssd launch --workers 2 --servers 1 -- train --data D --out models/M …`` starts a
scheduler, the servers and the workers on this machine (loopback), or over ssh on the machines
of ``--hosts FILE``; each worker runs ``train`` with ``--kvstore dist_sync`` (added when absent).
See ``ssd.training.cluster`` (the processes) and ``ssd.training.distributed`` (the workers).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from typing import List

from ssd.base.argtypes import DefaultsWhereSet
from ssd.base.errors import SSDError

LAUNCH_COMMAND_ENV = "SSD_LAUNCH_COMMAND"   # the launch line, stored in the model's meta.json


def register(sub) -> None:
    p = sub.add_parser("launch", help="distributed training: scheduler, servers and workers (parameter server)",
                       formatter_class=DefaultsWhereSet,
                       description="Run `train` on N workers that share MXNet's parameter server (kvstore "
                                   "dist_sync). Everything after `--` is the train command.")
    p.add_argument("--workers", "-n", type=int, required=True, help="number of workers")
    p.add_argument("--servers", "-s", type=int, default=1, help="number of parameter servers")
    p.add_argument("--hosts", "-H", help="hosts file (host[:ssh-port] per line): start the nodes over ssh")
    p.add_argument("--host-ip",
                   help="with --hosts: this machine's address the other hosts can reach; guessed when omitted")
    p.add_argument("--python", default=sys.executable,
                   help="the Python (with ssd installed) to run on every host (default: this one, %(default)s)")
    p.add_argument("--timeout", type=float, help="stop the whole run after this many seconds")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- train --data … --out …")
    p.set_defaults(func=cmd_launch)


def worker_argv(command: List[str]) -> List[str]:
    """The workers' ``train …`` arguments, with ``--kvstore dist_sync`` unless a dist kvstore is given."""
    argv = list(command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if argv[:1] != ["train"]:
        raise SSDError("launch runs a training command: python -m ssd launch --workers N -- train --data … --out …")
    kv = [a.split("=", 1)[1] if a.startswith("--kvstore=") else argv[i + 1]
          for i, a in enumerate(argv) if (a == "--kvstore" and i + 1 < len(argv)) or a.startswith("--kvstore=")]
    if not kv:
        return argv + ["--kvstore", "dist_sync"]
    if not kv[-1].startswith("dist_sync"):
        raise SSDError(f"--kvstore {kv[-1]} is not a distributed kvstore; leave it out (dist_sync is used)")
    return argv


def cmd_launch(args: argparse.Namespace) -> int:
    import os

    from ssd.training import cluster

    argv = worker_argv(args.command)
    env = {LAUNCH_COMMAND_ENV: "python -m ssd " + " ".join(shlex.quote(a) for a in sys.argv[1:])} \
        if sys.argv[1:2] == ["launch"] else {}
    run = cluster.Cluster(args.workers, args.servers, argv, hosts=args.hosts, host_ip=args.host_ip, env=env,
                          python=args.python, cwd=os.getcwd(), echo=sys.stderr)
    where = f"over ssh on {len(run.hosts)} host(s)" if run.hosts else "on this machine"
    print(f"launching 1 scheduler, {args.servers} server(s) and {args.workers} worker(s) {where} "
          f"(scheduler {run.root}:{run.port})", file=sys.stderr, flush=True)
    cluster.run(run, timeout=args.timeout)
    print(f"distributed run finished: {args.workers} worker(s) done")
    return 0
