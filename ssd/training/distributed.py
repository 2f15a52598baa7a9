"""A worker's place in a distributed run on MXNet's parameter server (``kvstore dist_sync``).

``python -m ssd launch`` (``ssd.training.cluster``) starts a scheduler, servers and N workers;
each worker runs the ordinary training loop, which asks this module who it is:

* **rank and count** come from the kvstore (``mx.kv.create('dist_sync')``, created once and
  handed to the ``gluon.Trainer``), never from the command line, so they cannot disagree with
  what ps-lite assigned.
* **its shard**: worker ``r`` of ``N`` trains on images ``r, r+N, r+2N, …`` of the training
  split (``ssd.data.shard``), equal in size on every worker.
* **the global batch rule**: ``--batch-size B`` is per worker, so one synchronous step sees
  ``N×B`` images. Gradients are summed by the servers and averaged over workers
  (``rescale_grad = 1/N``: the step is the mean over the global batch), and the learning rate
  is multiplied by N (the linear scaling rule of Goyal et al., 2017, with the usual warm-up),
  for the configured value and for the architecture's default alike. N=1 trains exactly as a
  single process with batch B would.
* **who writes**: rank 0 alone validates, writes ``models/NAME/`` (meta, params, checkpoints,
  event log). Every worker reads rank 0's checkpoint on ``--resume``.

The optimizer runs on each worker (``update_on_kvstore=False``): the servers only sum
gradients, every worker applies the same update to the same weights and so stays identical,
and the optimizer state is saved and restored locally like any other run's (the servers need
no pickled optimizer). BatchNorm running statistics are not parameters and stay per worker;
rank 0 re-estimates its own before each validation, as a single-process run does.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.errors import SSDError
from ssd.data.shard import Shard, shard_indices

# Set by tests (never by the launcher): each worker writes rank<R>.json (its shard and the
# images it read) and rank<R>.params (its trainable parameters after the last step) here.
TRACE_ENV = "SSD_DIST_TRACE_DIR"
ROLE_ENV = "DMLC_ROLE"


class DistributedError(SSDError):
    """A distributed run cannot start or went wrong (message names what and what to do)."""


@dataclass
class Membership:
    """This process's place in a run: rank, number of workers, the kvstore they share."""

    rank: int = 0
    workers: int = 1
    kvstore: Any = None            # the dist kvstore object, or None for a single-process run

    @property
    def distributed(self) -> bool:
        return self.kvstore is not None

    @property
    def writes(self) -> bool:
        """Only rank 0 validates and writes the model folder."""
        return self.rank == 0

    @property
    def lr_scale(self) -> float:
        """Linear scaling: the learning rate for the global batch of ``workers × B`` images."""
        return float(self.workers)

    @property
    def label(self) -> str:
        """How this worker names itself ("worker 2 of 2", from rank 1): the launcher prefixes its lines
        with the same words once it has read ``joined_line``, so a log has one numbering."""
        return worker_label(self.rank, self.workers)

    def summary(self, batch_size: int, lr: float, shard_size: int, dropped: int) -> Dict[str, Any]:
        """What the start event and meta.json record about the run's layout."""
        return {"workers": self.workers, "rank": self.rank, "batch_per_worker": batch_size,
                "global_batch": batch_size * self.workers, "lr": lr * self.lr_scale, "lr_configured": lr,
                "shard_size": shard_size, "dropped_images": dropped}


def worker_label(rank: int, workers: int) -> str:
    """A worker's name in every line a person reads: its rank counted from 1."""
    return f"worker {rank + 1} of {workers}"


_JOINED = re.compile(r"worker (\d+) of (\d+) joined the parameter server \(pid \d+\)")


def joined_line(member: Membership) -> str:
    """The line a worker prints as soon as the parameter server has given it its rank; the launcher
    reads it back (``reported_rank``) to name the worker the same way."""
    return f"{member.label} joined the parameter server (pid {os.getpid()})"


def reported_rank(line: str) -> Optional[Tuple[int, int]]:
    """``(rank, workers)`` when ``line`` is exactly a ``joined_line``, else None."""
    m = _JOINED.fullmatch(line)
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        return None
    return int(m.group(1)) - 1, int(m.group(2))


def join(kvstore: str) -> Membership:
    """Join the parameter server when ``kvstore`` is a ``dist_*`` type; a lone membership otherwise.

    ``mx.kv.create`` blocks until every node of the run has connected, so it comes first, before
    any data is read.
    """
    if not kvstore.startswith("dist"):
        return Membership()
    if os.environ.get(ROLE_ENV) != "worker" or not os.environ.get("DMLC_PS_ROOT_URI"):
        raise DistributedError(
            f"--kvstore {kvstore} needs MXNet's parameter server (a scheduler, servers and workers): "
            "start the run with: python -m ssd launch --workers N --servers S -- train …")
    if kvstore not in ("dist_sync", "dist_sync_device"):
        raise DistributedError(f"--kvstore {kvstore}: only synchronous training (dist_sync, dist_sync_device) "
                               "keeps the workers' models identical; asynchronous kvstores are not supported")
    import mxnet as mx

    kv = mx.kv.create(kvstore)
    return Membership(int(kv.rank), int(kv.num_workers), kv)


def shard_of(train_ds, member: Membership):
    """``(this worker's shard, images dropped to keep shards equal)``; the dataset itself when alone."""
    if not member.distributed:
        return train_ds, 0
    n = len(train_ds)
    idx = shard_indices(n, member.rank, member.workers)
    return Shard(train_ds, idx, label=f" (shard {member.rank + 1}/{member.workers})"), n % member.workers


def split_name(member: Membership) -> str:
    """The decode-once cache's split name: one cache per shard, so workers never share a file."""
    return "train" if not member.distributed else f"train-shard{member.rank}of{member.workers}"


def write_trace(member: Membership, net, shard, steps: int) -> Optional[str]:
    """Test hook (``$SSD_DIST_TRACE_DIR``): this worker's shard, what it read, its final weights."""
    folder = os.environ.get(TRACE_ENV)
    if not folder or not member.distributed:
        return None
    import mxnet as mx

    os.makedirs(folder, exist_ok=True)
    base = os.path.join(folder, f"rank{member.rank}")
    params = {name: p.data().copyto(mx.cpu()) for name, p in net.collect_params().items() if p.grad_req != "null"}
    with atomic_path(base + ".params") as tmp:
        mx.nd.save(tmp, params)
    atomic_write_json(base + ".json", {
        "rank": member.rank, "workers": member.workers, "steps": steps,
        "shard": list(getattr(shard, "indices", [])), "seen": sorted(getattr(shard, "seen", set())),
        "pid": os.getpid()})
    return base


def trace_of(folder: str, rank: int) -> Dict[str, Any]:
    """Read back one worker's trace JSON (tests)."""
    with open(os.path.join(folder, f"rank{rank}.json"), encoding="utf-8") as fh:
        return json.load(fh)
