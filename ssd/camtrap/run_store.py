"""A batch run's finished entries, appended to a journal on disk: flat memory, O(new) checkpoints.

Why: a season is 10^4 to 10^6 images. Holding every finished entry in memory and rewriting them
all at each checkpoint made memory grow with the run and checkpoint I/O quadratic in its length
(at 10^6 images, some 2,000 rewrites of a file growing to gigabytes). Here each entry is written
once, as one line appended to ``season.checkpoint.jsonl``; a checkpoint is a flush and an fsync of
what was appended since the last one; memory holds one byte offset per listed file (8 bytes),
never an entry. The results are written by reading the lines back in the file list's order.

Format (UTF-8 text, one JSON value per line, so ``jq`` and ``head`` can read it):

    {"ssd_batch_journal":1,"settings":{...}}    the settings that decide the entries
    {"file":"cam1/a.jpg",...}                    one compact results entry per finished image

Crash rules:

* The journal is written under a temporary name (``.NAME.XXXX.tmp``) until its first checkpoint,
  then renamed: a run started without ``--resume`` leaves the previous checkpoint alone until it
  has one of its own, as the rewritten checkpoint did.
* A ``kill -9`` loses at most the lines appended since the last checkpoint (some of those reach
  the file anyway) and never touches earlier ones: lines are only ever appended.
* On resume the lines are read up to the first one that is torn (no newline: the kill came in
  the middle of a write) or malformed (NUL bytes, not an entry), and the file is truncated there;
  what followed is simply redone.
* A file on several lines (redone after a crash) counts once: the last line wins.
* A line longer than ``MAX_LINE_BYTES`` (no entry is) is refused, naming the file and line,
  after reading at most that much of it: a damaged journal never fills memory.

``--resume`` also takes a checkpoint of the older one-document format (``run_checkpoint``) and
converts it into a journal once.
"""
from __future__ import annotations

import itertools
import json
import os
import tempfile
from array import array
from json.decoder import scanstring
from typing import IO, Any, Dict, Iterator, List, Mapping, Optional, Sequence

from ssd.base.atomic import atomic_path, remove_stale_temps, replace_with, temp_beside
from ssd.base.json_file import open_regular
from ssd.camtrap.megadetector import ResultsError
from ssd.camtrap.run_checkpoint import check_settings, compact, load_checkpoint

JOURNAL_VERSION = 1
_HEADER_PREFIX = b'{"ssd_batch_journal":'
_ENTRY_PREFIX = b'{"file":"'
_FAILED = b'"detections":null'

MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest line a journal may hold (16 MiB); longer ones are refused, read only this far.

Why this much: a detection is about 90 bytes of compact JSON (with a video's ``frame_number``);
an SSD keeps at most one per anchor (24,564 for SSD512), far fewer than the ~180,000 that fit.
A path of PATH_MAX (4,096 bytes) escaped as ``\\uXXXX`` takes 24 KB, a video's
``frames_processed`` (at most ``video.MAX_FRAMES`` numbers) a few KB, the header's settings
less. A default entry (100 detections) is about 10 KB: the cap is over a thousand times that,
and still a bounded amount to read before refusing a line that has no newline for gigabytes.
"""


def default_journal_path(out_json: str) -> str:
    """Beside the output: ``season.json`` → ``season.checkpoint.jsonl``."""
    root, _ = os.path.splitext(out_json)
    return root + ".checkpoint.jsonl"


class RunStore:
    """The finished entries of one run's file list: appended to a file, read back in list order.

    In memory: ``array('q')`` of one byte offset per listed file (-1: not done), the file list
    (shared with the run, not copied) and the failure messages of entries found on opening.
    """

    def __init__(self, names: Sequence[str], fh: IO[bytes], path: Optional[str], tmp: Optional[str],
                 end: int) -> None:
        self.names = names
        self.path = path                        # the journal's name (None: a temporary store)
        self.prior_failures: Dict[int, str] = {}  # index → message of failed entries found on opening
        self._fh = fh
        self._tmp = tmp                         # the name written under until the first checkpoint
        self._end = end                         # where the next line goes
        self._pos = end                         # where the handle is (reading moves it)
        self._offsets = array("q", [-1]) * len(names)

    # ----- opening

    @classmethod
    def create(cls, path: str, settings: Dict[str, Any], names: Sequence[str]) -> "RunStore":
        """A new journal for ``path``, under a temporary name until its first ``checkpoint``."""
        check_journal_target(path)
        remove_stale_temps(path)
        fd, tmp = temp_beside(path)
        fh = os.fdopen(fd, "w+b")
        _hold(fh, path)
        header = _header(settings)
        fh.write(header)
        return cls(names, fh, path, tmp, len(header))

    @classmethod
    def temporary(cls, names: Sequence[str], folder: Optional[str] = None) -> "RunStore":
        """An anonymous store (deleted when closed) for a run with no checkpoint to keep."""
        return cls(names, tempfile.TemporaryFile("w+b", dir=folder), None, None, 0)

    @classmethod
    def resume(cls, path: str, settings: Dict[str, Any], names: Sequence[str],
               legacy: Optional[str] = None) -> "RunStore":
        """The journal at ``path`` (else the old-format checkpoint at ``path`` or ``legacy``,
        converted), checked against ``settings``; a new journal when there is neither."""
        if not _is_journal(path):
            old = next((p for p in (path, legacy) if p and os.path.isfile(p)), None)
            if old is None:
                return cls.create(path, settings, names)
            convert_legacy(old, path, settings)
        fh = open(path, "r+b")
        try:
            _hold(fh, path)
            store = cls(names, fh, path, None, _read_header(fh, path, settings))
            store._scan()
        except BaseException:
            fh.close()
            raise
        return store

    def _scan(self) -> None:
        """Offsets of the entries on file (last line wins); truncate a torn or bad tail."""
        first = _first_positions(self.names)
        pos = self._end
        self._fh.seek(pos)
        for number in itertools.count(2):       # line 1 is the header
            line = _read_line(self._fh, self.path, number)
            name = _entry_name(line)
            if name is None:
                break
            i = first.get(name)
            if i is not None:
                self._offsets[i] = pos
                self._note_failure(i, line)
            pos += len(line)
        self._fh.seek(pos)
        if pos < os.fstat(self._fh.fileno()).st_size:
            self._fh.truncate()                 # the torn tail: redone by this run
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._end = self._pos = pos
        if len(first) < len(self.names):        # a name listed twice: both places are done
            for i, n in enumerate(self.names):
                self._offsets[i] = self._offsets[first[n]]

    def adopt(self, entries: Mapping[str, Dict[str, Any]]) -> None:
        """Append the ``entries`` (of ``--previous-results``) whose files are listed and not done."""
        for i, n in enumerate(self.names):
            if self._offsets[i] < 0 and n in entries:
                text = compact(entries[n])
                self.add(i, text)
                self._note_failure(i, text.encode("utf-8"))

    def _note_failure(self, i: int, line: bytes) -> None:
        if _FAILED in line:
            self.prior_failures[i] = _failure_message(line)
        else:
            self.prior_failures.pop(i, None)

    # ----- the run

    def is_done(self, i: int) -> bool:
        return self._offsets[i] >= 0

    def add(self, i: int, text: str) -> None:
        """Append the entry (compact JSON, one line) of ``names[i]``; on disk at the next checkpoint."""
        line = text.encode("utf-8") + b"\n"
        if b"\n" in line[:-1]:
            raise ValueError("a journal entry must be one line of compact JSON")
        if self._pos != self._end:
            self._fh.seek(self._end)
        self._fh.write(line)
        self._offsets[i] = self._end
        self._end += len(line)
        self._pos = self._end

    def checkpoint(self) -> None:
        """Flush and fsync what was appended (O(new lines)); the first one publishes the journal."""
        self._fh.flush()
        if self.path is None:
            return
        os.fsync(self._fh.fileno())
        if self._tmp is not None:
            replace_with(self._tmp, self.path)
            self._tmp = None

    @property
    def published(self) -> bool:
        """Whether the journal is under its own name (it has had a checkpoint, or was resumed)."""
        return self.path is not None and self._tmp is None

    @property
    def file_bytes(self) -> int:
        """The journal's length: what has been appended so far (header included)."""
        return self._end

    # ----- reading back

    def texts(self) -> Iterator[str]:
        """The done entries as JSON text, in the file list's order (one line read at a time)."""
        self._fh.flush()
        for off in self._offsets:
            if off >= 0:
                yield self._read(off)

    def _read(self, off: int) -> str:
        if off != self._pos:
            self._fh.seek(off)
        line = self._fh.readline()
        self._pos = off + len(line)
        return line[:-1].decode("utf-8")

    # ----- ending

    def close(self) -> None:
        """Close the file (after ``checkpoint`` to keep it; an unpublished journal is dropped).

        Never raises for the file's last write: on a full disk the buffered lines cannot be written
        (a torn last line is cut on resume), and the temporary journal must still be removed."""
        try:
            self._fh.close()
        except OSError:
            pass
        if self._tmp is not None and os.path.exists(self._tmp):
            os.unlink(self._tmp)
            self._tmp = None

    def discard(self) -> None:
        """Close and delete the journal: the results it fed are written."""
        self.close()
        if self.path is not None and os.path.exists(self.path):
            os.unlink(self.path)


def _header(settings: Dict[str, Any]) -> bytes:
    return (json.dumps({"ssd_batch_journal": JOURNAL_VERSION, "settings": settings}, separators=(",", ":"))
            + "\n").encode("utf-8")


def _is_journal(path: str) -> bool:
    """Whether ``path`` is a journal (by its first bytes; a format-1 checkpoint starts ``{\\n``)."""
    return _first_bytes(path, len(_HEADER_PREFIX)) == _HEADER_PREFIX


def _first_bytes(path: str, n: int) -> bytes:
    """The first ``n`` bytes of ``path`` when it is a regular file, else ``b""``.

    Why ``open_regular``: ``--checkpoint`` names any path; a FIFO there hung ``--resume`` for
    ever (SIGTERM too). Not a journal, it is then refused by ``check_journal_target``.
    """
    try:
        fd = open_regular(path)
    except (OSError, ValueError):
        return b""
    with os.fdopen(fd, "rb") as fh:
        try:
            return fh.read(n)
        except OSError:
            return b""


def _read_header(fh: IO[bytes], path: str, settings: Dict[str, Any]) -> int:
    """Check the header line's version and settings; returns its length."""
    line = _read_line(fh, path, 1)
    try:
        head = json.loads(line) if line.endswith(b"\n") else None
    except (ValueError, RecursionError):          # [[[[… nested past the parser's depth
        head = None
    if not isinstance(head, dict) or head.get("ssd_batch_journal") != JOURNAL_VERSION:
        raise ResultsError(f"'{path}' is not a batch checkpoint of this version; delete it to start over")
    check_settings(path, head.get("settings") or {}, settings)
    return len(line)


def _read_line(fh: IO[bytes], path: Optional[str], number: int) -> bytes:
    """The next line (b"" at the end; a torn last line without its newline), reading at most
    ``MAX_LINE_BYTES`` + 1 bytes: ``ResultsError`` for a longer one."""
    line = fh.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise ResultsError(f"'{path}' line {number}: longer than {MAX_LINE_BYTES} bytes, which no entry is; "
                           "the journal is damaged: move it away to start over")
    return line


def _entry_name(line: bytes) -> Optional[str]:
    """The ``file`` of a whole, well-formed entry line; None for a torn or damaged one.

    Entries this code wrote start with ``{"file":"``: the name is decoded without parsing the
    rest (a resume reads every line once). Others (adopted from another tool's results, keys in
    their order) are parsed.
    """
    if not line.endswith(b"}\n") or b"\0" in line:
        return None
    try:
        text = line.decode("utf-8")
        if line.startswith(_ENTRY_PREFIX):
            name, end = scanstring(text, len(_ENTRY_PREFIX))
            return name if text[end] in ",}" else None
        entry = json.loads(text)
    except (UnicodeDecodeError, ValueError, IndexError, RecursionError):
        return None
    return entry.get("file") if isinstance(entry, dict) and isinstance(entry.get("file"), str) else None


def _failure_message(line: bytes) -> str:
    """The ``failure`` of a failed entry's line ("" when it cannot say: an entry written by this
    code is parsed here for the first time, and a damaged one must not stop the resume)."""
    try:
        found = json.loads(line).get("failure")
    except (ValueError, RecursionError, AttributeError):
        return ""
    return found if isinstance(found, str) else ""


def _first_positions(names: Sequence[str]) -> Dict[str, int]:
    """Name → its first index in the list (built while opening, then dropped)."""
    first: Dict[str, int] = {}
    for i, n in enumerate(names):
        first.setdefault(n, i)
    return first


def convert_legacy(old: str, path: str, settings: Dict[str, Any]) -> None:
    """Turn a format-1 checkpoint into a journal at ``path`` (atomically), then delete it.

    Refused (``ResultsError``) when it was made with other settings, before anything is written.
    """
    entries: List[Dict[str, Any]] = load_checkpoint(old, settings)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(_header(settings))
        for e in entries:
            fh.write(compact(e).encode("utf-8") + b"\n")
    if os.path.abspath(old) != os.path.abspath(path):
        os.unlink(old)


def check_journal_target(path: str) -> None:
    """``ResultsError`` when ``path`` exists and is not a journal (or an old-format checkpoint) of
    ours: a run would replace it with its journal and delete it at the end (an image of the
    folder given as ``--checkpoint`` was dropped from the run, then deleted)."""
    _refuse_busy(path)
    if not os.path.lexists(path) or _is_journal(path) or _is_legacy(path):
        return
    raise ResultsError(f"--checkpoint '{path}' exists and is not a batch journal: refusing to replace it; "
                       "give a new file name, or the journal of an earlier run to resume")


def _busy_message(path: str) -> str:
    return (f"another run is writing the journal '{path}' (a detect with the same --json or --checkpoint, "
            "still running): give each run, each --shard, its own --json; or wait for that run to end")


def _hold(fh: IO[bytes], path: str) -> None:
    """Lock the journal ``fh`` for as long as this run has it open (the lock goes with the file
    through its rename on publishing). Why: a second run of the same output deleted the first's
    unpublished journal, or appended to the same one. Where locks are unsupported, nothing."""
    try:
        import fcntl
    except ImportError:         # Windows: no flock
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ResultsError(_busy_message(path)) from None
    except OSError:             # a filesystem without locks (some network mounts): not checked
        pass


def journal_in_use(path: str) -> bool:
    """Whether a live run holds the journal at ``path`` or its unpublished one (a run's journal is
    a temporary file until its first checkpoint, so ``path`` may not exist yet). Why: ``results
    merge`` must not join the older results file such a run is about to replace."""
    try:
        _refuse_busy(path)
    except ResultsError:
        return True
    return False


def _refuse_busy(path: str) -> None:
    """``ResultsError`` when a live run holds the journal at ``path`` or its unpublished one."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    prefix = "." + os.path.basename(path) + "."
    try:
        temps = [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        temps = []
    for candidate in [path, *temps]:
        if not os.path.isfile(candidate) or os.path.islink(candidate):
            continue
        try:
            probe = open(candidate, "rb")
        except OSError:
            continue
        with probe:
            _hold(probe, path)          # released as it closes


def _is_legacy(path: str) -> bool:
    """Whether ``path`` is a format-1 checkpoint (``run_checkpoint``; its first key says so)."""
    return b'"ssd_batch_checkpoint"' in _first_bytes(path, 64)
