"""``results draw`` and ``results crops`` as background jobs: a season's photos take hours.

Why a job: the Camera traps page must not decode a season's photos inside a rerun (the page would
hang, and a closed tab would stop the work half way). It starts the very command a person types,
``python -m ssd results draw|crops``, whose checks, resumption and summary are the command's own;
its output goes to ``OUT/draw.log`` or ``OUT/crops.log``, read back by the page.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

from ssd.base.argtypes import join_names
from ssd.base.errors import JobError
from ssd.base.safe_paths import is_inside
from ssd.jobs.process import JobInfo, current, launch, read_log_tail
from ssd.inference.filtering import ShownFilter

ACTIONS = ("draw", "crops")


def _lock(out: str, action: str) -> str:
    return os.path.join(out, f".results-{action}.lock")


def _log(action: str) -> str:
    return f"{action}.log"


def photo_job_argv(action: str, results: str, out: str, images: str, shown: ShownFilter, path_prefix: str = "",
                   classes: Optional[Sequence[str]] = None, species_threshold: Optional[float] = None) -> List[str]:
    """The command line that does what the page shows: its thresholds (per class too), suspects,
    classes and path prefix, as the command's own flags; ``species_threshold`` (a classified file)
    for ``draw``, whose labels name a species from that score. ``crops`` takes none: its crops.csv
    gives each crop's top species with its score, as the CSV and workbook rows do."""
    argv = ["results", action, results, "--out", out, "--images", images, "--threshold", repr(shown.threshold)]
    if shown.per_class:
        argv += ["--thresholds", join_names(f"{name}={value!r}" for name, value in shown.per_class)]
    if not shown.hide_suspect:
        argv.append("--show-suspect")
    if classes:
        argv += ["--classes", join_names(classes)]
    if path_prefix:
        argv += ["--path-prefix", path_prefix]
    if species_threshold is not None and action == "draw":
        argv += ["--species-threshold", repr(species_threshold)]
    return argv


def current_photo_job(out: str, action: str) -> Optional[JobInfo]:
    """The ``action`` job running into ``out``, clearing a stale lock."""
    return current(_lock(out, action))


def photo_jobs_running(out: str) -> bool:
    """Whether a draw or crops job writes into ``out`` now: while one does, the page follows its log."""
    return any(current_photo_job(out, action) is not None for action in ACTIONS)


def start_photo_job(action: str, results: str, out: str, images: str, shown: ShownFilter, path_prefix: str = "",
                    classes: Optional[Sequence[str]] = None, species_threshold: Optional[float] = None) -> JobInfo:
    """Launch ``python -m ssd results ACTION …`` into ``out`` in the background.

    ``JobError`` before anything is made when ``out`` is the images folder or inside it (the job's
    lock and log would be written among the originals; the command refuses it too) or the same job runs there.
    """
    if action not in ACTIONS:
        raise JobError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if not out.strip():
        raise JobError("name the folder to write into first (it is made if it does not exist)")
    if os.path.realpath(out) == os.path.realpath(images):
        raise JobError(f"'{out}' is the images folder: write into another folder, so that no original can be "
                       "touched (nothing was written)")
    if is_inside(images, out):
        raise JobError(f"'{out}' is inside the images folder: write into a folder outside it, so that no original "
                       "can be touched and the next detection run does not list the copies as photos (nothing "
                       "was written)")
    os.makedirs(out, exist_ok=True)
    running = current_photo_job(out, action)
    if running is not None:
        raise JobError(f"a {action} job is already writing into '{out}' (pid {running.pid})")
    return launch(_lock(out, action), photo_job_argv(action, results, out, images, shown, path_prefix, classes,
                                                     species_threshold),
                  out, _log(action), f"{action} job")


def photo_job_log(out: str, action: str, lines: int = 12) -> str:
    """The last lines of the job's log (its progress, then its summary)."""
    return read_log_tail(out, lines, _log(action))
