"""A run's last complete epoch on disk: parameters, optimizer state and history.

Files land in ``checkpoints/`` in a fixed order, each atomically: parameters and optimizer state
first, then ``checkpoint.json``, which names the epoch they belong to. A kill at any point leaves
either the previous checkpoint or the new one, never a JSON that points at other weights.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Sequence

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.errors import SSDError
from ssd.store import save_params

CHECKPOINT_DIR = "checkpoints"


class Checkpoint:
    """The checkpoint folder of one run (``<out>/checkpoints``)."""

    def __init__(self, run_dir: str) -> None:
        self.dir = os.path.join(run_dir, CHECKPOINT_DIR)
        self.json = os.path.join(self.dir, "checkpoint.json")
        self.params = os.path.join(self.dir, "checkpoint.params")
        self.states = os.path.join(self.dir, "checkpoint.states")

    def exists(self) -> bool:
        return os.path.isfile(self.json)

    def state(self) -> Dict[str, Any]:
        """What ``checkpoint.json`` records: epoch, history, best, pr_curves, classes, arch."""
        with open(self.json, encoding="utf-8") as fh:
            return json.load(fh)

    def state_for(self, resume: bool, run_dir: str) -> Optional[Dict[str, Any]]:
        """The state to resume from, or None for a new run; refuses to overwrite a run silently."""
        if resume:
            if not self.exists():
                raise SSDError(f"--resume: no checkpoint in {self.dir}; start without --resume")
            return self.state()
        if self.exists():
            raise SSDError(f"{run_dir} already holds a training run; pass --resume to continue it "
                           "or choose another --out")
        return None

    def restore(self, net, trainer, ctxs: Sequence[Any], state: Dict[str, Any], arch: str, classes) -> None:
        """Load parameters and optimizer state after checking they belong to this run."""
        if state.get("classes") != list(classes) or state.get("arch") != arch:
            raise SSDError(f"cannot resume: the checkpoint in {self.dir} was trained on "
                           f"{state.get('arch')} with classes {state.get('classes')}")
        net.load_parameters(self.params, ctx=list(ctxs))
        trainer.load_states(self.states)

    def save(self, net, trainer, state: Dict[str, Any]) -> None:
        """Parameters and optimizer state first, then the JSON that points at them."""
        os.makedirs(self.dir, exist_ok=True)
        save_params(net, self.params)
        with atomic_path(self.states) as tmp:
            trainer.save_states(tmp)
        atomic_write_json(self.json, state)
