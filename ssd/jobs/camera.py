"""Camera-trap batch runs as background jobs (the Camera traps page): ``python -m ssd detect``."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Collection, Dict, List, Optional, Tuple

from ssd.base.errors import JobError
from ssd.base.text import format_duration, terminal_safe
from ssd.base.json_file import MAX_STATE_BYTES, read_json_file
from ssd.camtrap.results_files import is_results_file
from ssd.camtrap.run_store import default_journal_path
from ssd.camtrap.settings import RunSettings, SettingsError
from ssd.jobs.process import (JobInfo, current, folders_holding, launch, read_log_tail, remove_file, stop,
                              valid_model_name)

BATCH_LOCK_FILE = ".camera.lock"
BATCH_LOG_FILE = "detect.log"
BATCH_RESULTS = "results.json"
BATCH_CSV = "results.csv"
BATCH_PROGRESS = "progress.json"
BATCH_JOURNAL = default_journal_path(BATCH_RESULTS)      # the run's checkpoint, beside its results
BATCH_SETTINGS = "run.json"
#: A run folder's own bookkeeping, never offered as results to browse.
_RUN_BOOKKEEPING = frozenset({BATCH_SETTINGS, BATCH_PROGRESS, BATCH_JOURNAL})
#: The run name offered when no run's folder gives a better one.
DEFAULT_RUN_NAME = "season"


def camera_runs_dir() -> str:
    """Where the app keeps batch runs: ``<data folder>/.camera-runs`` (hidden from dataset lists)."""
    from ssd.workspace import data_dir

    return os.path.join(data_dir(), ".camera-runs")


def current_batch_job(runs_root: str) -> Optional[JobInfo]:
    """The running camera-trap batch of this runs folder, clearing a stale lock."""
    return current(os.path.join(runs_root, BATCH_LOCK_FILE))


#: Images between checkpoints of a run the page starts: a page user stops and resumes more often
#: than a command-line run (whose default is ``RunSettings.checkpoint_every``).
PAGE_CHECKPOINT_EVERY = 100


def in_run_folder(settings: RunSettings, run_dir: str) -> RunSettings:
    """The settings with the run folder's outputs: results, CSV and progress in ``run_dir``."""
    return dataclasses.replace(settings, out_json=os.path.join(run_dir, BATCH_RESULTS),
                               out_csv=os.path.join(run_dir, BATCH_CSV),
                               progress_file=os.path.join(run_dir, BATCH_PROGRESS), checkpoint=None)


def batch_argv(settings: RunSettings, resume: bool = False) -> List[str]:
    """The ``detect`` command line of a batch run: derived from the settings, not rebuilt by hand."""
    return ["detect", "--quiet"] + dataclasses.replace(settings, resume=resume).to_argv()


def start_batch_job(runs_root: str, name: str, settings: Optional[RunSettings] = None,
                    resume: bool = False, replace: bool = False) -> JobInfo:
    """Start (or, with ``resume``, continue) the batch run ``runs_root/name`` in the background.

    ``settings``: made by the page from its form; saved in the run's ``run.json`` (with the run
    folder's outputs) so a reloaded page can resume it without asking again. A new start under the
    name of a run with results or a checkpoint deletes them: refused unless ``replace``.
    """
    problem = valid_model_name(name)
    if problem:
        raise JobError(f"run name {name!r}: {problem}")
    run_dir = os.path.join(runs_root, name)
    if resume:
        settings = batch_settings(run_dir)
    folder = settings.inputs[0] if settings is not None and settings.inputs else ""
    if not os.path.isdir(folder):
        raise JobError(f"'{folder}' is not a folder on this machine")
    os.makedirs(runs_root, exist_ok=True)
    running = current_batch_job(runs_root)
    if running is not None:
        raise JobError(f"a camera-trap run is already going: {running.name} (pid {running.pid}); "
                       "stop it or wait for it to finish")
    settings = in_run_folder(settings, run_dir)

    def prepare() -> None:          # under the runs folder's lock: no other tab's Start is half-way
        if not resume and not replace:
            _refuse_to_replace(run_dir, name)
        os.makedirs(run_dir, exist_ok=True)
        settings.save(os.path.join(run_dir, BATCH_SETTINGS))
        if not resume:
            for f in (BATCH_PROGRESS, BATCH_RESULTS, BATCH_CSV, BATCH_JOURNAL):
                remove_file(os.path.join(run_dir, f))

    return launch(os.path.join(runs_root, BATCH_LOCK_FILE), batch_argv(settings, resume), run_dir,
                  BATCH_LOG_FILE, "camera-trap run", prepare)


def _refuse_to_replace(run_dir: str, name: str) -> None:
    """``JobError`` when ``run_dir`` holds a run's results or checkpoint: hours of work, not wiped unasked."""
    if not any(os.path.isfile(os.path.join(run_dir, f)) for f in (BATCH_RESULTS, BATCH_JOURNAL, BATCH_PROGRESS)):
        return
    status = batch_status(run_dir)
    raise JobError(f"a run named {name!r} already exists ({status['state']}, {status.get('done', 0)}/"
                   f"{status.get('total', 0)} images): choose another run name, or replace it "
                   "(its results and checkpoint are deleted)")


def stop_batch_job(runs_root: str, timeout: float = 0.0, pid: Optional[int] = None) -> bool:
    """SIGTERM the running batch (with ``pid``: only if it is that one): it writes its checkpoint
    and exits, ready to resume."""
    return stop(os.path.join(runs_root, BATCH_LOCK_FILE), timeout, pid)


def batch_settings(run_dir: str) -> Optional[RunSettings]:
    """The run's saved settings; None when its run.json is missing or not a run's settings."""
    try:
        return RunSettings.load(os.path.join(run_dir, BATCH_SETTINGS))
    except SettingsError:
        return None


def batch_log_tail(run_dir: str, lines: int = 20) -> str:
    """The last lines of a batch run's log."""
    return read_log_tail(run_dir, lines, BATCH_LOG_FILE)


def batch_status(run_dir: str, running: bool = False) -> Dict[str, Any]:
    """The run's last progress report; ``state`` is ``running``, ``done``, ``stopped`` or ``interrupted``."""
    try:
        st = read_json_file(os.path.join(run_dir, BATCH_PROGRESS), MAX_STATE_BYTES)
    except (OSError, ValueError):
        st = {"state": "running" if running else "new", "done": 0, "total": 0}
    if running:
        st["state"] = "running"
    elif st.get("state") == "running":
        st["state"] = "interrupted"         # killed without its last report: resumable from the checkpoint
    if os.path.isfile(os.path.join(run_dir, BATCH_RESULTS)) and not running:
        st["state"] = "done"
    return st


def _clip_of(status: Dict[str, Any]) -> Optional[Tuple[str, int, int]]:
    """``(file, frames looked at, frames to look at (0: unknown))`` of the clip the run is in, when
    its status says so in the form ``progress.Progress`` writes; else ``None``."""
    clip = status.get("clip")
    if not isinstance(clip, dict):
        return None
    name, done, total = clip.get("file"), clip.get("frames_done"), clip.get("frames_total")
    if isinstance(name, str) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (done, total)):
        return name, done, total
    return None


def batch_progress_text(status: Dict[str, Any], show_name: Callable[[str], str] = terminal_safe) -> str:
    """The run panel's progress text: images done, and the frames of the clip being looked at (a long
    clip decodes for minutes while the image count stays put), as the run's log line says it;
    ``show_name`` escapes the clip's name for where it is shown (the page: Markdown)."""
    done, total = int(status.get("done") or 0), int(status.get("total") or 0)
    clip = _clip_of(status)
    within = f" ({show_name(clip[0])}: {clip[1]}/{clip[2] or '?'} frames)" if clip else ""
    return (f"{done}/{total} images{within}, {status.get('rate', 0):.1f} images/s, "
            f"ETA {format_duration(status.get('eta_s'))}, {status.get('failures', 0)} failed")


def batch_progress_fraction(status: Dict[str, Any]) -> float:
    """The run's share done for a progress bar, moving within a clip by its frames."""
    done, total = int(status.get("done") or 0), int(status.get("total") or 0)
    if not total:
        return 0.0
    clip = _clip_of(status)
    part = min(1.0, clip[1] / clip[2]) if clip and clip[2] else 0.0
    return min(1.0, (done + part) / total)


def batch_runs(runs_root: str) -> List[str]:
    """Batch run folders, newest first."""
    return folders_holding(runs_root, BATCH_SETTINGS)


def finished_results(runs_root: str) -> Dict[str, float]:
    """The results file of each finished run and when it was written, the newest first."""
    found = []
    for run_dir in batch_runs(runs_root):
        path = os.path.join(run_dir, BATCH_RESULTS)
        try:
            found.append((os.stat(path).st_mtime, path))
        except OSError:
            continue                            # running, stopped or failed: no results yet
    return {path: stamp for stamp, path in sorted(found, reverse=True)}


def run_results_files(runs_root: str) -> Dict[str, float]:
    """Every results file in the runs' folders, the newest first: a run's ``results.json``, and the
    cleaned file a repeat review wrote beside it (or a merge or rebase saved there), so the page
    reopens any of them without its path being typed. Dot files (half-written) are left out, and so
    is any other JSON: only files that start as MegaDetector results (``is_results_file``, a few
    kilobytes read once per file version) are listed."""
    found = []
    for run_dir in batch_runs(runs_root):
        try:
            names = os.listdir(run_dir)
        except OSError:
            continue
        for name in names:
            path = os.path.join(run_dir, name)
            if name.endswith(".json") and not name.startswith(".") and name not in _RUN_BOOKKEEPING \
                    and os.path.isfile(path) and is_results_file(path):
                found.append((os.stat(path).st_mtime, path))
    return {path: stamp for stamp, path in sorted(found, reverse=True)}


def results_label(path: str) -> str:
    """How a run's results file is named in a list: the run's own results by the run's name, any
    other by the run's name and its file name, a repeat review's cleaned file said to be one."""
    run, name = os.path.basename(os.path.dirname(path)), os.path.basename(path)
    if name == BATCH_RESULTS:
        return run
    return f"{run} · {name}" + (" (cleaned by a repeat review)" if name.endswith(".reviewed.json") else "")


def form_defaults(runs_root: str) -> Tuple[str, str]:
    """``(photo folder, run name)`` a new session's run form offers: the newest run's folder, and a
    name no run has yet (the folder's, else ``season``), numbered on (``-2``, ``-3``…) if taken.
    Made from the runs folder, not kept by the browser, so any new tab or browser offers them, and
    its Start is not refused for a name an earlier run already has."""
    folder = ""
    for run_dir in batch_runs(runs_root):
        saved = batch_settings(run_dir)
        if saved is not None and saved.inputs and os.path.isdir(saved.inputs[0]):
            folder = saved.inputs[0]
            break
    base = os.path.basename(os.path.normpath(folder))[:60] if folder else ""
    if valid_model_name(base):
        base = DEFAULT_RUN_NAME
    name, n = base, 2
    while os.path.lexists(os.path.join(runs_root, name)):
        name, n = f"{base}-{n}", n + 1
    return folder, name


def results_to_show(finished: Dict[str, float], seen: Dict[str, float], current: Optional[str], other: str,
                    listed: Optional[Dict[str, float]] = None, mine: Optional[Collection[str]] = None) -> str:
    """Which results the Camera traps page shows; ``other`` is its "another results file" choice.

    A run that finished since the page last looked (``seen``: ``finished`` then) is shown, the
    newest such first: the page names that run as finished, so its results are the ones a user
    expects. Otherwise the user's own pick stays while it is still there (a filter change must
    never switch runs), else the newest finished run, else ``other``. ``listed``: every file the
    page lists (default ``finished``), any of which the user may have picked. ``mine``: the run
    folders this session started (None: any run): another person's run finishing on the same
    server must not pull this page away from the results its user is looking at.
    """
    fresh = [path for path, stamp in finished.items()
             if seen.get(path) != stamp and (mine is None or os.path.dirname(path) in mine)]
    if fresh:
        return fresh[0]
    if current == other or current in (finished if listed is None else listed):
        return current
    return next(iter(finished), other)
