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

**Same weights, checked** (``start_together``, ``check_in_step``). MXNet 1.9's own start
(``Trainer._init_params``: rank 0 pushes each weight, every worker then pulls it without waiting)
is not safe: ps-lite (the version MXNet 1.9.1 ships) queues a server's incoming messages in a
priority queue where all of MXNet's messages have the same priority, so under load a server can
answer a worker's first pull after the first gradient sum has replaced the weight it holds, and
that worker trains from gradients taken for weights. So before the first step every worker
pushes its weights (rank 0) or zeros (the others) and pulls the sum, which is rank 0's weights
exactly (``x + 0`` is exact in float32), and a sum round cannot be answered before every worker
has sent its part. After the start and at the end of every epoch the workers exchange a
fingerprint of each trainable parameter (CRC-32 of its bytes); any difference stops the run.
"""
from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.errors import SSDError
from ssd.data.shard import Shard, shard_indices

# Set by tests (never by the launcher): each worker writes rank<R>.json (its shard and the
# images it read), rank<R>.start.params and rank<R>.end.params (its trainable parameters right
# after the start and after the last step) here.
TRACE_ENV = "SSD_DIST_TRACE_DIR"
ROLE_ENV = "DMLC_ROLE"
# The kvstore key of the fingerprint exchange: the trainer's keys are 0..P-1 (its parameters), and
# MXNet 1.9 picks a key's server as int(key * 9973) % servers, which overflows from key 215 327 on.
CHECK_KEY = 100_000


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


def start_together(member: Membership, trainer, net, input_size: int, ctx) -> None:
    """Before the first step of a distributed run: every worker holds rank 0's weights, checked.

    Finishes the network's deferred initialization (shapes inferred from an input of zeros, only
    when some parameter's shape is still unknown) so that the trainer registers every parameter
    with the kvstore now, on every worker in the same order; then ``broadcast_from_rank0`` and a
    ``check_in_step``. After a ``--resume`` this runs too: the checkpoint rank 0 wrote was loaded by
    every worker, and MXNet's start is as unsafe then as on a fresh run.
    """
    if not member.distributed:
        return
    import mxnet as mx

    params = trainer._params                  # key i of the kvstore is the trainer's parameter i
    _finish_deferred_init(net, params, mx.nd.zeros((1, 3, input_size, input_size), ctx=ctx))
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()                # MXNet's broadcast: registers the keys (its values are replaced)
    mx.nd.waitall()                           # this worker's own pulls are answered before it sends anything
    member.kvstore.init(CHECK_KEY, mx.nd.zeros(_fingerprints_size(member, params)))
    broadcast_from_rank0(member, params)
    check_in_step(member, params, "at the start")
    trace_params(member, net, "start")


def _finish_deferred_init(net, params: Sequence[Any], sample) -> None:
    """Give every parameter whose shape waits for the first forward its shape and initial value, as
    Gluon's own first call does (``HybridBlock.infer_shape``, then ``_finish_deferred_init``), without
    a forward: one in predict mode would leave oneDNN's reordered weights, which the kvstore cannot
    send, and one in train mode would move BatchNorm's running statistics."""
    from mxnet.gluon.parameter import DeferredInitializationError

    try:
        for p in params:
            p.data()
        return
    except DeferredInitializationError:
        pass
    net.infer_shape(sample)
    for p in params:
        p._finish_deferred_init()


def broadcast_from_rank0(member: Membership, params: Sequence[Any]) -> None:
    """Every worker's ``params`` (kvstore key = index) become rank 0's, exactly.

    Each worker pushes its values (rank 0) or zeros (the others) and pulls the servers' sum: a sync
    round is answered only once all workers have sent theirs, so no reordering of messages can
    hand a worker anything else, and adding zeros changes no float32 value. Negative zeros come
    back positive on every worker, rank 0 included, so the workers agree bit for bit.
    """
    import mxnet as mx

    sums = []
    for key, p in enumerate(params):
        mine = p.list_data()[0]
        # through the host: a plain array even where oneDNN holds the weight in its own layout
        buf = (mx.nd.array(mine.asnumpy(), ctx=mine.context, dtype=mine.dtype) if member.rank == 0
               else mx.nd.zeros(mine.shape, ctx=mine.context, dtype=mine.dtype))
        member.kvstore.pushpull(key, buf, out=buf)
        sums.append(buf)
    mx.nd.waitall()
    for p, total in zip(params, sums):
        p.set_data(total)
    mx.nd.waitall()


def _trainable(params: Sequence[Any]) -> List[Any]:
    """The parameters the optimizer updates (BatchNorm running statistics stay per worker)."""
    return [p for p in params if p.grad_req != "null"]


def _fingerprints_size(member: Membership, params: Sequence[Any]) -> int:
    return member.workers * 2 * len(_trainable(params))


def _fingerprint(p) -> Tuple[int, int]:
    """CRC-32 of a parameter's bytes (negative zero counted as zero), as two 16-bit halves: each is a
    float32 exactly, and a kvstore sum with zeros carries it unchanged."""
    import numpy as np

    crc = zlib.crc32(np.ascontiguousarray(p.list_data()[0].asnumpy() + np.float32(0)).tobytes())
    return crc >> 16, crc & 0xFFFF


def check_in_step(member: Membership, params: Sequence[Any], when: str) -> None:
    """Stop the run (``DistributedError`` on every worker) when the workers' weights differ.

    One exchange: worker r writes its fingerprints into its own slot of a zero vector and the
    servers' sum gives every worker all of them, so every worker reaches the same verdict and
    none is left waiting for a step its peers will not take. Why stop rather than copy rank 0's
    weights again and go on: the workers start from rank 0's weights and then apply identical
    updates, so a difference means the last epoch summed gradients of different models (or
    something is broken that would happen again); the epoch is not saved, and ``--resume`` goes
    on from the last saved epoch, which passed this check, with every worker on rank 0's weights.
    """
    if not member.distributed:
        return
    import mxnet as mx
    import numpy as np

    trainable = _trainable(params)
    width = 2 * len(trainable)
    table = np.zeros(member.workers * width, np.float32)
    table[member.rank * width:(member.rank + 1) * width] = [h for p in trainable for h in _fingerprint(p)]
    exchanged = mx.nd.array(table)
    member.kvstore.pushpull(CHECK_KEY, exchanged, out=exchanged)
    rows = exchanged.asnumpy().reshape(member.workers, width)
    differing = [i for i in range(len(trainable)) if (rows[:, 2 * i:2 * i + 2] != rows[0, 2 * i:2 * i + 2]).any()]
    if not differing:
        return
    first = differing[0]
    others = [worker_label(r, member.workers) for r in range(1, member.workers)
              if (rows[r, 2 * first:2 * first + 2] != rows[0, 2 * first:2 * first + 2]).any()]
    more = f" and {len(differing) - 1} more" if len(differing) > 1 else ""
    raise DistributedError(
        f"the workers' weights differ {when}: {trainable[first].name}{more} ({', '.join(others)} against "
        f"{worker_label(0, member.workers)}); the run stopped without saving this epoch. Start it again with "
        "--resume: it goes on from the last saved epoch with every worker on rank 0's weights")


def trace_params(member: Membership, net, when: str) -> None:
    """Test hook (``$SSD_DIST_TRACE_DIR``): this worker's trainable parameters, as ``rank<R>.<when>.params``."""
    folder = os.environ.get(TRACE_ENV)
    if not folder or not member.distributed:
        return
    import mxnet as mx

    os.makedirs(folder, exist_ok=True)
    params = {name: p.data().copyto(mx.cpu()) for name, p in net.collect_params().items() if p.grad_req != "null"}
    with atomic_path(os.path.join(folder, f"rank{member.rank}.{when}.params")) as tmp:
        mx.nd.save(tmp, params)


def write_trace(member: Membership, net, shard, steps: int) -> Optional[str]:
    """Test hook (``$SSD_DIST_TRACE_DIR``): this worker's shard, what it read, its final weights."""
    folder = os.environ.get(TRACE_ENV)
    if not folder or not member.distributed:
        return None
    base = os.path.join(folder, f"rank{member.rank}")
    trace_params(member, net, "end")
    atomic_write_json(base + ".json", {
        "rank": member.rank, "workers": member.workers, "steps": steps,
        "shard": list(getattr(shard, "indices", [])), "seen": sorted(getattr(shard, "seen", set())),
        "pid": os.getpid()})
    return base


def trace_of(folder: str, rank: int) -> Dict[str, Any]:
    """Read back one worker's trace JSON (tests)."""
    with open(os.path.join(folder, f"rank{rank}.json"), encoding="utf-8") as fh:
        return json.load(fh)
