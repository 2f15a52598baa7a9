"""The byte layout of a RecordIO file: dmlc frames, MXNet's ``.idx`` offsets, and a reader of both.

A ``.rec`` file is a sequence of dmlc RecordIO frames; a ``.idx`` text file (``key<TAB>byte
offset`` per line) gives random access. Reading the frames here, not through ``mx.recordio``, lets
every failure become one :class:`~ssd.base.errors.DatasetError` naming the file, the record index
and the byte offset, gives random access to a ``.rec`` shipped without its ``.idx`` (a scan that
remembers offsets), and holds no native handle between reads (each read opens the file).
"""
from __future__ import annotations

import os
import struct
from typing import List, Tuple

from ssd.base.errors import DatasetError

# dmlc RecordIO framing: uint32 magic, uint32 (cflag << 29 | length), payload padded to 4 bytes.
# A payload containing the magic at a 4-byte-aligned position is split into parts
# (cflag 1 = first, 2 = middle, 3 = last) and the magic is re-inserted when joining them.
MAGIC = 0xCED7230A
FRAME = struct.Struct("<II")
_LEN_MASK = (1 << 29) - 1
# MXNet's IRHeader: uint32 flag (= number of float32 label values), float32 label, uint64 id, uint64 id2.
IR_HEADER = struct.Struct("<IfQQ")


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def default_idx_path(rec_path: str) -> str:
    """``train.rec`` -> ``train.idx`` (MXNet's convention for the index next to a record file)."""
    root, ext = os.path.splitext(rec_path)
    return (root if ext.lower() == ".rec" else rec_path) + ".idx"


class FrameReader:
    """Frame-level access to one ``.rec`` file; every failure is a DatasetError with a location."""

    def __init__(self, rec_path: str) -> None:
        self.path = rec_path
        self.name = os.path.basename(rec_path)
        try:
            self.size = os.path.getsize(rec_path)
        except OSError as err:
            raise DatasetError(f"cannot read record file {rec_path!r}: {err.strerror or err}") from None

    def open(self):
        try:
            return open(self.path, "rb")
        except OSError as err:
            raise DatasetError(f"cannot read record file {self.path!r}: {err.strerror or err}") from None

    def _broken(self, index: int, offset: int, what: str) -> DatasetError:
        return DatasetError(
            f"{self.path}: record {index} (byte offset {offset}) {what}; the file is damaged or incomplete "
            "— download or generate it again (python -m ssd data synth --out DIR makes a fresh set)")

    def _frame(self, fh, index: int, start: int, pos: int) -> Tuple[int, int]:
        """Read the frame header at ``pos``: (cflag, length)."""
        fh.seek(pos)
        raw = fh.read(FRAME.size)
        if len(raw) < FRAME.size:
            raise self._broken(index, start, "is cut off: the file ends inside its frame header")
        magic, lrec = FRAME.unpack(raw)
        if magic != MAGIC:
            raise self._broken(index, start, f"has no RecordIO marker at byte {pos} (not a .rec file, "
                                             "or an .idx that belongs to another .rec)")
        length = lrec & _LEN_MASK
        if pos + FRAME.size + length > self.size:
            raise self._broken(index, start, f"is cut off: it needs {length} bytes after byte {pos} "
                                             f"but the file ends at byte {self.size}")
        return lrec >> 29, length

    def read(self, fh, index: int, offset: int) -> Tuple[bytes, int]:
        """The whole payload of the record starting at ``offset`` and the offset after it."""
        parts: List[bytes] = []
        pos = offset
        first = True
        while True:
            cflag, length = self._frame(fh, index, offset, pos)
            if (cflag in (2, 3)) == first:   # a start must be 0/1; a continuation must be 2/3
                raise self._broken(index, offset, f"has an invalid continuation flag {cflag} at byte {pos}")
            parts.append(fh.read(length))
            pos += FRAME.size + _pad4(length)
            if cflag in (0, 3):
                break
            parts.append(struct.pack("<I", MAGIC))
            first = False
        return b"".join(parts), pos

    def read_head(self, fh, index: int, offset: int) -> bytes:
        """Enough bytes of a record to parse its label, without reading the image."""
        cflag, length = self._frame(fh, index, offset, offset)
        if cflag in (0, 1) and length >= IR_HEADER.size:
            head = fh.read(IR_HEADER.size)
            need = 4 * IR_HEADER.unpack(head)[0]
            if length >= IR_HEADER.size + need:
                return head + fh.read(need)
        return self.read(fh, index, offset)[0]   # label split across parts (rare): read it whole

    def scan(self) -> List[int]:
        """Offsets of every record, from one pass over the frame headers (no payload is read)."""
        offsets: List[int] = []
        pos = 0
        with self.open() as fh:
            while pos < self.size:
                index, start, first = len(offsets), pos, True
                while True:
                    cflag, length = self._frame(fh, index, start, pos)
                    if (cflag in (2, 3)) == first:
                        raise self._broken(index, start, f"has an invalid continuation flag {cflag} at byte {pos}")
                    pos += FRAME.size + _pad4(length)
                    if cflag in (0, 3):
                        break
                    first = False
                offsets.append(start)
        return offsets


def read_idx(idx_path: str, rec: FrameReader) -> List[int]:
    """Byte offsets from an MXNet ``.idx`` file, in file order (the order MXNet iterates)."""
    try:
        with open(idx_path, "r", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read index file {idx_path!r}: {err}") from None
    offsets: List[int] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().split("\t")
        try:
            if len(fields) != 2:
                raise ValueError
            int(fields[0])
            offset = int(fields[1])
        except ValueError:
            raise DatasetError(f"{idx_path}: line {n} is not 'key<TAB>offset' ({line[:60]!r}); delete the "
                               ".idx to let the reader scan the .rec instead") from None
        if not 0 <= offset <= rec.size - FRAME.size:
            raise DatasetError(f"{idx_path}: line {n} points at byte {offset} but {rec.path} has only "
                               f"{rec.size} bytes — the .rec is truncated or the .idx belongs to another file")
        offsets.append(offset)
    return offsets
