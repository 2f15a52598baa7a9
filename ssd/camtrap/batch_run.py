"""A camera-trap batch run: a folder in, a MegaDetector results file out, resumable and shardable.

One function, ``run_batch``, is what ``python -m ssd detect`` and the app's "Camera traps" job
run. Its steps, and why:

1. ``folders.list_inputs``: the deterministic file list (sorted walk, names relative to the one
   folder given), then ``folders.shard`` when N machines split the season.
2. What is already done is not redone: with ``resume``, the entries of the run's journal
   (``run_store``; an old-format checkpoint is converted once), and the entries of
   ``--previous-results`` (a season grows card by card), appended to the journal.
3. ``pipeline.run_pipeline`` decodes in threads while the network runs batches.
4. Each finished entry is appended to the journal; every ``checkpoint_every`` images (a video
   counts its sampled frames: one clip can be a thousand images' work), and when
   asked to stop (Ctrl-C / SIGTERM set ``stop``), the journal is flushed and fsynced: a cost in
   the entries since the last checkpoint, not in the run's length. A stop arriving once every
   file is done ends the run as a completed one (step 5), not as a stopped one. A resumed run ends with the
   same file as an uninterrupted one (timestamps aside), since entries are final when appended
   and the results are written in the file list's order.
5. Repeated boxes are flagged over the whole list, the results written atomically by streaming
   the entries back from the journal, the journal removed.

Memory: the journal keeps the entries on disk; the run holds one byte offset per listed file,
the failure messages, and (with ``flag_repeats``) the boxes that take part in repeat flagging,
so a season's run does not grow with its entries (figures in the README), nor with the decoded
pictures.
"""
from __future__ import annotations

import errno
import json
import os
import sys
import tempfile
import threading
import time
import weakref
from array import array
from contextlib import suppress
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, TextIO, Tuple, Union

from ssd.base.atomic import atomic_path, remove_stale_temps
from ssd.base.errors import OutputError
from ssd.camtrap.cameras import CameraRule
from ssd.camtrap.categories import run_categories
from ssd.camtrap.episodes import EpisodeFinder, with_episode
from ssd.camtrap.folders import FileList, list_inputs, refuse_input_overwrite, shard
from ssd.camtrap.megadetector import (ResultsError, image_entry, read_results,
                                        results_document)
from ssd.camtrap.pipeline import run_pipeline
from ssd.camtrap.progress import Progress
from ssd.camtrap.repeats import RepeatFinder
from ssd.camtrap.results import texts_have_time_source, write_results_csv
from ssd.camtrap.run_checkpoint import (compact, default_checkpoint_path, read_images_json, write_images_json,
                                         write_json_with_images)
from ssd.camtrap.run_store import RunStore, check_journal_target, default_journal_path
from ssd.camtrap.settings import RunSettings, model_weights
from ssd.camtrap.species import classification_head, species_names
from ssd.camtrap.video import video_entry

@dataclass
class BatchResult:
    """How a run ended: counts, failures, where things were written; the results on demand."""

    results: Union[str, IO[str], None]        # the results JSON to read back (None when stopped)
    head: Dict[str, Any]
    total: int
    processed: int
    failures: int
    stopped: bool = False
    checkpoint: Optional[str] = None
    hidden_skipped: int = 0
    suspects: int = 0
    failure_messages: List[str] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    companions_skipped: int = 0     # results files, spreadsheets, Timelapse databases beside the photos
    cut_short: int = 0              # videos that ended before their header said (entries with a "warning")
    time_source: bool = False       # some entry says where its time came from: the CSV has that column

    def __post_init__(self) -> None:
        if self.results is not None and not isinstance(self.results, str):
            weakref.finalize(self, self.results.close)      # the temporary file lives as long as the result

    @property
    def document(self) -> Optional[Dict[str, Any]]:
        """The whole results document as dicts, read back from the file written (parsed on each
        call: for small runs and tests; a run with no ``out_json`` wrote it to a temporary file)."""
        if self.results is None:
            return None
        if isinstance(self.results, str):
            with open(self.results, encoding="utf-8") as fh:
                return json.load(fh)
        self.results.seek(0)
        return json.load(self.results)

    def entries(self) -> Iterator[Dict[str, Any]]:
        """The results' entries one at a time, read from the file written (what the CLI's table
        and ``--csv -`` print: a season's document would take gigabytes as dicts)."""
        if self.results is None:
            return
        if isinstance(self.results, str):
            with open(self.results, encoding="utf-8") as fh:
                yield from read_images_json(fh)
            return
        self.results.seek(0)
        yield from read_images_json(self.results)


@dataclass
class _Run:
    """A run's settings with what is derived from them once: the journal's path, the categories
    written and the transform that makes them (MegaDetector's, say)."""

    settings: RunSettings
    classes: List[str]
    transform: Optional[Callable] = None
    engine: str = "mxnet"                     # the engine that runs (``auto`` resolved): part of the journal
    inference: Dict[str, Any] = field(default_factory=dict)   # engine, version, precision, device
    # the species classes of --previous-results (``species.classification_head``): its entries carried
    # keep their ``classifications``, ids into these, so the file written names them as well
    classified: Dict[str, Any] = field(default_factory=dict)

    @property
    def journal(self) -> Optional[str]:
        return journal_path(self.settings)

    @property
    def legacy_checkpoint(self) -> Optional[str]:
        """Where a run before the journal kept its checkpoint by default (``--resume`` converts it)."""
        s = self.settings
        return default_checkpoint_path(s.out_json) if s.out_json and not s.checkpoint else None


def journal_path(s: RunSettings) -> Optional[str]:
    """``--checkpoint`` as given, else beside the JSON output, else none."""
    return s.checkpoint or (default_journal_path(s.out_json) if s.out_json else None)


def _prepare(settings: RunSettings, det) -> _Run:
    transform, classes = run_categories(settings.categories, det.classes)
    return _Run(settings, list(classes or det.classes), transform, getattr(det, "engine", "mxnet"),
                det.engine_info() if hasattr(det, "engine_info") else {})


def _open_store(run: _Run, files: FileList) -> RunStore:
    """The run's entry store: the journal (resumed, or new), else a temporary one; previous
    results' entries not done yet are appended to it (read first: a bad file changes nothing)."""
    opts, ckpt = run.settings, run.journal
    settings = opts.journal_settings(run.classes, files.base, run.engine, run.inference.get("precision"),
                                     model_weights(opts.model) if ckpt else None)
    previous = _previous_entries(opts.previous_results, run)
    if ckpt and opts.resume:
        store = RunStore.resume(ckpt, settings, files.names, run.legacy_checkpoint)
    elif ckpt:
        store = RunStore.create(ckpt, settings, files.names)
    else:
        store = RunStore.temporary(files.names, os.path.dirname(os.path.abspath(opts.out_csv)) if opts.out_csv else None)
    try:
        store.adopt(previous)
    except BaseException:
        store.close()
        raise
    return store


def _model_name(s: RunSettings) -> str:
    """The model's name in ``info.detector``: its folder's."""
    return os.path.basename(os.path.normpath(s.model))


def _previous_entries(path: Optional[str], run: _Run) -> Dict[str, Dict[str, Any]]:
    """Entries of an earlier results file, by file name; refused when its categories differ, or
    its scores were made otherwise (engine, precision, floor, NMS, detections kept per image): this
    run's ``info`` names them. Its species classes, if a classifier ran on it, go to
    ``run.classified``: without them the entries carried named classes no file listed."""
    if not path:
        return {}
    from ssd.camtrap.megadetector import category_map, detector_name
    from ssd.camtrap.merging import scoring, scoring_difference

    doc = read_results(path)
    if doc["detection_categories"] != category_map(run.classes):
        raise ResultsError(f"--previous-results '{path}' has categories {doc['detection_categories']}, "
                           f"this model has {category_map(run.classes)}: use results of the same model")
    ours = detector_name(_model_name(run.settings))
    theirs = (doc.get("info") or {}).get("detector")
    if theirs != ours:
        raise ResultsError(f"--previous-results '{path}' comes from detector {theirs!r}, this run is {ours!r}: its "
                           "entries would be written as this model's; use results of the same model")
    s = run.settings
    differ = scoring_difference(scoring(doc), {"floor": s.floor, "nms": s.nms, "max_detections": s.max_detections,
                                               "frame_every": s.frame_every,
                                               **{k: run.inference.get(k) for k in ("engine", "precision")}})
    if differ:
        key, old, new = differ
        raise ResultsError(f"--previous-results '{path}' was made with {key} {old!r}, this run's is {new!r}: "
                           "its entries would be written as this run's; run with the same settings "
                           f"(--{key.replace('_', '-')} {old})")
    run.classified = classification_head(doc)
    return {im["file"]: im for im in doc["images"]}


STDERR = "stderr"   # run_batch's default stream: the sys.stderr of the call, not of the import


def run_batch(opts: RunSettings, detector=None, stop: Optional[threading.Event] = None,
              stream: Union[TextIO, str, None] = STDERR) -> BatchResult:
    """Run (or resume) a batch; returns the results, or a stopped result after checkpointing.

    Progress lines go to ``stream`` (None: nowhere). The default is looked up when called: a
    default bound at import kept whatever ``sys.stderr`` was then, a closed file by the time a
    later caller (a test harness that had captured it) ran a batch.
    """
    from ssd.inference.engines import load_detector

    if stream == STDERR:
        stream = sys.stderr
    journal = journal_path(opts)
    refuse_input_overwrite(opts.inputs, (opts.out_json, opts.out_csv, journal))
    if journal:
        check_journal_target(journal)           # before anything is loaded or written
    for out in (opts.out_json, opts.out_csv, journal):
        if out:
            remove_stale_temps(out)             # what a killed writer of these outputs left
    try:
        det = detector or load_detector(opts.model, opts.engine, opts.precision,
                                        log=(lambda s: print(s, file=stream)) if stream is not None else (lambda s: None))
        if stream is not None and hasattr(det, "describe"):
            print(f"engine: {det.describe()}", file=stream, flush=True)
        return _run(opts, det, stop, stream)
    except OSError as err:
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise OutputError(f"{err.strerror} while writing the run's files ({_where(opts, err)}): free some "
                              "space, then run the same command with --resume to continue; what was "
                              "checkpointed is kept") from None
        raise


def _where(opts: RunSettings, err: OSError) -> str:
    """The folder the failed write was in (the error's file name, else the outputs')."""
    target = err.filename or opts.out_json or opts.out_csv or opts.checkpoint or "."
    return os.path.dirname(os.path.abspath(str(target)))


def _run(opts: RunSettings, det, stop: Optional[threading.Event], stream: Optional[TextIO]) -> BatchResult:
    """``run_batch`` once the journal target is checked and the detector loaded."""
    t_start = time.time()
    run = _prepare(opts, det)
    ckpt = run.journal
    files = list_inputs(list(opts.inputs), opts.recursive, opts.absolute_paths,
                        exclude=[opts.out_json, opts.out_csv, ckpt, run.legacy_checkpoint, opts.progress_file])
    if opts.shard:
        files = shard(files, *opts.shard)
    store = _open_store(run, files)
    try:
        progress, failures, stopped = _process(run, det, files, store, stop, stream)
    except BaseException:
        if store.published:                     # keep what was done; an unpublished journal is dropped
            with suppress(OSError):             # (the error itself is what matters)
                store.checkpoint()
        store.close()
        raise
    if stopped:
        store.checkpoint()
        store.close()
        progress.report("stopped", force=True)
        return BatchResult(None, {}, len(files), progress.done, progress.failures, True, ckpt, files.hidden_skipped,
                           failure_messages=failures, companions_skipped=files.companions_skipped)
    try:
        store.checkpoint()                      # a kill while the results are written loses nothing
        rule = opts.camera_rule
        marks, suspects = _repeats(store, opts.flag_repeats, opts.threshold, rule) if opts.flag_repeats else ({}, 0)
        episodes = _episodes(store, opts.episode_gap, rule)
        cut, timed = count_cut_short(store.texts()), texts_have_time_source(store.texts())
        head, results = _write_results(run, lambda: _final_texts(store, marks, opts.flag_repeats > 0, episodes), cut,
                                       timed)
    except BaseException:
        store.close()
        raise
    store.discard()
    legacy = run.legacy_checkpoint
    if legacy and os.path.exists(legacy):       # a stale pre-journal checkpoint of this output
        os.unlink(legacy)
    progress.report("done", force=True)
    return BatchResult(results, head, len(files), progress.done, progress.failures, False, ckpt, files.hidden_skipped,
                       suspects, failures, {"seconds": time.time() - t_start}, files.companions_skipped, cut, timed)


def _process(run: _Run, det, files: FileList, store: RunStore, stop: Optional[threading.Event],
             stream: Optional[TextIO]) -> Tuple[Progress, List[str], bool]:
    """Run the files not done through the network, appending entries and checkpointing."""
    opts = run.settings
    failures = [store.prior_failures[i] for i in sorted(store.prior_failures)]
    todo = array("l", (i for i in range(len(files)) if not store.is_done(i)))   # not 10^6 int objects
    progress = Progress(len(files), len(files) - len(todo), stream, opts.progress_file)
    progress.failures = len(failures)
    progress.report(force=True)
    for i in [i for i in todo if i in files.failures]:      # folders that could not be listed
        store.add(i, compact(image_entry(files.names[i], None, files.failures[i])))
        progress.done += 1
        progress.failures += 1
        failures.append(files.failures[i])
    todo = array("l", (i for i in todo if i not in files.failures))
    since_ckpt, stopped = 0, False
    gen = run_pipeline(det, files.paths.take(todo), [files.names[i] for i in todo], opts.nms,
                       opts.floor, opts.batch_size, opts.workers, run.transform, opts.frame_every,
                       progress.clip)
    try:
        for out in gen:
            i = todo[out.index]
            store.add(i, compact(_entry(opts, files.names[i], out)))
            progress.done += 1
            if out.failure is not None:
                progress.failures += 1
                failures.append(out.failure)
            since_ckpt += max(1, len(out.frames or ()))     # a video: its frames' work, lost on a kill -9
            if store.path and since_ckpt >= max(1, opts.checkpoint_every):
                store.checkpoint()
                since_ckpt = 0
            progress.report()
            if stop is not None and stop.is_set():
                stopped = True
                break
    finally:
        gen.close()
    if stopped and progress.done >= len(files):
        # a stop after the last file: writing the results is the same work as the normal end, and
        # a stopped run would leave no results and a journal to --resume with nothing to do
        stopped = False
    return progress, failures, stopped


def _entry(opts: RunSettings, name: str, out) -> Dict[str, Any]:
    """A pipeline outcome as a results entry: a photo's, or a video's (its best frame's detections)."""
    if out.is_video:
        return video_entry(name, out.frames, out.fps, out.failure, opts.floor, opts.max_detections, out.warning,
                           out.datetime, out.datetime_source)
    return image_entry(name, out.raw, out.failure, opts.floor, out.datetime, opts.max_detections)


def count_cut_short(texts: Iterable[str]) -> int:
    """Entries (compact JSON texts, as the journal holds them) of videos cut short: a text search,
    as a key in a file name is escaped (``\\"``) and never matches."""
    return sum('"warning":' in t for t in texts)


def _write_results(run: _Run, texts: Callable[[], Iterator[str]], cut_short: int = 0,
                   time_source: bool = False) -> Tuple[Dict[str, Any], Union[str, IO[str]]]:
    """Write the JSON (and CSV) atomically, streaming the entries; returns the document's head and
    where it was written (a temporary file when there is no ``out_json``, for ``document``).
    ``info.ssd_batch.cut_short`` counts the videos cut short, so a reader sees it without a scan."""
    opts = run.settings
    extra = {"ssd_batch": {"floor": opts.floor, "nms": opts.nms, "max_detections": opts.max_detections,
                           "flag_repeats": opts.flag_repeats, "cut_short": int(cut_short),
                           "shard": list(opts.shard) if opts.shard else None, "episode_gap": opts.episode_gap,
                           "camera_depth": opts.camera_rule.recorded(),
                           "frame_every": opts.frame_every, "inference": run.inference, **opts.images_root(),
                           # which weights (sha1), not only the folder's name: shards merge only from one model
                           **({"model_weights": weights} if (weights := model_weights(opts.model)) else {})}}
    head = results_document([], run.classes, _model_name(opts), opts.threshold, extra)
    head.pop("images")
    head.update(run.classified)
    results: Union[str, IO[str]]
    if opts.out_json:
        write_json_with_images(opts.out_json, head, texts())
        results = opts.out_json
    else:
        results = tempfile.TemporaryFile("w+", encoding="utf-8")
        write_images_json(results, head, texts())
        results.flush()
    if opts.out_csv:
        with atomic_path(opts.out_csv) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            write_results_csv(fh, head["detection_categories"], (json.loads(t) for t in texts()), time_source,
                              species_names(head))
    return head, results


def _repeats(store: RunStore, min_images: int, min_conf: float,
             rule: CameraRule) -> Tuple[Dict[int, Set[int]], int]:
    """Repeated boxes over the whole list, read from the store: entry number → detection indices.

    Holds only the detections ≥ ``min_conf`` (``repeats.RepeatFinder``), never the entries.
    """
    finder = RepeatFinder(min_conf, camera=rule)
    for k, t in enumerate(store.texts()):
        if '"detections":[{' in t:
            finder.add(k, json.loads(t))
    marks = finder.repeats(min_images)
    return marks, sum(len(m) for m in marks.values())


def _episodes(store: RunStore, gap: float, rule: CameraRule) -> List[str]:
    """Each entry's episode id (``episodes.EpisodeFinder``: 16 bytes per entry held, not the entries)."""
    finder = EpisodeFinder(rule)
    for t in store.texts():
        entry = json.loads(t)
        finder.add(entry["file"], entry.get("datetime"))
    return finder.ids(gap)


def _final_texts(store: RunStore, marks: Dict[int, Set[int]], flagging: bool, episodes: List[str]) -> Iterator[str]:
    """The entries as written to the results: in list order, with their episode ids and this run's
    ``suspect`` marks (old marks cleared when flagging, as ``repeats.flag_repeats`` does)."""
    for k, t in enumerate(store.texts()):
        if k in marks or (flagging and '"suspect"' in t):
            entry = json.loads(t)
            which = marks.get(k, ())
            for j, d in enumerate(entry.get("detections") or []):
                d.pop("suspect", None)
                if j in which:
                    d["suspect"] = True
            t = compact(entry)
        yield with_episode(t, episodes[k])
