"""Which files a batch run covers: folders walked in a fixed order, paths as Timelapse wants them.

Why: a camera-trap season is nested folders (site/camera/date). The walk must be deterministic
(sorted, so shards and resumed runs agree on the list) and every file in the folder must be
accounted for: a non-image is listed (and reported as a failure later), never skipped silently.
Hidden files (``.DS_Store``, editor droppings) and hidden folders are left out and counted, and so
are the results and databases that sit beside a season's photos (``COMPANION_EXTENSIONS``: an
earlier run's JSON/CSV, Timelapse's ``.tdb``/``.ddb``): a second run over a Timelapse root folder
listed them as failed images, in the results, the summary and the sort's ``failed/`` folder.
Linked folders are walked like others; a link back to a folder it lies in (a loop) is listed
with that reason, not walked again.
With one folder given, each file's name in the results is relative to it: Timelapse opens the
results file from that folder. A subfolder that cannot be listed (no permission, a path longer
than PATH_MAX) does not stop the run: it is listed as ``name/`` with the reason, a failure
entry like an unreadable photo. Names that are not UTF-8 are written with ``\\xHH`` escapes
(``ssd.base.text.escape_name``), the same in the results, the CSV and the journal.
"""
from __future__ import annotations

import os
from array import array
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from ssd.base.errors import OutputError, SSDError
from ssd.base.text import escape_name
from ssd.camtrap.megadetector import as_posix


COMPANION_EXTENSIONS = frozenset({".json", ".csv", ".tsv", ".xlsx", ".xls", ".tdb", ".ddb"})


def is_companion(name: str) -> bool:
    """A results file, spreadsheet or Timelapse database beside the photos (never an image or video)."""
    return os.path.splitext(name)[1].lower() in COMPANION_EXTENSIONS


class FolderError(SSDError):
    """A path given to a batch run that does not exist or cannot be listed."""


class Paths(SequenceABC):
    """Absolute paths kept as their folder's prefix and the name below it, joined when read.

    Why: a season of 10^6 files would otherwise hold every path twice, relative (the names
    written, ``FileList.names``, which share these strings) and absolute (120 MB more at 10^6).
    """

    def __init__(self) -> None:
        self._prefixes: List[str] = []
        self._which = array("l")        # index into ``_prefixes``, one per path
        self._rels: List[str] = []

    def add(self, prefix: str, rel: str) -> None:
        """Append the path ``prefix + rel`` (``prefix`` ends with a separator, or is empty)."""
        if not self._prefixes or self._prefixes[-1] != prefix:
            self._prefixes.append(prefix)
        self._which.append(len(self._prefixes) - 1)
        self._rels.append(rel)

    def take(self, pick: Iterable[int]) -> "Paths":
        """The paths at the indices ``pick``, in that order (a shard, the files not done yet)."""
        out = Paths()
        out._prefixes = self._prefixes
        for i in pick:
            out._which.append(self._which[i])
            out._rels.append(self._rels[i])
        return out

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return self._prefixes[self._which[i]] + self._rels[i]

    def __len__(self) -> int:
        return len(self._rels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SequenceABC) and list(self) == list(other)


@dataclass
class FileList:
    """The run's inputs: absolute paths, the names written to the results, and what was left out."""

    paths: Paths = field(default_factory=Paths)
    names: List[str] = field(default_factory=list)
    base: Optional[str] = None           # the folder names are relative to (None: as given / absolute)
    hidden_skipped: int = 0
    failures: Dict[int, str] = field(default_factory=dict)   # index → why it was not listed (a folder)
    companions_skipped: int = 0          # results files, spreadsheets, Timelapse databases in the folders

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class _Walk:
    """What a walk found: names relative to its folder (``/``-separated, in ``sort_key`` order)
    and what it left out."""

    found: List[str] = field(default_factory=list)
    hidden: int = 0
    companions: int = 0
    unlisted: Dict[str, str] = field(default_factory=dict)   # "sub/" → why it was not walked


def _walk(folder: str, recursive: bool, exclude: Set[str]) -> Tuple[List[str], Tuple[int, int], Dict[str, str]]:
    """Files of ``folder`` (relative, ``/``-separated), sorted by path components; the hidden ones
    and the companions (results, databases) counted, ``(hidden, companions)``; subfolders that could
    not be listed (``"sub/"`` → the reason), sorted among them.

    Why one sorted ``scandir`` per folder, depth first: that order *is* the sort by path components
    (a folder's files come at its name's place among its siblings), so a season of 10^6 files is
    never sorted as 10^6 tuples (400 MB at its peak), and names are built by concatenation, not
    ``relpath``/``abspath`` per file (7 s of the 8 s a 10^6-file walk took).
    """
    walk = _Walk()
    try:
        top = _entries(folder)                  # the folder given itself must be readable
    except OSError as err:
        raise FolderError(f"'{escape_name(folder)}' cannot be listed: {err.strerror or err}") from None
    skip = {os.path.basename(p) for p in exclude}
    stack = [(folder, "", iter(top))]
    while stack:
        path, rel, it = stack[-1]
        entry = next(it, None)
        if entry is None:
            stack.pop()
            continue
        name = entry.name
        if name.startswith("."):
            walk.hidden += 1
        elif _is_dir(entry):
            sub = _descend(folder, path, rel, entry, walk) if recursive else None
            if sub is not None:
                stack.append(sub)
        elif not recursive and not entry.is_file():
            continue                            # a broken link, a FIFO: as ``os.path.isfile`` said
        elif is_companion(name):
            walk.companions += 1
        elif name not in skip or os.path.abspath(os.path.join(path, name)) not in exclude:
            walk.found.append(rel + name)
    return walk.found, (walk.hidden, walk.companions), walk.unlisted


def _entries(path: str) -> List["os.DirEntry[str]"]:
    """A folder's entries sorted by name (``OSError`` when it cannot be listed)."""
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def _is_dir(entry: "os.DirEntry[str]") -> bool:
    """Whether an entry is a folder, through links (a linked card's folder is walked)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _descend(folder: str, path: str, rel: str, entry: "os.DirEntry[str]",
             walk: _Walk) -> Optional[Tuple[str, str, Iterator]]:
    """The walk's next level for subfolder ``entry`` of ``path``; None when it is a loop or cannot be
    listed (then it is listed as ``rel/name/`` with the reason, in its place)."""
    name = entry.name
    if entry.is_symlink() and _loop(folder, path, name, walk.unlisted):
        walk.found.append(rel + name + "/")
        return None
    full = os.path.join(path, name)
    try:
        entries = _entries(full)
    except OSError as err:
        key = rel + name + "/"
        walk.unlisted[key] = (f"'{escape_name(key)}' could not be listed: {err.strerror or err}; "
                              "its photos are not in this run")
        walk.found.append(key)
        return None
    return full, rel + name + "/", iter(entries)


def _loop(folder: str, root: str, name: str, unlisted: Dict[str, str]) -> bool:
    """Whether ``root/name`` is a link back to a folder it lies in (noted in ``unlisted`` if so).

    Why links are followed at all: a card's folder linked into the season is part of it (as in
    MegaDetector's walk); skipping it would leave its photos out without a word.
    """
    full = os.path.join(root, name)
    if not os.path.islink(full):
        return False
    rel = os.path.relpath(root, folder)
    parts = [] if rel == os.curdir else rel.split(os.sep)
    # the folders this one lies in as walked (through links), not as its real path says
    above = {os.path.realpath(os.path.join(folder, *parts[:k])) for k in range(len(parts) + 1)}
    if os.path.realpath(full) not in above:
        return False
    name = as_posix(os.path.relpath(full, folder)) + "/"
    unlisted[name] = f"'{escape_name(name)}' links back to a folder it is in (a loop): its photos are walked once, there"
    return True


def list_inputs(inputs: Sequence[str], recursive: bool = False, absolute_paths: bool = False,
                exclude: Sequence[str] = ()) -> FileList:
    """Expand files and folders into one list; names relative to a single given folder.

    ``exclude``: files never listed (the run's own output and checkpoint, when they sit inside
    the folder being processed).
    """
    if not inputs:
        raise FolderError("give at least one image file or folder")
    if not any(os.path.exists(p) for p in inputs):     # a mistyped folder: no run, not a run of failures
        missing = ", ".join(f"'{p}'" for p in inputs[:3]) + (" …" if len(inputs) > 3 else "")
        raise FolderError(f"{missing} does not exist" if len(inputs) == 1 else f"none of {missing} exists")
    skip = {os.path.abspath(p) for p in exclude if p}
    out = FileList()
    single_folder = len(inputs) == 1 and os.path.isdir(inputs[0]) and not absolute_paths
    if single_folder:
        out.base = os.path.abspath(inputs[0])
    for given in inputs:
        if os.path.isdir(given):
            rels, (hidden, companions), unlisted = _walk(given, recursive, skip)
            out.hidden_skipped += hidden
            out.companions_skipped += companions
            prefix = os.path.join(os.path.abspath(given), "")
            for rel in rels:
                below = rel
                if rel in unlisted:                     # a folder: "sub/", its path without the "/"
                    out.failures[len(out.paths)] = unlisted[rel]
                    below = rel[:-1]
                out.paths.add(prefix, below)
                out.names.append(escape_name(rel if single_folder else as_posix(prefix + below if absolute_paths
                                                                                 else os.path.join(given, rel))))
        else:
            # a missing file stays in the list: it becomes a failure entry, like any unreadable file
            out.paths.add("", os.path.abspath(given))
            out.names.append(escape_name(as_posix(os.path.abspath(given) if absolute_paths else given)))
    return out


def refuse_input_overwrite(inputs: Sequence[str], outputs: Sequence[Optional[str]]) -> None:
    """Refuse (``OutputError``) an output that would replace a photo: one of the files given, or an
    existing image or video. ``--json photo.jpg`` is a slip of the keyboard; writing the results
    there would destroy the original, which no run may do."""
    from ssd.camtrap.video import VIDEO_EXTENSIONS
    from ssd.data.images import SUPPORTED_EXTENSIONS

    media = {"." + e for e in SUPPORTED_EXTENSIONS} | set(VIDEO_EXTENSIONS)
    given = [p for p in inputs if os.path.isfile(p)]
    for dest in outputs:
        if not dest or not os.path.isfile(dest):
            continue
        if any(os.path.samefile(dest, p) for p in given) or os.path.splitext(dest)[1].lower() in media:
            raise OutputError(f"refusing to write results over '{escape_name(dest)}': it is an image or video "
                              "(one of the inputs?); give the output a name of its own, such as results.json")


def shard(files: FileList, index: int, count: int) -> FileList:
    """The deterministic ``index``-th of ``count`` shares (1-based): every ``count``-th file."""
    if count < 1 or not 1 <= index <= count:
        raise FolderError(f"--shard {index}/{count}: give I/N with 1 ≤ I ≤ N")
    pick = range(index - 1, len(files), count)
    return FileList(files.paths.take(pick), [files.names[i] for i in pick], files.base, files.hidden_skipped,
                    {k: files.failures[i] for k, i in enumerate(pick) if i in files.failures},
                    files.companions_skipped)


def parse_shard(text: str):
    """``"2/4"`` → ``(2, 4)``, with a clear message for anything else."""
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise FolderError(f"--shard {text!r}: expected I/N, e.g. 1/4") from None
    if n < 1 or not 1 <= i <= n:
        raise FolderError(f"--shard {text}: give I/N with 1 ≤ I ≤ N")
    return i, n
