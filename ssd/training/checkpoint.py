"""A run's last complete epoch on disk: parameters, optimizer state, best weights and history.

Files land in ``checkpoints/`` in a fixed order, each atomically: parameters, optimizer state
(arrays + JSON, never pickle) and, when the epoch is the best so far, ``best.params``; then
``checkpoint.json``, which names the epoch they belong to. ``checkpoint.json`` is the commit
point: a kill at any step leaves either the previous checkpoint or the new one. The model
(``model.params`` + ``meta.json``) is published from the checkpoint afterwards, and again on
resume, so it always matches the checkpoint's best epoch.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, Optional, Sequence

from ssd.base import faults
from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.errors import ModelError, SSDError
from ssd.base.json_file import MAX_STATE_BYTES, read_json_file
from ssd.base.params_file import load_into
from ssd.data.identity import identity_changes
from ssd.store import ONNX_FILE, PARAMS_FILE, SYMBOL_FILE, save_params
from ssd.training.optimizer_state import load_optimizer_state, save_optimizer_state

CHECKPOINT_DIR = "checkpoints"


class Checkpoint:
    """The checkpoint folder of one run (``<out>/checkpoints``)."""

    def __init__(self, run_dir: str) -> None:
        self.dir = os.path.join(run_dir, CHECKPOINT_DIR)
        self.json = os.path.join(self.dir, "checkpoint.json")
        self.params = os.path.join(self.dir, "checkpoint.params")
        self.opt_arrays = os.path.join(self.dir, "optimizer.params")
        self.opt_json = os.path.join(self.dir, "optimizer.json")
        self.legacy_states = os.path.join(self.dir, "checkpoint.states")   # pickle: never loaded

    def exists(self) -> bool:
        """Whether anything is there: a FIFO or a folder under the name is a damaged checkpoint to
        report (``state``), not an empty run to train into."""
        return os.path.lexists(self.json)

    def state(self) -> Dict[str, Any]:
        """What ``checkpoint.json`` records: epoch, history, best, pr_curves, classes, arch."""
        try:
            state = read_json_file(self.json, MAX_STATE_BYTES)   # a run folder may be copied or planted
        except (OSError, ValueError) as err:
            raise SSDError(f"{self.json} is unreadable ({err}); the checkpoint is damaged") from None
        if not isinstance(state, dict) or not isinstance(state.get("epoch"), int) \
                or not isinstance(state.get("history"), list):
            raise SSDError(f"{self.json}: not a checkpoint this version writes (no epoch/history)")
        return state

    def state_for(self, resume: bool, run_dir: str, fixed: Optional[Dict[str, Any]] = None,
                  epochs: Optional[int] = None) -> Optional[Dict[str, Any]]:
        """The state to resume from, or None for a new run; refuses to overwrite a run or a saved
        model silently, and to resume with ``fixed`` settings (``TrainConfig.fixed_settings``) other
        than the checkpoint's: that would continue another run from this one's weights; or with
        fewer ``epochs`` (the total to reach) than are done: the record would say fewer than ran."""
        if resume:
            if not self.exists():
                raise SSDError(f"--resume: no checkpoint in {self.dir}; start without --resume")
            state = self.state()
            _check_same_settings(state.get("settings"), fixed, run_dir)
            if epochs is not None and epochs < state["epoch"]:
                raise SSDError(f"cannot resume {run_dir} with --epochs {epochs}: {state['epoch']} epochs are "
                               f"already done, and --epochs is the total to reach (give {state['epoch']} or more)")
            return state
        if self.exists():
            raise SSDError(f"{run_dir} already holds a training run; pass --resume to continue it "
                           "or choose another --out")
        weights = [f for f in (PARAMS_FILE, ONNX_FILE, SYMBOL_FILE) if os.path.exists(os.path.join(run_dir, f))]
        if weights:
            raise SSDError(f"{run_dir} already holds a saved model ({weights[0]}); choose another --out "
                           "(nothing was changed)")
        return None

    def best_params(self, state: Dict[str, Any]) -> Optional[str]:
        """The best epoch's weights that ``state`` names (``best-EPOCH.params``), if present."""
        name = state.get("best_params")
        if not isinstance(name, str):
            return None
        path = os.path.join(self.dir, os.path.basename(name))
        return path if os.path.isfile(path) else None

    def restore(self, net, trainer, ctxs: Sequence[Any], state: Dict[str, Any], arch: str, classes) -> None:
        """Load parameters and optimizer state after checking they belong to this run.

        The optimizer state is read only from its array + JSON pair; a pickled ``.states`` file
        (older versions, or planted by someone) is refused, never opened.
        """
        if state.get("classes") != list(classes) or state.get("arch") != arch:
            raise SSDError(f"cannot resume: the checkpoint in {self.dir} was trained on "
                           f"{state.get('arch')} with classes {state.get('classes')}")
        if not (os.path.isfile(self.opt_json) and os.path.isfile(self.opt_arrays)):
            if os.path.exists(self.legacy_states):
                raise SSDError(f"cannot resume: {self.dir} holds its optimizer state as a pickle "
                               "(checkpoint.states), which could run code when loaded and is refused; "
                               "start the run again in a new folder")
            raise SSDError(f"cannot resume: {self.dir} lacks optimizer.json/optimizer.params")
        try:
            load_into(net, self.params, ctx=list(ctxs))
        except ModelError as err:
            raise SSDError(f"cannot resume: {err}") from None
        except Exception as err:  # truncated or foreign file
            raise SSDError(f"cannot resume: {self.params} does not load ({type(err).__name__})") from None
        load_optimizer_state(trainer, self.opt_arrays, self.opt_json)

    def save(self, net, trainer, state: Dict[str, Any], best: bool = False,
             previous: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Parameters, optimizer state and (if ``best``) the best weights, then the JSON naming them.

        The best weights get the epoch in their name, so a kill before the JSON never leaves the
        previous JSON naming new weights. Returns the state written (with ``best_params``).
        """
        os.makedirs(self.dir, exist_ok=True)
        save_params(net, self.params)
        faults.step("checkpoint: params")
        save_optimizer_state(trainer, self.opt_arrays, self.opt_json)
        faults.step("checkpoint: optimizer")
        state = dict(state)
        state["best_params"] = (previous or {}).get("best_params")
        if best:
            state["best_params"] = f"best-{int(state['epoch']):04d}.params"
            with atomic_path(os.path.join(self.dir, state["best_params"])) as tmp:
                shutil.copyfile(self.params, tmp)
            faults.step("checkpoint: best params")
        atomic_write_json(self.json, state)
        faults.step("checkpoint: json")
        self._drop_other_best(state.get("best_params"))
        return state

    def _drop_other_best(self, keep: Optional[str]) -> None:
        """Remove best-weight files the committed JSON no longer names (and stale temp files)."""
        for name in os.listdir(self.dir):
            if (name.startswith("best-") and name.endswith(".params") and name != keep) \
                    or (name.startswith(".") and name.endswith(".tmp")):
                try:
                    os.unlink(os.path.join(self.dir, name))
                except OSError:
                    pass


def _check_same_settings(saved: Any, now: Optional[Dict[str, Any]], run_dir: str) -> None:
    """``SSDError`` naming every fixed setting a resume would change (checkpoints written before
    settings were recorded carry none: nothing to compare)."""
    if not isinstance(saved, dict) or now is None:
        return
    now = json.loads(json.dumps(now))            # tuples as the JSON's lists
    changed = [f"{k}={now[k]!r} (the run has {saved[k]!r})" for k in sorted(now) if k in saved and saved[k] != now[k]]
    if changed:
        raise SSDError(f"cannot resume {run_dir} with other settings: {'; '.join(changed)}. Resume with the "
                       "run's own settings (only --epochs, the device and the arithmetic may change), or "
                       "train into another --out")


def refuse_other_dataset(state: Optional[Dict[str, Any]], identity: Dict[str, Any], run_dir: str, data: str) -> None:
    """``SSDError`` saying what changed when the dataset a resume would train on is not the one the
    checkpoint ``state`` records (the same folder regenerated, say); nothing to compare in a new run
    or in checkpoints written before datasets were fingerprinted."""
    changes = identity_changes((state or {}).get("dataset"), identity)
    if changes:
        raise SSDError(f"cannot resume {run_dir}: the dataset in {data} is not the one the run was trained on "
                       f"({'; '.join(changes)}). Resume on the run's own dataset, or train into another --out")
