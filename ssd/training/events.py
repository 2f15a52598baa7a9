"""A run's JSON-lines event log: training appends, any process (the app, a CLI) follows.

One JSON object per line with at least ``type`` and ``time``. Lines are appended whole and
flushed, so a reader never sees a partial line except the one being written, which
``read_events`` ignores. Types: ``start``, ``progress``, ``epoch``, ``checkpoint``,
``done``, ``stopped``, ``error``.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List

EVENTS_FILE = "events.jsonl"


class EventLog:
    def __init__(self, run_dir: str) -> None:
        os.makedirs(run_dir, exist_ok=True)
        self.path = os.path.join(run_dir, EVENTS_FILE)

    def emit(self, type_: str, **fields: Any) -> Dict[str, Any]:
        event = {"type": type_, "time": time.time(), **fields}
        line = json.dumps(event, default=_default) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
        return event


def read_events(run_dir: str) -> List[Dict[str, Any]]:
    """All complete events of a run (empty if none yet)."""
    path = os.path.join(run_dir, EVENTS_FILE)
    out: List[Dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # being written right now
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        pass
    return out


def _default(o: Any) -> Any:
    try:
        return o.item()
    except AttributeError:
        return str(o)


class WorkerLog:
    """The event log of a distributed run's other workers: events reach callbacks, not a file.

    Only rank 0 writes ``events.jsonl``; the app and ``follow`` read that one log.
    """

    path = ""

    def emit(self, type_: str, **fields: Any) -> Dict[str, Any]:
        return {"type": type_, "time": time.time(), **fields}
