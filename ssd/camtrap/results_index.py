"""A results file opened once, its entries read back one at a time from where they lie.

Why: the Camera traps page opens a season's file in a server a lab shares and keeps what it opened
for every session. Parsed whole, a file of 100,000 images with ~84 boxes each (every box down to
the results floor) is ~4 GB of Python objects, while a page shows 24 images at a time. Here the
file is read as it goes (``results_stream``, checked as ``read_results`` checks it), a caller's
compact record is kept per image, and where each entry lies (first byte, length, CRC-32: 24 bytes
an entry) is recorded, so the few entries shown are read back whole on demand.

A file is untrusted and may change while open: each read-back checks the file's size and
modification time and the entry's CRC against what was recorded, and refuses a changed file
(``ResultsChanged``: open it again) rather than show another version's boxes; the entry read is
checked again as any entry is.
"""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Optional, Tuple

from ssd.base.json_file import JSONFileError, open_regular
from ssd.camtrap.results_check import ResultsError, check_entries
from ssd.camtrap.results_stream import Keep, Spans, read_results_kept


class ResultsChanged(ResultsError):
    """The results file is not the version its index was made of: open it again."""


@dataclass(frozen=True)
class EntryIndex:
    """Where each entry of one version of a results file lies (``Spans``), and that version."""

    path: str
    size: int
    mtime_ns: int
    categories: Dict[str, str]
    spans: Spans

    def __len__(self) -> int:
        return len(self.spans.starts)

    def _changed(self) -> ResultsChanged:
        return ResultsChanged(f"'{self.path}' changed since it was opened; open it again")

    def _open(self) -> BinaryIO:
        """The file, opened; ``ResultsChanged`` when it is no longer the version indexed (by size and time)."""
        try:
            fd = open_regular(self.path)
        except (OSError, JSONFileError):        # gone, or no longer a regular file (a folder, a FIFO)
            raise self._changed() from None
        fh = os.fdopen(fd, "rb")
        st = os.fstat(fh.fileno())
        if (st.st_size, st.st_mtime_ns) != (self.size, self.mtime_ns):
            fh.close()
            raise self._changed()
        return fh

    def entry(self, k: int) -> Dict[str, Any]:
        """Entry ``k`` (0-based, file order) read back and checked; ``ResultsChanged`` when the
        file on disk is no longer the version indexed."""
        with self._open() as fh:
            fh.seek(self.spans.starts[k])
            raw = fh.read(self.spans.lengths[k])
        if len(raw) != self.spans.lengths[k] or zlib.crc32(raw) != self.spans.crcs[k]:
            raise self._changed()
        entry = json.loads(raw.decode("utf-8"))
        check_entries([entry], k, self.categories, f"'{self.path}'")
        return entry

    def file_bytes(self) -> bytes:
        """The whole file's bytes, each entry's CRC checked as ``entry`` checks it: the version
        indexed, for a caller that hands the file on as it is (the page's JSON download), with
        nothing parsed. ``ResultsChanged`` otherwise."""
        with self._open() as fh:
            data = fh.read(self.size + 1)
        view = memoryview(data)
        if len(data) != self.size or any(zlib.crc32(view[start:start + length]) != crc for start, length, crc
                                         in zip(self.spans.starts, self.spans.lengths, self.spans.crcs)):
            raise self._changed()
        return data


def read_results_indexed(path: str, keep_for: Callable[[Dict[str, Any]], Keep]
                         ) -> Tuple[Dict[str, Any], Optional[EntryIndex]]:
    """``read_results_kept(path, keep_for)`` and the index of its entries; None for a file that
    could not be read as it goes (``read_results`` read it whole: the caller keeps its entries)."""
    try:
        st = os.stat(path)
    except OSError:
        st = None                       # read_results_kept says why it cannot be read
    spans = Spans()
    doc = read_results_kept(path, keep_for, spans)
    if st is None or spans.whole or len(spans.starts) != len(doc["images"]):
        return doc, None
    return doc, EntryIndex(path, st.st_size, st.st_mtime_ns, dict(doc.get("detection_categories") or {}), spans)
