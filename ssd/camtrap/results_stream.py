"""Reading a results file a chunk of entries at a time, checked as ``read_results`` checks it.

Why: ``read_results`` parses the whole document, and a detector writes every box down to the
results floor (0.005, as MegaDetector does): ~84 boxes an image, ~40 KB of Python objects each,
4.3 GiB for a season of 100,000 images. A command that keeps a few numbers per image
(``results compare``) needs neither the document nor its text: here the file is read 1 MiB at a
time, each entry parsed by the same decoder as ``json.loads``, checked ``CHUNK`` at a time by the
same rules (``results_check.check_entries``), handed on and let go.

Whatever is not a plain results document (not UTF-8, not JSON, a top-level key twice, the file
growing past the cap or changed between two passes, any fault a check finds) is handed to
``read_results``, which refuses it with the same message as before or, for a file that is only
unusual, reads it whole: the answer and every refusal are ``read_results``'s own.
"""
from __future__ import annotations

import codecs
import io
import json
import os
import re
import zlib
from array import array
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ssd.base.json_file import open_regular
from ssd.base.memory import collector_paused
from ssd.camtrap.megadetector import MAX_RESULTS_BYTES, read_results
from ssd.camtrap.results_check import CHUNK, ResultsError, check_entries, check_results

#: Characters read at a time: a few hundred entries of 84 boxes, a few thousand of 0-3.
READ_CHARS = 2 ** 20

#: Where an entry stands in the file: its text, and its first and one-past-last character counted
#: in the file's text (after a UTF-8 byte order mark), as ``read_spans`` takes them.
Where = Tuple[str, int, int]

#: What receives the checked entries: called with each chunk (at most ``CHUNK``), in file order.
Sink = Callable[[List[Dict[str, Any]]], None]

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()          # json.loads's own: NaN and Infinity as it takes them


class _Unusual(Exception):
    """Not a plain results document: ``read_results`` decides."""


class _Callers(Exception):
    """An error of the caller's own ``take`` or sink, carried out past the reader's own faults."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _guarded(take: Callable[[Dict[str, Any]], Callable[[Any], None]]
             ) -> Callable[[Dict[str, Any]], Callable[[Any], None]]:
    """``take`` and the sinks it gives, any error of theirs raised as ``_Callers``: a sink that
    refuses (disk full, a file changed) is not a fault of the file to read again whole."""
    def guarded_take(head: Dict[str, Any]) -> Callable[[Any], None]:
        try:
            sink = take(head)
        except Exception as error:
            raise _Callers(error) from error

        def guarded_sink(chunk: Any) -> None:
            try:
                sink(chunk)
            except Exception as error:
                raise _Callers(error) from error
        return guarded_sink
    return guarded_take


class _Text:
    """A text file read ``READ_CHARS`` at a time, a position in what is held, values parsed at it."""

    def __init__(self, fh: io.TextIOBase, first_byte: int = 0) -> None:
        self.fh, self.buf, self.pos, self.eof, self.read_chars = fh, "", 0, False, 0
        self.start = 0                  # where the last value read began in ``buf``
        self.base = 0                   # where ``buf`` begins in the file's text (characters)
        # where buf[0] is in the file, in bytes, and a cursor (characters, bytes) into buf: an
        # entry's byte offset (``Spans``), each character encoded once however the text is cut
        self.base_byte, self.cur_char, self.cur_byte = first_byte, 0, 0

    def more(self, want: int = 0) -> bool:
        """Read at least ``READ_CHARS`` more (looked up at each call, so a test's small value is
        the size read, and values are cut at every place), or ``want`` where more."""
        if self.eof:
            return False
        piece = self.fh.read(max(want, READ_CHARS))
        self.read_chars += len(piece)
        if self.read_chars > MAX_RESULTS_BYTES:
            raise _Unusual                              # grew past the cap while read: read_results says so
        if not piece:
            self.eof = True
            return False
        self.base += self.pos
        self.byte_at(self.pos)                  # what is let go, counted in bytes
        self.base_byte, self.cur_char, self.cur_byte = self.base_byte + self.cur_byte, 0, 0
        self.buf, self.pos = self.buf[self.pos:] + piece, 0
        return True

    def byte_at(self, char: int) -> int:
        """The file's byte offset of ``buf[char]``; ``char`` never before the last one asked."""
        piece = self.buf[self.cur_char:char]
        self.cur_byte += len(piece) if piece.isascii() else len(piece.encode("utf-8"))
        self.cur_char = char
        return self.base_byte + self.cur_byte

    def peek(self) -> str:
        """The next character that is not white space ('' at the end)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos:self.pos + 1]

    def take(self, char: str) -> None:
        if self.peek() != char:
            raise _Unusual
        self.pos += 1

    def value(self) -> Any:
        """The JSON value at the position; a value that may run on past what is held is read again
        with more (a number cut at the buffer's end parses, as a shorter number)."""
        self.peek()
        want = max(1, READ_CHARS // 2)       # doubled before each read: READ_CHARS first (0 never grew)
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:
                    self.start, self.pos = self.pos, end
                    return value
            except (ValueError, RecursionError):
                if self.eof:
                    raise _Unusual from None
            want *= 2                                   # a long entry: its text grows, never re-read in small steps
            self.more(want)


class Spans:
    """Where each entry handed on lies in the file: its first byte, its length in bytes and the
    CRC-32 of those bytes, 24 bytes an entry (``ssd.camtrap.results_index`` reads one back).
    ``whole`` is set when the file was not read as it goes (``read_results`` read it whole):
    then there are no spans."""

    def __init__(self) -> None:
        self.starts, self.lengths, self.crcs = array("q"), array("q"), array("L")
        self.whole = False

    def clear(self) -> None:
        self.__init__()

    def add(self, text: "_Text") -> None:
        """The value just read, ``text.buf[text.start:text.pos]``."""
        raw = text.buf[text.start:text.pos].encode("utf-8")
        self.starts.append(text.byte_at(text.start))
        self.lengths.append(len(raw))
        self.crcs.append(zlib.crc32(raw))
        text.cur_char, text.cur_byte = text.pos, text.cur_byte + len(raw)


def _scan(path: str, take: Callable[[Dict[str, Any]], Sink],
          known: Optional[Dict[str, Any]] = None, spans: bool = False,
          index: Optional[Spans] = None, tail: Optional[Callable[[str], Optional[Dict[str, Any]]]] = None
          ) -> Tuple[Dict[str, Any], Optional[Sink], Dict[str, Any]]:
    """One pass over the file: its head (every top-level key but ``images``), the sink its entries
    went to (``take(head)`` with ``known``, the head a first pass found, else the head so far when
    it holds the categories, or with the keys ``tail(path)`` (``_tail_keys``) finds after the
    images, when it does not; None: skipped) and the head the sink was made with (the entries were read with
    the file's head only where it is the head returned). ``spans``: the sink gets each entry with
    its ``Where``. ``index``: where each entry handed on lies, in bytes (emptied first)."""
    fd = open_regular(path)
    bom = os.read(fd, len(codecs.BOM_UTF8)) == codecs.BOM_UTF8      # utf-8-sig drops it: 3 bytes before
    os.lseek(fd, 0, os.SEEK_SET)
    with io.open(fd, "r", encoding="utf-8-sig", newline="") as fh:
        if os.fstat(fh.fileno()).st_size > MAX_RESULTS_BYTES:
            raise _Unusual
        text = _Text(fh, len(codecs.BOM_UTF8) if bom else 0)
        head: Dict[str, Any] = {}
        sink: Optional[Sink] = None
        used: Dict[str, Any] = {}
        images_seen = False
        text.take("{")
        while True:
            key = text.value()
            if not isinstance(key, str) or key in head or (key == "images" and images_seen):
                raise _Unusual
            text.take(":")
            if key == "images":
                images_seen = True
                base = head if known is None else known
                guess = tail(path) if known is None and tail and "detection_categories" not in head else None
                if guess:
                    base = {**head, **guess}        # MegaDetector's order: checked once the head is read
                cats = base.get("detection_categories")
                if isinstance(cats, dict):
                    try:                # a fault of these keys is one of the whole head's too
                        check_results({**base, "images": []}, f"'{path}'")
                    except ResultsError:
                        raise _Unusual from None
                    sink, used = take(dict(base)), dict(base)
                if index is not None:
                    index.clear()
                _entries(text, sink, cats if sink is not None else {}, path, spans,
                         index if sink is not None else None)
            else:
                head[key] = text.value()
            if text.peek() == ",":
                text.pos += 1
                continue
            text.take("}")
            if text.peek() != "" or not images_seen:
                raise _Unusual
            return head, sink, used


#: The end of a file searched for the keys after its images (``_tail_keys``): MegaDetector's
#: categories and info are a few KB.
TAIL_BYTES = 2 ** 16


def _tail_keys(path: str) -> Optional[Dict[str, Any]]:
    """The top-level keys after the images, as the file's last ``TAIL_BYTES`` hold them from its
    last ``"detection_categories"`` that parses as keys to the end; None where none does.

    Why: MegaDetector writes its categories after the images, and the entries are checked against
    them: found only at the end of a first pass, each entry was parsed twice (a third of a summary's
    time on such a file). A guess, not trusted: ``_streamed`` reads the entries once with it and
    again, as before, unless the head then read is the one guessed."""
    try:
        fd = open_regular(path)
        with io.open(fd, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            text = fh.read().decode("utf-8", "ignore")
    except (OSError, ValueError):       # not a regular file (JSONFileError): the pass says why
        return None
    at = text.rfind('"detection_categories"')
    while at >= 0:
        keys = _keys_to_end(text, at)
        if keys is not None:
            return keys
        at = text.rfind('"detection_categories"', 0, at)
    return None


def _keys_to_end(text: str, at: int) -> Optional[Dict[str, Any]]:
    """``"key": value, ...}`` from ``text[at:]`` to its end (white space after the brace), each key
    once; None where ``text[at:]`` is not that."""
    keys: Dict[str, Any] = {}
    try:
        while True:
            key, at = _DECODER.raw_decode(text, at)
            at = _WS.match(text, at).end()
            if not isinstance(key, str) or key in keys or text[at:at + 1] != ":":
                return None
            keys[key], at = _DECODER.raw_decode(text, _WS.match(text, at + 1).end())
            at = _WS.match(text, at).end()
            if text[at:at + 1] == "}":
                return keys if _WS.match(text, at + 1).end() == len(text) else None
            if text[at:at + 1] != ",":
                return None
            at = _WS.match(text, at + 1).end()
    except (ValueError, RecursionError):
        return None


def _entries(text: _Text, sink: Optional[Sink], cats: Dict[str, str], path: str, spans: bool = False,
             index: Optional[Spans] = None) -> None:
    """The ``images`` list, ``CHUNK`` entries at a time checked and handed to ``sink`` (None: skipped);
    ``spans``: each as (entry, its ``Where``); each entry's place in bytes recorded in ``index``."""
    text.take("[")
    if text.peek() == "]":
        text.pos += 1
        return
    chunk: List[Any] = []
    wheres: Optional[List[Where]] = [] if spans and sink is not None else None
    start = 0
    while True:
        value = text.value()
        chunk.append(value)
        if wheres is not None:
            wheres.append((text.buf[text.start:text.pos], text.base + text.start, text.base + text.pos))
        if index is not None:
            index.add(text)
        if len(chunk) == CHUNK:
            _hand(chunk, start, cats, path, sink, wheres)
            start, chunk = start + CHUNK, []
            wheres = [] if wheres is not None else None
        if text.peek() == ",":
            text.pos += 1
            continue
        text.take("]")
        _hand(chunk, start, cats, path, sink, wheres)
        return


def _hand(chunk: List[Any], start: int, cats: Dict[str, str], path: str, sink: Optional[Sink],
          wheres: Optional[List[Where]] = None) -> None:
    if sink is None or not chunk:
        return
    try:
        check_entries(chunk, start, cats, f"'{path}'")
    except ResultsError:
        raise _Unusual from None        # read_results names it, after the head's faults as before
    sink(chunk if wheres is None else list(zip(chunk, wheres)))


def read_results_streamed(path: str, take: Callable[[Dict[str, Any]], Sink],
                          index: Optional[Spans] = None) -> Dict[str, Any]:
    """The head of the results file ``path`` (the document less ``images``); its entries, checked,
    go to ``take(head)`` a chunk at a time, in order. Refused as ``read_results`` refuses it.

    ``take`` is called once the head is known; where keys follow the images, or the categories come
    after them (MegaDetector's own order), the entries are read in a second pass and ``take`` is
    called again: whatever the first sink gathered is to be dropped. An error raised by ``take`` or
    a sink is raised as it is (not taken for a fault of the file, read again whole). ``index``:
    where each entry handed on lies in the file (``Spans.whole`` where the file was read whole instead).
    """
    return _streamed(path, take, index=index)


def _streamed(path: str, take: Callable[[Dict[str, Any]], Sink], spans: bool = False,
              index: Optional[Spans] = None) -> Dict[str, Any]:
    """``read_results_streamed``; ``spans``: each entry handed as (entry, its ``Where``), None for
    its ``Where`` where the file was read whole by ``read_results``."""
    guarded = _guarded(take)
    try:
        with collector_paused():        # parsed entries hold no cycles; nothing for the collector
            head, sink, used = _scan(path, guarded, spans=spans, index=index, tail=_tail_keys)
            if sink is None or list(used.items()) != list(head.items()):    # read with part of the head
                first = head
                head, sink, used = _scan(path, guarded, known=first, spans=spans, index=index)
                if head != first:       # the file changed between the passes: its entries met another head
                    raise _Unusual
            if sink is None:
                raise _Unusual
            check_results({**head, "images": []}, f"'{path}'")
        return head
    except _Callers as caller:          # the caller's own sink failed: not the file's fault
        raise caller.error from None
    except (_Unusual, ResultsError, OSError, UnicodeDecodeError, ValueError):
        pass
    doc = read_results(path)            # refuses with its own message, or reads an unusual file whole
    if index is not None:
        index.clear()
        index.whole = True
    images = doc.pop("images")
    sink = take(doc)
    for start in range(0, len(images), CHUNK):
        part = images[start:start + CHUNK]
        sink([(entry, None) for entry in part] if spans else part)
    return doc


#: What keeps an entry: called with each checked entry, returns what a command holds of it.
Keep = Callable[[Dict[str, Any]], Any]


def read_results_kept(path: str, keep_for: Callable[[Dict[str, Any]], Keep],
                      index: Optional[Spans] = None) -> Dict[str, Any]:
    """The results file ``path`` as a document whose ``images`` hold ``keep(entry)`` of each entry,
    in file order (``keep = keep_for(head)``, the head known): read and refused as
    ``read_results_streamed`` reads it, each parsed entry let go once kept.

    Why: a command that reads the document's fields but only a few of each entry's (``results
    summary``: names, flags, the detections a threshold can show) keeps its code and answers, and
    holds per image what it reads, not ~84 boxes. ``index``: as ``read_results_streamed``'s.
    """
    kept: List[Any] = []

    def take(head: Dict[str, Any]) -> Sink:
        keep = keep_for(head)
        kept.clear()                    # a second pass: what the first kept is dropped

        def sink(entries: List[Dict[str, Any]]) -> None:
            kept.extend(map(keep, entries))
        return sink

    head = read_results_streamed(path, take, index)
    head["images"] = kept
    return head


def above_floor(entry: Dict[str, Any], floor: float) -> Dict[str, Any]:
    """``entry`` without the detections scoring below ``floor`` (boxes and every other field kept):
    what a threshold whose lowest value is ``floor`` shows, or counts as a hidden suspect, is all there."""
    dets = entry.get("detections")
    if not dets:
        return entry
    kept = [d for d in dets if not (isinstance(d, dict) and d.get("conf").__class__ is float and d["conf"] < floor)]
    return entry if len(kept) == len(dets) else {**entry, "detections": kept}


def read_results_above(path: str, floor_for: Callable[[Dict[str, Any]], float],
                       index: Optional[Spans] = None) -> Dict[str, Any]:
    """The results file ``path`` as a document whose entries hold only their detections at or above
    ``floor_for(head)`` (``above_floor``): read and refused as ``read_results_streamed`` reads it.

    Why: the exports that write a season's tables (Camtrap DP, XLSX) read of each entry every field
    but only the boxes a threshold shows; the ~84 boxes an image down to the results floor, parsed
    whole, needed ~4.3 GB for a season of 100,000 images. Their code reads this document as it read
    the whole one: the same answers, in proportion to images and the boxes shown.
    """
    def keep_for(head: Dict[str, Any]) -> Keep:
        floor = floor_for(head)
        return lambda entry: above_floor(entry, floor)
    return read_results_kept(path, keep_for, index)


#: What keeps an entry with its ``Where`` (None where the file was read whole by ``read_results``).
KeepWhere = Callable[[Dict[str, Any], Optional[Where]], Any]


def read_results_kept_where(path: str, keep_for: Callable[[Dict[str, Any]], KeepWhere]) -> Dict[str, Any]:
    """``read_results_kept``, ``keep(entry, where)`` given each entry's ``Where`` as well.

    Why: a command that copies entries (``results split``) reads the file twice; noting where each
    entry stands in the first reading lets the second take its text (``read_spans``) without parsing
    it again. A second pass of the first reading calls ``keep_for`` again: what the first kept is
    to be dropped.
    """
    kept: List[Any] = []

    def take(head: Dict[str, Any]) -> Sink:
        keep = keep_for(head)
        kept.clear()

        def sink(entries: List[Any]) -> None:
            kept.extend(keep(entry, where) for entry, where in entries)
        return sink

    head = _streamed(path, take, spans=True)
    head["images"] = kept
    return head


class TextChanged(Exception):
    """The file's text no longer holds the spans asked for (shorter, not UTF-8, unreadable)."""


def read_spans(path: str, spans: Iterable[Tuple[int, int]]) -> Iterator[Tuple[str, Optional[str]]]:
    """The file ``path`` read again in order, as (the text since the last span, the span's text) for
    each of ``spans`` (character offsets as ``Where`` gives them, in file order), then (the rest of
    the file, None). ``TextChanged`` where it cannot be: the file changed (the caller checks that
    the text is still what it was: it is not parsed here).

    Why: the second reading of ``results split`` needs each entry's text, not the entry parsed a
    second time; what lies between the spans lets the caller check the head and the count again.
    """
    try:
        fd = open_regular(path)
        with io.open(fd, "r", encoding="utf-8-sig", newline="") as fh:
            buf, base, at, read = "", 0, 0, 0          # ``buf`` holds the text from ``base``; ``at``: handed up to
            for start, end in spans:
                if start < at or end < start:
                    raise TextChanged
                if base + len(buf) < end:
                    pieces = [buf[at - base:]]
                    have = base + len(buf)
                    while have < end:
                        piece = fh.read(max(READ_CHARS, end - have))
                        if not piece:
                            raise TextChanged
                        pieces.append(piece)
                        have += len(piece)
                        read += len(piece)
                        if read > MAX_RESULTS_BYTES:
                            raise TextChanged
                    buf, base = "".join(pieces), at
                yield buf[at - base:start - base], buf[start - base:end - base]
                at = end
            rest = [buf[at - base:]]
            while True:
                piece = fh.read(READ_CHARS)
                if not piece:
                    break
                rest.append(piece)
                read += len(piece)
                if read > MAX_RESULTS_BYTES:
                    raise TextChanged
            yield "".join(rest), None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TextChanged from error
