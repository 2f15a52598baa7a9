"""A results file (ours or MegaDetector's) as the CSV ``detect --csv`` writes, read as it goes.

Why: ``results export --format csv`` and the Camera traps page's "Results (CSV)" download turn a
file on disk into CSV. Parsed whole, a season of ~84 boxes an image down to the results floor
needed gigabytes of Python objects; here the file is read a chunk of entries at a time
(``results_stream``) and each entry's rows written to a file before the next chunk is parsed, so
memory stays a few MB whatever the season's size. The rows are ``results.write_csv_entries``',
the ones ``detect --csv`` writes: every box down to the floor (a spreadsheet or script thresholds
them), one row per image without any, one per failure, no formula in a cell.

The ``TIME_SOURCE`` column is there only when some entry carries it, which is known once every
entry is read: a file whose first such entry (a video's) comes after others is written a second
time, with the column. A second pass of the reader (MegaDetector's categories after the images,
or an unusual file read whole) starts the output again too: the writer needs a file it can rewind.
"""
from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, List, Optional

from ssd.base.atomic import atomic_path
from ssd.base.cells import CsvWriter
from ssd.base.text import ESCAPED
from ssd.camtrap.results import TIME_SOURCE, csv_head, write_csv_entries
from ssd.camtrap.results_check import ResultsError
from ssd.camtrap.species import species_names


@dataclass
class CsvCounts:
    """What the CSV holds (the command says it on stderr)."""

    images: int = 0
    rows: int = 0
    failed: int = 0


class _TimedEntry(Exception):
    """An entry carries ``TIME_SOURCE`` and the CSV was begun without its column."""


def write_results_csv_of(path: str, fh: IO[str], prefix: Optional[str] = None) -> CsvCounts:
    """The CSV of the results file ``path`` written into ``fh``, a text file that can be rewound
    and truncated (rewritten from its start at each pass); names below ``prefix`` made relative
    (``rebase.Renamer``, refused as ``rebase_results`` refuses them). Refused as ``read_results``
    refuses the file."""
    timed = False
    while True:
        try:
            return _write_pass(path, fh, prefix, timed)
        except _TimedEntry:
            timed = True


def _write_pass(path: str, fh: IO[str], prefix: Optional[str], timed: bool) -> CsvCounts:
    """One writing of the CSV, with or without the ``TIME_SOURCE`` column; ``_TimedEntry`` where
    it was left out and an entry carries it. A name the prefix refuses is raised once the file is
    read, so that a fault of the file further on comes first, as when it was read whole."""
    from ssd.camtrap.rebase import Renamer
    from ssd.camtrap.results_stream import read_results_streamed

    state: Dict[str, Any] = {}

    def take(head: Dict[str, Any]) -> Callable[[List[Dict[str, Any]]], None]:
        fh.seek(0)
        fh.truncate()
        state.clear()                       # a second pass: what the first wrote is dropped
        state["counts"], writer = CsvCounts(), CsvWriter(fh)
        try:
            state["renamer"] = Renamer(prefix) if prefix is not None else None
        except ResultsError as error:
            state["renamed"] = error
        species = species_names(head)
        writer.writerow(csv_head(timed, species is not None))
        cats = head.get("detection_categories") or {}

        def sink(entries: List[Dict[str, Any]]) -> None:
            if not timed and any(e.get(TIME_SOURCE) for e in entries):
                raise _TimedEntry
            if "renamed" in state:
                return
            try:
                entries = _renamed(entries, state["renamer"])
            except ResultsError as error:
                state["renamed"] = error
                return
            _count(state["counts"], entries, write_csv_entries(writer, cats, entries, timed, species))
        return sink

    read_results_streamed(path, take)
    if "renamed" in state:
        raise state["renamed"]
    return state["counts"]


def _renamed(entries: List[Dict[str, Any]], renamer: Any) -> List[Dict[str, Any]]:
    """``entries`` with their names below the prefix (as given where there is none)."""
    if renamer is None:
        return entries
    return [{**e, "file": renamer.name(e["file"])} for e in entries]


def _count(counts: CsvCounts, entries: List[Dict[str, Any]], rows: int) -> None:
    counts.images += len(entries)
    counts.rows += rows
    counts.failed += sum(e.get("detections") is None for e in entries)


def write_results_csv_file(path: str, out: str, prefix: Optional[str] = None) -> CsvCounts:
    """The CSV at ``out``, written under a temporary name and renamed: nothing there when refused.
    Opened as ``detect --csv`` opens its file (UTF-8, the writer's own line ends); a name UTF-8
    cannot hold (another tool's lone surrogate) written as detect names it (``ESCAPED``)."""
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="", errors=ESCAPED) as fh:
        return write_results_csv_of(path, fh, prefix)


def copy_results_csv(path: str, out: IO[str], prefix: Optional[str] = None) -> CsvCounts:
    """The CSV copied to ``out`` (stdout) once whole: a pipe cannot be rewound for a second pass,
    and a refusal leaves it empty rather than cut off."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="", errors=ESCAPED) as fh:
        counts = write_results_csv_of(path, fh, prefix)
        fh.seek(0)
        shutil.copyfileobj(fh, out)
    return counts


def results_csv_bytes(path: str, prefix: Optional[str] = None) -> bytes:
    """The CSV as bytes (the page's download): made in a temporary file and read back once, so
    memory holds the CSV's bytes, not the season's entries."""
    with tempfile.TemporaryFile("w+b") as raw:
        fh = io.TextIOWrapper(raw, encoding="utf-8", newline="", errors=ESCAPED)
        write_results_csv_of(path, fh, prefix)
        fh.flush()
        raw.seek(0)
        data = raw.read()
        fh.detach()
        return data
