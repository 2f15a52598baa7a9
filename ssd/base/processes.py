"""Is a process still running? (Lock files of background jobs and staging folders name their pid.)"""
from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            if fh.read().split(")")[-1].split()[0] == "Z":
                return False
    except OSError:
        pass
    return True
