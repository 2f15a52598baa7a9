"""A camera-trap batch run: a folder in, a MegaDetector results file out, resumable and shardable.

One function, ``run_batch``, is what ``python -m ssd detect`` and the app's "Camera traps" job
run. Its steps, and why:

1. ``folders.list_inputs``: the deterministic file list (sorted walk, names relative to the one
   folder given), then ``folders.shard`` when N machines split the season.
2. What is already done is not redone: entries of ``--previous-results`` (a season grows card by
   card) and, with ``resume``, of the checkpoint.
3. ``pipeline.run_pipeline`` decodes in threads while the network runs batches.
4. Every ``checkpoint_every`` images, and when asked to stop (Ctrl-C / SIGTERM set ``stop``),
   the checkpoint is rewritten atomically; a resumed run ends with the same file as an
   uninterrupted one (timestamps aside), since entries are final when checkpointed and the
   results are written in the file list's order.
5. Repeated boxes are flagged over the whole list, the results written atomically, the
   checkpoint removed.

Memory: each finished entry is kept as compact JSON text (about a tenth of the dicts it came
from) and the files are written by streaming those texts, so a season's run grows by a few
kilobytes per image at most (figures in the README), not by the decoded pictures.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, TextIO, Tuple

import json
import posixpath

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.inference.folders import FileList, list_inputs, shard
from ssd.inference.megadetector import (DEFAULT_FLOOR, DEFAULT_MAX_DETECTIONS, ResultsError, image_entry, read_results,
                                        results_document)
from ssd.inference.pipeline import run_pipeline
from ssd.inference.repeats import flag_repeats
from ssd.inference.results import results_csv
from ssd.inference.run_checkpoint import (compact, default_checkpoint_path, load_checkpoint, save_checkpoint,
                                          write_json_with_images)

PROGRESS_EVERY_S = 2.0


@dataclass
class BatchOptions:
    """Everything a batch run depends on (the CLI's flags, the app's form)."""

    model: str
    inputs: List[str]
    out_json: Optional[str] = None
    out_csv: Optional[str] = None
    recursive: bool = False
    absolute_paths: bool = False
    threshold: float = 0.2
    floor: float = DEFAULT_FLOOR
    max_detections: int = DEFAULT_MAX_DETECTIONS
    nms: float = 0.45
    batch_size: int = 8
    workers: int = 2
    checkpoint: Optional[str] = None
    checkpoint_every: int = 500
    resume: bool = False
    previous_results: Optional[str] = None
    shard: Optional[Tuple[int, int]] = None
    flag_repeats: int = 0                      # 0: off; K: a box in ≥ K images of a folder is suspect
    progress_file: Optional[str] = None        # JSON status for the app (rewritten every few seconds)
    transform: Optional[Callable] = None       # RawDetections → RawDetections (e.g. MegaDetector classes)
    classes: Optional[List[str]] = None        # the classes ``transform`` produces (None: the model's)
    precision: Optional[str] = None            # fp32 | int8 | None: the model's evaluated default


@dataclass
class BatchResult:
    """How a run ended: counts, failures, where things were written; the results on demand."""

    texts: Optional[List[str]]                 # the images' entries as JSON text (None when stopped)
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

    @property
    def document(self) -> Optional[Dict[str, Any]]:
        """The whole results document as dicts (parsed on each call: for small runs and tests)."""
        if self.texts is None:
            return None
        return dict(self.head, images=[json.loads(t) for t in self.texts])


def checkpoint_path(opts: BatchOptions) -> Optional[str]:
    """``--checkpoint`` as given, else beside the JSON output, else none."""
    if opts.checkpoint:
        return opts.checkpoint
    return default_checkpoint_path(opts.out_json) if opts.out_json else None


def _classes(opts: BatchOptions, det) -> List[str]:
    """The categories written: the transform's (MegaDetector's, say) or the model's own."""
    return list(opts.classes) if opts.classes else list(det.classes)


def _settings(opts: BatchOptions, det, files: FileList) -> Dict[str, Any]:
    """What decides the entries: a checkpoint made with other values cannot be resumed."""
    return {"model": os.path.abspath(opts.model), "classes": _classes(opts, det), "nms": float(opts.nms),
            "floor": float(opts.floor), "max_detections": int(opts.max_detections),
            "shard": list(opts.shard) if opts.shard else None,
            "base": files.base, "absolute_paths": bool(opts.absolute_paths)}


def _already_done(opts: BatchOptions, det, files: FileList, settings: Dict[str, Any],
                  ckpt: Optional[str]) -> Dict[str, str]:
    """Entries (compact JSON by file name) not to redo: the previous results', then the checkpoint's."""
    wanted = set(files.names)
    done = {k: compact(v) for k, v in _previous_entries(opts.previous_results, _classes(opts, det)).items() if k in wanted}
    if opts.resume and ckpt:
        done.update({e["file"]: compact(e) for e in load_checkpoint(ckpt, settings) if e.get("file") in wanted})
    return done


def _previous_entries(path: Optional[str], classes: List[str]) -> Dict[str, Dict[str, Any]]:
    """Entries of an earlier results file, by file name; refused when its categories differ."""
    if not path:
        return {}
    from ssd.inference.megadetector import category_map

    doc = read_results(path)
    if doc["detection_categories"] != category_map(classes):
        raise ResultsError(f"--previous-results '{path}' has categories {doc['detection_categories']}, "
                           f"this model has {category_map(classes)}: use results of the same model")
    return {im["file"]: im for im in doc["images"]}


class _Progress:
    """done/total, images/s, ETA and failures on stderr (and in a status file for the app)."""

    def __init__(self, total: int, done: int, stream: Optional[TextIO], status_file: Optional[str]) -> None:
        self.total, self.start_done, self.done, self.failures = total, done, done, 0
        self.stream, self.status_file = stream, status_file
        self.t0 = self.last = time.time()

    def rate(self) -> float:
        dt = time.time() - self.t0
        return (self.done - self.start_done) / dt if dt > 0 else 0.0

    def report(self, state: str = "running", force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else None
        if self.stream is not None:
            eta_txt = f"{eta:.0f} s" if eta is not None else "?"
            print(f"{state}: {self.done}/{self.total} images, {rate:.1f} images/s, ETA {eta_txt}, "
                  f"{self.failures} failed", file=self.stream, flush=True)
        if self.status_file:
            atomic_write_json(self.status_file, {"state": state, "done": self.done, "total": self.total,
                                                 "rate": rate, "eta_s": eta, "failures": self.failures,
                                                 "time": now, "pid": os.getpid()})


def run_batch(opts: BatchOptions, detector=None, stop: Optional[threading.Event] = None,
              stream: Optional[TextIO] = sys.stderr) -> BatchResult:
    """Run (or resume) a batch; returns the results, or a stopped result after checkpointing."""
    from ssd.inference.detector import Detector

    t_start = time.time()
    det = detector or Detector.load(opts.model, precision=opts.precision)
    ckpt = checkpoint_path(opts)
    files = list_inputs(opts.inputs, opts.recursive, opts.absolute_paths,
                        exclude=[opts.out_json, opts.out_csv, ckpt, opts.progress_file])
    if opts.shard:
        files = shard(files, *opts.shard)
    settings = _settings(opts, det, files)
    done = _already_done(opts, det, files, settings, ckpt)
    failures = [json.loads(t).get("failure") or "" for t in done.values() if '"detections":null' in t]
    todo = [i for i, n in enumerate(files.names) if n not in done]
    progress = _Progress(len(files), len(files) - len(todo), stream, opts.progress_file)
    progress.failures = len(failures)
    progress.report(force=True)
    since_ckpt, stopped = 0, False
    gen = run_pipeline(det, [files.paths[i] for i in todo], [files.names[i] for i in todo], opts.nms,
                       opts.floor, opts.batch_size, opts.workers, opts.transform)
    try:
        for out in gen:
            name = files.names[todo[out.index]]
            done[name] = compact(image_entry(name, out.raw, out.failure, opts.floor, out.datetime,
                                             opts.max_detections))
            progress.done += 1
            if out.failure is not None:
                progress.failures += 1
                failures.append(out.failure)
            since_ckpt += 1
            if ckpt and since_ckpt >= max(1, opts.checkpoint_every):
                save_checkpoint(ckpt, settings, _ordered(files, done))
                since_ckpt = 0
            progress.report()
            if stop is not None and stop.is_set():
                stopped = True
                break
    finally:
        gen.close()
    if stopped:
        if ckpt:
            save_checkpoint(ckpt, settings, _ordered(files, done))
        progress.report("stopped", force=True)
        return BatchResult(None, {}, len(files), progress.done, progress.failures, True, ckpt, files.hidden_skipped,
                           failure_messages=failures)
    texts = _ordered(files, done)
    del done
    suspects = _flag_repeats(texts, opts.flag_repeats, opts.threshold) if opts.flag_repeats else 0
    head = _write_results(opts, det, texts)
    if ckpt and os.path.exists(ckpt):
        os.unlink(ckpt)
    progress.report("done", force=True)
    return BatchResult(texts, head, len(files), progress.done, progress.failures, False, ckpt, files.hidden_skipped,
                       suspects, failures, {"seconds": time.time() - t_start})


def _write_results(opts: BatchOptions, det, texts: List[str]) -> Dict[str, Any]:
    """Write the JSON (and CSV) atomically, streaming the entries; returns the document's head."""
    extra = {"ssd_batch": {"floor": opts.floor, "nms": opts.nms, "flag_repeats": opts.flag_repeats,
                           "shard": list(opts.shard) if opts.shard else None}}
    head = results_document([], _classes(opts, det), os.path.basename(os.path.normpath(opts.model)), opts.threshold, extra)
    head.pop("images")
    if opts.out_json:
        write_json_with_images(opts.out_json, head, texts)
    if opts.out_csv:
        with atomic_path(opts.out_csv) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(results_csv({"detection_categories": head["detection_categories"],
                                  "images": (json.loads(t) for t in texts)}))
    return head


def _ordered(files: FileList, done: Dict[str, str]) -> List[str]:
    """The finished entries (JSON text) in the file list's order."""
    return [done[n] for n in files.names if n in done]


def _flag_repeats(texts: List[str], min_images: int, min_conf: float) -> int:
    """``repeats.flag_repeats`` one camera folder at a time, so only one folder is ever parsed."""
    by_folder: Dict[str, List[int]] = {}
    for i, t in enumerate(texts):
        file = json.loads(t)["file"] if '"detections":[{' in t else None
        if file is not None:
            by_folder.setdefault(posixpath.dirname(file), []).append(i)
    marked = 0
    for idx in by_folder.values():
        entries = [json.loads(texts[i]) for i in idx]
        marked += flag_repeats(entries, min_images, min_conf)
        for i, e in zip(idx, entries):
            texts[i] = compact(e)
    return marked
