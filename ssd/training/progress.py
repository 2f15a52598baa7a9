"""A training run's progress across its phases, and how long the rest takes at the run's own pace.

Why one object: the Train page used to show the training iterations' share of the run, then during
validation the validation pass's own share (a bar that filled to 100 % and dropped back), an ETA that
left validation out (0:47 shown with 88 s to go), and the previous epoch's loss and speed while the
next was validated. Here every ``progress`` event carries the run's ``fraction`` (never going back),
an ``eta_s`` that counts what remains of both phases, the phase by name, and the epoch's own loss
and speed.

The run's work, at its own pace:

* a training iteration costs ``s_per_iter``: the seconds this process spent in training steps over
  the iterations it took (start-up excluded);
* each epoch ends with BatchNorm recalibration, validation and a checkpoint, which cost ``end_s``:
  measured on the last epoch that ended (a resumed run takes it from the history's ``val_time_s``).
  Before the first one ends it is estimated from the training pace: a validation image costs about
  what a training sample does (a forward is cheaper than a forward and a backward, but validation
  decodes and scores every image). While a validation pass runs, its own images so far set the pace
  for the rest of it.

The ``fraction`` is the estimated time done over the estimated whole; a fraction that an estimate
would move backwards holds still instead.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

PROGRESS_EVERY_S = 1.0


class RunProgress:
    """Counts a run's iterations and validation images and writes its ``progress`` events' fields."""

    def __init__(self, epochs: int, start_epoch: int, iters: int, batch_size: int, val_total: int,
                 history: Optional[List[Dict[str, Any]]] = None, clock=time.monotonic) -> None:
        self.epochs, self.iters, self.batch_size, self.val_total = epochs, iters, max(1, batch_size), val_total
        self.clock = clock
        self.first = self.done = start_epoch * iters            # global iterations
        self.epochs_ended = start_epoch                           # epochs whose end (validation) is over
        self.train_s = 0.0                                        # this process's seconds in training steps
        self.end_s: Optional[float] = _measured_end(history)
        self.val_done = 0
        self.segment_start: Optional[float] = None                # when this epoch's end began
        self.step_start = clock()
        self.last_report = float("-inf")
        self.last_fraction = start_epoch / epochs if epochs else 0.0

    # ---- what happened -----------------------------------------------------------------------

    def epoch_starts(self) -> None:
        self.step_start = self.clock()

    def step_done(self) -> None:
        now = self.clock()
        self.train_s += now - self.step_start
        self.step_start = now
        self.done += 1

    def validation_starts(self) -> None:
        self.segment_start, self.val_done = self.clock(), 0

    def validated(self, done: int) -> None:
        self.val_done = done

    def end_elapsed(self) -> float:
        """Seconds since this epoch's end began (recorded as the epoch's ``val_time_s``)."""
        return self.clock() - self.segment_start if self.segment_start is not None else 0.0

    def epoch_ends(self) -> float:
        """The epoch's end (recalibration, validation, checkpoint) is over; its seconds."""
        took = self.end_elapsed()
        self.end_s, self.segment_start = took, None
        self.epochs_ended += 1
        self.step_start = self.clock()
        return took

    def due(self, last: bool = False) -> bool:
        """Time for another event (one a second, and always the last of a phase)."""
        now = self.clock()
        if last or now - self.last_report >= PROGRESS_EVERY_S:
            self.last_report = now
            return True
        return False

    # ---- the estimates -----------------------------------------------------------------------

    @property
    def s_per_iter(self) -> Optional[float]:
        steps = self.done - self.first
        return self.train_s / steps if steps else None

    def _end_estimate(self) -> float:
        if self.end_s is not None:
            return self.end_s
        per_iter = self.s_per_iter or 0.0
        return self.val_total * per_iter / self.batch_size

    def _current_end_left(self) -> float:
        """Seconds left of the epoch end in progress (0 when training)."""
        if self.segment_start is None:
            return 0.0
        elapsed = self.end_elapsed()
        if self.val_done and self.val_total:
            return elapsed / self.val_done * (self.val_total - self.val_done)
        return max(0.0, self._end_estimate() - elapsed)

    def eta_s(self) -> float:
        """Seconds to the run's end: iterations left, this epoch's end, and the later epochs' ends."""
        per_iter = self.s_per_iter or 0.0
        ends_left = self.epochs - self.epochs_ended - (1 if self.segment_start is not None else 0)
        return ((self.epochs * self.iters - self.done) * per_iter + self._current_end_left()
                + max(0, ends_left) * self._end_estimate())

    def fraction(self) -> float:
        """The share of the run done, by the same estimates; it never goes back, and reaches 1 only
        when the last epoch has ended."""
        per_iter = self.s_per_iter or 0.0
        done_s = self.done * per_iter + self.epochs_ended * self._end_estimate()
        done_s += self.end_elapsed()
        left = self.eta_s()
        value = 1.0 if self.epochs_ended >= self.epochs else (done_s / (done_s + left) if done_s + left > 0 else 0.0)
        self.last_fraction = max(self.last_fraction, min(value, 1.0 if self.epochs_ended >= self.epochs else 0.999))
        return self.last_fraction

    # ---- the events --------------------------------------------------------------------------

    def training_fields(self, epoch: int, it: int) -> Dict[str, Any]:
        """A training event's position: the phase, the iteration, the run's share and ETA."""
        return {"phase": "train", "epoch": epoch + 1, "epochs": self.epochs, "iter": it, "iters": self.iters,
                "global_iter": self.done, "total_iters": self.epochs * self.iters,
                "fraction": self.fraction(), "eta_s": self.eta_s()}

    def validation_fields(self, epoch: int) -> Dict[str, Any]:
        """A validation event's position: image k of n of this pass, the run's share and ETA."""
        elapsed = self.end_elapsed()
        return {"phase": "validate", "epoch": epoch + 1, "epochs": self.epochs, "val_done": self.val_done,
                "val_total": self.val_total, "global_iter": self.done, "total_iters": self.epochs * self.iters,
                "fraction": self.fraction(), "eta_s": self.eta_s(),
                "val_images_per_s": self.val_done / elapsed if self.val_done and elapsed > 0 else None}


def _measured_end(history: Optional[List[Dict[str, Any]]]) -> Optional[float]:
    """The last recorded epoch end (``val_time_s``) of a resumed run, if its history has one."""
    for rec in reversed(history or []):
        if isinstance(rec.get("val_time_s"), (int, float)):
            return float(rec["val_time_s"])
    return None
