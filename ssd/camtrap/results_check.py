"""Checking a MegaDetector results file on load: every field the format defines has its type.

Why: a results file is exchanged between tools and people, so it is untrusted input. Without this,
``"conf": "high"`` or ``"detections": ["x"]`` reached the code that sorts, counts or merges and
ended in a ``TypeError`` traceback; ``NaN`` confidences were counted and written back out (not
JSON); a 100,000-deep value crashed the parser. ``check_results`` walks the document once and
refuses it with a ``ResultsError`` that names the file, the entry and the field. ``results
summary|sort|merge``, ``--previous-results`` and the Camera traps page all read through it
(``megadetector.read_results``).

The rules follow MegaDetector's own validator (``validate_batch_results``) where it has one
(string category ids, a failure only with null detections, every detection's category listed);
numbers must be finite, confidences and thresholds within 0–1, boxes four numbers. Fields of
other tools are kept, checked only for nesting depth and finite numbers.

A season holds millions of boxes, so the entries are asked about 64 at a time, in C loops
(``_plain_detections``, ``_plain_entries``); a chunk with anything unusual is walked field by
field, which names the first fault: the rules and messages are the walk's.
"""
from __future__ import annotations

import math
import os
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Dict, List

from ssd.base.errors import SSDError

#: Nesting below the level of a field this code knows (a classifier's extra fields, say).
MAX_EXTRA_DEPTH = 16

_INFO_NUMBERS = ("typical_detection_threshold", "conservative_detection_threshold")


class ResultsError(SSDError):
    """A results file that cannot be read, merged or used as asked (``megadetector`` re-exports it)."""


def check_results(doc: Any, where: str) -> Dict[str, Any]:
    """``doc`` if it is a well-formed results document, else ``ResultsError`` naming the field."""
    if isinstance(doc, dict) and isinstance(doc.get("images"), list) and "detection_categories" in doc:
        _names(doc["detection_categories"], "detection_categories", where)    # says what is wrong with it
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("detection_categories"), dict):
        raise ResultsError(f"{where} is not a MegaDetector batch results file "
                                "(it needs 'images' and 'detection_categories')")
    _check_info(doc.get("info"), where)
    cats = _names(doc["detection_categories"], "detection_categories", where)
    if doc.get("classification_categories") is not None:
        _names(doc["classification_categories"], "classification_categories", where)
    for key, value in doc.items():
        if key not in ("info", "images", "detection_categories", "classification_categories"):
            _extra(value, key, where)
    images = doc["images"]
    for start in range(0, len(images), CHUNK):
        check_entries(images[start:start + CHUNK], start, cats, where)
    return doc


def check_entries(chunk: List[Any], start: int, cats: Dict[str, str], where: str) -> None:
    """``ResultsError`` naming the first faulty entry of ``chunk`` (``images[start:]``, at most
    ``CHUNK`` of them), checked against the document's ``detection_categories`` ``cats``: what
    ``check_results`` asks of every entry, for a reader that parses a file a chunk at a time."""
    plain = _plain_detections(chunk, cats)
    if plain and _plain_entries(chunk):
        return                          # the common case: every field of the chunk checked at once
    for i, im in enumerate(chunk, start):
        _check_image(im, i, cats, where, detections_checked=plain)


def _fail(where: str, field: str, value: Any, expected: str) -> ResultsError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:80] + "…"
    return ResultsError(f"{where}: {field} is {shown}, expected {expected}")


def _number(value: Any, lo: float = -math.inf, hi: float = math.inf) -> bool:
    """A JSON number (not a boolean), finite, within [lo, hi]."""
    try:
        return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and lo <= value <= hi)
    except OverflowError:                # a whole number beyond any float: 1e400 written without a point
        return False


def _check_info(info: Any, where: str) -> None:
    if info is None:
        return
    if not isinstance(info, dict):
        raise _fail(where, "info", info, "an object")
    for key in ("format_version", "detector"):
        if info.get(key) is not None and not isinstance(info[key], (str, int, float)):
            raise _fail(where, f"info.{key}", info[key], "text")
    meta = info.get("detector_metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            raise _fail(where, "info.detector_metadata", meta, "an object")
        for key in _INFO_NUMBERS:
            if key in meta and not _number(meta[key], 0.0, 1.0):
                raise _fail(where, f"info.detector_metadata.{key}", meta[key], "a number within 0–1")
    batch = info.get("ssd_batch")
    if batch is not None:
        if not isinstance(batch, dict):
            raise _fail(where, "info.ssd_batch", batch, "an object")
        if batch.get("flag_repeats") is not None and not (_number(batch["flag_repeats"], 0) and
                                                          float(batch["flag_repeats"]).is_integer()):
            raise _fail(where, "info.ssd_batch.flag_repeats", batch["flag_repeats"], "a whole number ≥ 0")
    _extra(info, "info", where)


def _names(cats: Any, field: str, where: str) -> Dict[str, str]:
    if not isinstance(cats, dict):
        raise _fail(where, field, cats, "an object of id → name")
    for k, v in cats.items():
        if not isinstance(v, str) or not v.strip():
            raise _fail(where, f"{field}[{k!r}]", v, "a class name")
    return cats


def _check_image(im: Any, i: int, cats: Dict[str, str], where: str, detections_checked: bool = False) -> None:
    """``detections_checked``: ``_plain_detections`` found every detection plain; the rest is checked."""
    if not isinstance(im, dict) or not isinstance(im.get("file"), str) or not im["file"]:
        raise ResultsError(f"{where}: images[{i}] has no 'file' (a non-empty name)")
    if "\0" in im["file"]:      # no file system names a file so: a damaged or forged entry
        raise ResultsError(f"{where}: images[{i}]'s 'file' holds a NUL character, which no file name can "
                           f"({im['file'][:120]!r})")
    at = f"images[{i}] ({im['file'][:120]!r})"
    failure, dets = im.get("failure"), im.get("detections")
    if failure is not None and not isinstance(failure, str):
        raise _fail(where, f"{at}.failure", failure, "text or null")
    if dets is not None:
        if not isinstance(dets, list):
            raise _fail(where, f"{at}.detections", dets, "a list or null")
        if failure is not None:
            raise ResultsError(f"{where}: {at} has a failure and detections; a failed image has "
                                    "\"detections\": null")
        for j, d in enumerate(() if detections_checked else dets):
            _check_detection(d, f"{at}.detections[{j}]", cats, where)
    elif "detections" not in im and failure is None:
        raise ResultsError(f"{where}: {at} has neither 'detections' nor a 'failure'")
    for key in ("width", "height"):
        if im.get(key) is not None and not (_number(im[key], 0) and float(im[key]).is_integer()):
            raise _fail(where, f"{at}.{key}", im[key], "a whole number of pixels")
    if im.get("max_detection_conf") is not None and not _number(im["max_detection_conf"], 0.0, 1.0):
        raise _fail(where, f"{at}.max_detection_conf", im["max_detection_conf"], "a number within 0–1")
    for key in ("datetime", "warning"):
        if im.get(key) is not None and not isinstance(im[key], str):
            raise _fail(where, f"{at}.{key}", im[key], "text")
    for key, value in im.items():
        if key not in _IMAGE_KEYS:
            _extra(value, f"{at}.{key}", where)


_IMAGE_KEYS = frozenset(("file", "failure", "detections", "width", "height", "max_detection_conf", "datetime",
                         "warning"))
_DETECTION_KEYS = frozenset(("category", "conf", "bbox", "suspect"))


def _check_detection(d: Any, at: str, cats: Dict[str, str], where: str) -> None:
    if type(d) is dict and d.keys() <= _DETECTION_KEYS and _plain_detection(d, cats):
        return                                  # the common case, checked in one expression
    if not isinstance(d, dict):
        raise _fail(where, at, d, "a detection object (category, conf, bbox)")
    if not isinstance(d.get("category"), str) or d["category"] not in cats:
        raise _fail(where, f"{at}.category", d.get("category"),
                    f"one of the detection_categories ids {', '.join(map(repr, cats))}")
    if not _number(d.get("conf"), 0.0, 1.0):
        raise _fail(where, f"{at}.conf", d.get("conf"), "a number within 0–1")
    box = d.get("bbox")
    if not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box):
        raise _fail(where, f"{at}.bbox", box, "[x, y, width, height], four numbers")
    if d.get("suspect") is not None and not isinstance(d["suspect"], bool):
        raise _fail(where, f"{at}.suspect", d["suspect"], "true or false")
    for key, value in d.items():
        if key not in _DETECTION_KEYS:
            _extra(value, f"{at}.{key}", where)


def _plain_detection(d: Dict[str, Any], cats: Dict[str, str]) -> bool:
    """A detection as this code writes it: float conf within 0–1, four finite float coordinates."""
    conf, box = d.get("conf"), d.get("bbox")
    return (type(conf) is float and 0.0 <= conf <= 1.0 and type(box) is list and len(box) == 4
            and all(type(v) is float and math.isfinite(v) for v in box) and type(d.get("category")) is str
            and d.get("category") in cats and type(d.get("suspect", False)) is bool)   # a str: a list is unhashable


#: Entries whose detections ``_plain_detections`` asks about together: small enough that its
#: passes over them find them still in the processor's cache (1,024 were 25% slower).
CHUNK = 64


def _values(objects: List[Dict[str, Any]], key: str) -> List[Any]:
    """``o.get(key)`` of every entry or detection, in a C loop (``operator.methodcaller`` was 2.5x slower)."""
    return list(map(dict.get, objects, repeat(key)))


def _plain_detections(images: List[Any], cats: Dict[str, str]) -> bool:
    """Whether every detection of ``images`` passes ``_plain_detection``, asked of all at once.

    Why: box by box, the check was 3 s of a season's 6 s read (4.2 million boxes, 0.7 µs each);
    here the same conditions are asked in C loops over the chunk (the set of types, min, max, and
    a sum, which is finite only when every number is). ``False`` sends the entries to the walk
    box by box, which names the first fault, or accepts what is only unusual (a whole-number
    confidence, a null ``suspect``, another tool's field), so what is refused, and how, is as before.
    """
    if set(map(type, images)) != {dict}:
        return False
    lists = list(filter(None, map(dict.get, images, repeat("detections"))))
    if not set(map(type, lists)) <= {list}:
        return False
    dets = list(chain.from_iterable(lists))
    if not dets:
        return True
    if set(map(type, dets)) != {dict}:
        return False
    names, suspects = _values(dets, "category"), _values(dets, "suspect")
    if set(map(type, names)) != {str} or not set(names).issubset(cats) \
            or not set(map(type, suspects)) <= {bool, type(None)}:
        return False
    # category, conf and bbox are there (not None: their types are checked below), suspect and a
    # classifier's classifications where not None; no other key when the lengths add up to that (a
    # null suspect or classifications, being counted, goes the slow way)
    classified = _values(dets, "classifications")
    if sum(map(len, dets)) != 5 * len(dets) - suspects.count(None) - classified.count(None):
        return False
    if len(classified) != classified.count(None) and not _plain_classifications(classified):
        return False
    confs, boxes = _values(dets, "conf"), _values(dets, "bbox")
    if set(map(type, confs)) != {float} or not (math.isfinite(sum(confs)) and min(confs) >= 0.0 and max(confs) <= 1.0):
        return False
    if set(map(type, boxes)) != {list} or set(map(len, boxes)) != {4}:
        return False
    coords = list(chain.from_iterable(boxes))
    return set(map(type, coords)) == {float} and math.isfinite(sum(coords))


def _plain_classifications(values: List[Any]) -> bool:
    """Whether every detection's ``classifications`` (None where it has none) is a list of
    ``[id, score]`` pairs, ids text and scores finite floats: what the walk's ``_extra`` accepts,
    asked in C loops as ``_plain_detections`` asks the rest.

    Why: a classifier's files (SpeciesNet, AddaxAI) give every box this field; each chunk went
    to the walk box by box: 1.3-1.5 s against 0.45 s here for 168,000 boxes of three classifications
    (2,000 images; a 2-core Xeon). Anything else goes the slow way."""
    lists = [v for v in values if v is not None]
    if set(map(type, lists)) != {list}:
        return False
    pairs = list(chain.from_iterable(lists))
    if not pairs:
        return True
    if set(map(type, pairs)) != {list} or set(map(len, pairs)) != {2}:
        return False
    ids, scores = list(map(itemgetter(0), pairs)), list(map(itemgetter(1), pairs))
    return set(map(type, ids)) == {str} and set(map(type, scores)) == {float} and math.isfinite(sum(scores))


def _plain_entries(images: List[Dict[str, Any]]) -> bool:
    """Whether every entry of ``images`` (objects, as ``_plain_detections`` found) passes
    ``_check_image`` but for its detections, asked of all at once as there: 2.4 µs an entry
    one by one, seconds in a season of a million files with a box or two each.

    A failure with its null detections, or null detections without a failure, sends the chunk
    to the walk, as does any number that is not plain (a float width, say).
    """
    files = _values(images, "file")
    if set(map(type, files)) != {str} or not all(files) or "\0" in "".join(files) \
            or not set(chain.from_iterable(images)) <= _IMAGE_KEYS:
        return False
    pairs = set(zip(map(type, _values(images, "failure")), map(type, _values(images, "detections"))))
    if pairs != {(type(None), list)}:
        return False
    sizes = _values(images, "width") + _values(images, "height")
    best = _values(images, "max_detection_conf")
    texts = _values(images, "datetime") + _values(images, "warning")
    if not (set(map(type, sizes)) <= {int, type(None)} and set(map(type, best)) <= {float, type(None)}):
        return False
    sizes, best = list(filter(None, sizes)), list(filter(None, best))      # less None, 0 and 0.0
    return (min(sizes, default=0) >= 0 and max(sizes, default=0) < 2 ** 53 and math.isfinite(sum(best))
            and min(best, default=0.0) >= 0.0 and max(best, default=0.0) <= 1.0
            and set(map(type, texts)) <= {str, type(None)})


def _extra(value: Any, at: str, where: str) -> None:
    """A field this code does not read: kept, but not nested deeper than ``MAX_EXTRA_DEPTH`` and
    without NaN or infinite numbers (which no JSON reader accepts when it is written back)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(where, at, value, "a finite number")
    if not isinstance(value, (dict, list)):
        return
    stack: List[tuple] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_EXTRA_DEPTH:
            raise ResultsError(f"{where}: {at} is nested more than {MAX_EXTRA_DEPTH} levels deep")
        for c in (v.values() if isinstance(v, dict) else v):
            if isinstance(c, (dict, list)):
                stack.append((c, depth + 1))
            elif isinstance(c, float) and not math.isfinite(c):
                raise _fail(where, at, c, "finite numbers only")


def _same_file(a: str, b: str) -> bool:
    """Whether two names are one file (the same path, or a link to it)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_replacing(out: str, inputs: List[str], made: str, flag: str = "-o") -> None:
    """``ResultsError`` when ``out`` is one of the results files a command reads: a file a command
    derives (a merge, a rebase) never replaces an original, whose loss a user cannot undo."""
    for results in inputs:
        if _same_file(out, results):
            raise ResultsError(f"'{out}' is the results file '{results}' itself: the {made} must not replace "
                               f"the original; give another {flag}")

