"""Optimizer state on disk without pickle: arrays in MXNet's NDArray format, scalars in JSON.

Why: ``gluon.Trainer.save_states`` pickles the updater (states and optimizer object), so loading a
crafted ``checkpoint.states`` with ``load_states`` runs code. Here the per-parameter state arrays
(SGD momentum, Adam mean/variance...) go through ``mx.nd.save`` (a dict of NDArrays, no code) and
the counters (``num_update``, per-index update counts) through JSON. The learning-rate schedule
is rebuilt from the configuration and catches up from ``num_update``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.errors import ModelError, SSDError
from ssd.base.json_file import MAX_STATE_BYTES, read_json_file
from ssd.base.params_file import load_arrays

FORMAT = "ssd-optimizer-state/1"


def _updaters(trainer) -> List[Any]:
    """The updaters that hold this process's optimizer state (one per device, or the kvstore's)."""
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    if trainer._update_on_kvstore:
        upd = getattr(trainer._kvstore, "_updater", None)
        return [upd] if upd is not None else []
    return list(trainer._updaters)


def _flatten(state: Any, key: str, arrays: Dict[str, Any]) -> Any:
    """A JSON description of one state (None, an NDArray, or nested tuples of them)."""
    import mxnet as mx

    if state is None:
        return None
    if isinstance(state, mx.nd.NDArray):
        arrays[key] = state.as_in_context(mx.cpu())
        return key
    if isinstance(state, (tuple, list)):
        return [_flatten(s, f"{key}.{j}", arrays) for j, s in enumerate(state)]
    raise SSDError(f"optimizer state of type {type(state).__name__} cannot be saved without pickle")


def _unflatten(desc: Any, arrays: Dict[str, Any], where: str) -> Any:
    if desc is None:
        return None
    if isinstance(desc, str):
        if desc not in arrays:
            raise SSDError(f"{where}: optimizer state array {desc!r} is missing; the checkpoint is damaged")
        return arrays[desc]
    if isinstance(desc, list):
        return tuple(_unflatten(d, arrays, where) for d in desc)
    raise SSDError(f"{where}: unexpected optimizer state entry {desc!r}")


def save_optimizer_state(trainer, arrays_path: str, json_path: str) -> None:
    """Write the state arrays, then the JSON that describes them (each atomically)."""
    import mxnet as mx

    arrays: Dict[str, Any] = {}
    updaters = []
    for u, upd in enumerate(_updaters(trainer)):
        updaters.append({str(idx): _flatten(st, f"u{u}:{idx}", arrays) for idx, st in upd.states.items()})
    opt = trainer._optimizer
    doc = {"format": FORMAT, "num_update": int(opt.num_update),
           "index_update_counts": {str(dev): {str(k): int(v) for k, v in counts.items()}
                                   for dev, counts in opt._all_index_update_counts.items()},
           "updaters": updaters}
    with atomic_path(arrays_path) as tmp:
        mx.nd.save(tmp, arrays)
    atomic_write_json(json_path, doc)


def load_optimizer_state(trainer, arrays_path: str, json_path: str) -> None:
    """Restore what ``save_optimizer_state`` wrote; ``SSDError`` for anything else."""
    import mxnet as mx

    try:
        doc = read_json_file(json_path, MAX_STATE_BYTES)
    except (OSError, ValueError) as err:
        raise SSDError(f"{json_path}: optimizer state is unreadable ({err}); the checkpoint is damaged") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SSDError(f"{json_path}: not an optimizer state this version writes ({FORMAT})")
    try:
        arrays = load_arrays(arrays_path) if os.path.getsize(arrays_path) else {}
    except ModelError as err:
        raise SSDError(f"{err}; the checkpoint is damaged") from None
    except Exception as err:  # MXNetError on a damaged or foreign file
        raise SSDError(f"{arrays_path}: optimizer state arrays do not load ({err.__class__.__name__}); "
                       "the checkpoint is damaged") from None
    if isinstance(arrays, list):  # mx.nd.save of an empty dict reads back as []
        arrays = {}
    updaters = _updaters(trainer)
    saved = doc.get("updaters") or []
    if saved and len(saved) != len(updaters):
        raise SSDError(f"{json_path}: saved for {len(saved)} device(s), this run has {len(updaters)}; "
                       "resume on the same devices")
    for upd, states in zip(updaters, saved):
        upd.states = {int(k): _unflatten(v, arrays, json_path) for k, v in states.items()}
        upd.states_synced = dict.fromkeys(upd.states.keys(), False)  # moved to each weight's device lazily
    opt = trainer._optimizer
    opt.num_update = int(doc.get("num_update", 0))
    opt._all_index_update_counts = {int(dev): {int(k): int(v) for k, v in counts.items()}
                                    for dev, counts in (doc.get("index_update_counts") or {}).items()}
    opt._all_index_update_counts.setdefault(0, {})
    opt._index_update_count = opt._all_index_update_counts[0]
