"""The MegaDetector batch-results format: the file camera-trap tools (Timelapse, AddaxAI) read.

Why these rules, each checked by MegaDetector's own validator
(``megadetector.postprocessing.validate_batch_results``, pinned in requirements-dev.txt):

* ``format_version`` is the string ``"1.6"``, the newest version that validator knows
  (``run_detector_batch.current_format_version``); from 1.6 on it must be a string.
* every image appears once, with ``/`` separators; a file that could not be processed has
  ``"failure": "<reason>"`` **and** ``"detections": null`` (a list there is rejected).
* detections go down to a low floor (0.005, as MegaDetector writes) so a tool can re-threshold
  later; ``conf`` is rounded to 3 decimals and ``bbox`` (``[x_min, y_min, width, height]``,
  normalized) to 4, as MegaDetector does; ``conf`` is always a float.
* ``info.detector_metadata`` carries ``typical_detection_threshold`` and
  ``conservative_detection_threshold``, which Timelapse uses as its default thresholds.
* category ids: MegaDetector's "1" animal, "2" person, "3" vehicle when the classes are exactly
  that list, else "1".."N" in class order.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from ssd.base.json_file import JSONFileError, read_json_file
from ssd.camtrap.results_check import ResultsError, check_results
from ssd.inference.filtering import ShownFilter
from ssd.inference.thresholds import MAX_DETECTIONS, RESULTS_FLOOR, TYPICAL_THRESHOLD

MEGADETECTOR_FORMAT_VERSION = "1.6"
CONF_DIGITS = 3
COORD_DIGITS = 4
MEGADETECTOR_CLASSES = ("animal", "person", "vehicle")


def category_map(classes: Sequence[str]) -> Dict[str, str]:
    """``{id: name}``: MegaDetector's ids for its three classes, else "1".."N" in class order."""
    return {str(i + 1): str(name) for i, name in enumerate(classes)}


def conservative_threshold(threshold: float) -> float:
    """A lower threshold for recall-minded review: MegaDetector advises 0.3 next to 0.8 (ratio ~0.4)."""
    return round(max(RESULTS_FLOOR, min(float(threshold), float(threshold) * 0.4)), 3)


def detections_list(class_ids: np.ndarray, scores: np.ndarray, boxes_px: np.ndarray,
                    image_size: Sequence[int], floor: float,
                    max_detections: int = MAX_DETECTIONS) -> List[Dict[str, Any]]:
    """The best ``max_detections`` ≥ ``floor`` as MegaDetector dicts (pixels → normalized x, y, w, h).

    The arithmetic is whole-array float64, as ``float()`` of each value was (the same numbers,
    ``np.where`` keeping Python's ``min``/``max`` on NaN and -0.0); only the rounding stays
    Python's ``round``, which is correctly rounded where numpy's is not. A folder run writes ~100
    candidates per image at the results floor: per value, this was 0.6 ms of the run's one thread.
    """
    w, h = float(image_size[0]), float(image_size[1])
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-s, kind="stable")
    order = order[:_ranked_above(s[order], floor, max_detections)]
    if not len(order):
        return []
    b = np.asarray(boxes_px, dtype=np.float64).reshape(-1, 4)[order]
    x1, y1, x2, y2 = (_unit(b[:, k] / d) for k, d in ((0, w), (1, h), (2, w), (3, h)))
    rows = np.stack([x1, y1, _positive(x2 - x1), _positive(y2 - y1)], axis=1).tolist()
    cats = np.asarray(class_ids).reshape(-1)[order].tolist()
    return [{"category": str(int(c) + 1), "conf": round(v, CONF_DIGITS),
             "bbox": [round(x, COORD_DIGITS) for x in row]} for c, v, row in zip(cats, s[order].tolist(), rows)]


def _ranked_above(ranked: np.ndarray, floor: float, limit: int) -> int:
    """How many of the scores (best first) come before the first one below ``floor``, at most ``limit``."""
    below = np.flatnonzero(ranked < floor)
    return int(min(below[0] if len(below) else len(ranked), max(0, limit)))


def _unit(v: np.ndarray) -> np.ndarray:
    """``min(max(v, 0.0), 1.0)`` element-wise, with Python's choices on NaN and -0.0."""
    v = np.where(0.0 > v, 0.0, v)
    return np.where(1.0 < v, 1.0, v)


def _positive(v: np.ndarray) -> np.ndarray:
    """``max(0.0, v)`` element-wise, with Python's choice on NaN (0.0)."""
    return np.where(v > 0.0, v, 0.0)


def image_entry(file: str, raw=None, failure: Optional[str] = None, floor: float = RESULTS_FLOOR,
                datetime: Optional[str] = None, max_detections: int = MAX_DETECTIONS) -> Dict[str, Any]:
    """One ``images`` entry from ``RawDetections`` (or a failure message when ``raw`` is None)."""
    entry: Dict[str, Any] = {"file": as_posix(file)}
    if raw is None:
        entry["failure"] = failure or "unknown failure"
        entry["detections"] = None
        return entry
    entry["width"], entry["height"] = int(raw.image_size[0]), int(raw.image_size[1])
    if datetime:
        entry["datetime"] = datetime
    entry["detections"] = detections_list(raw.class_ids, raw.scores, raw.boxes, raw.image_size, floor,
                                          max_detections)
    entry["max_detection_conf"] = max((d["conf"] for d in entry["detections"]), default=0.0)
    entry["failure"] = None
    return entry


def as_posix(path: str) -> str:
    """``/`` separators whatever the platform wrote."""
    return str(path).replace(os.sep, "/") if os.sep != "/" else str(path)


def detector_name(model_name: str) -> str:
    """``info.detector`` of our results: which model made them (merges and reruns compare it)."""
    return f"ssd-studio:{model_name}"


def results_document(images: List[Dict[str, Any]], classes: Sequence[str], model_name: str,
                     threshold: float, extra_info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The whole file: ``info`` (version, detector, thresholds), categories and images."""
    info: Dict[str, Any] = {
        "format_version": MEGADETECTOR_FORMAT_VERSION, "detector": detector_name(model_name),
        "detection_completion_time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "detector_metadata": {"typical_detection_threshold": float(threshold),
                              "conservative_detection_threshold": conservative_threshold(threshold)}}
    info.update(extra_info or {})
    return {"info": info, "detection_categories": category_map(classes), "images": images}


#: A season of a million images with a few boxes each is under 1 GB of results.
MAX_RESULTS_BYTES = 2 * 1024 ** 3


def read_results(path: str) -> Dict[str, Any]:
    """Load a results file and check every field the format defines (``ResultsError`` naming the
    entry otherwise; ``results_check``): a regular file, at most ``MAX_RESULTS_BYTES``."""
    try:
        doc = read_json_file(path, MAX_RESULTS_BYTES, max_depth=None, hold=True)   # check_results bounds the depth
    except FileNotFoundError:
        raise ResultsError(f"'{path}' does not exist") from None
    except JSONFileError as err:
        raise ResultsError(f"not a readable JSON results file: {err}") from None
    return check_results(doc, f"'{path}'")


def typical_threshold(doc: Dict[str, Any]) -> float:
    """The threshold a results file suggests (``typical_detection_threshold``), else ours."""
    meta = (doc.get("info") or {}).get("detector_metadata") or {}
    return float(meta.get("typical_detection_threshold", TYPICAL_THRESHOLD))


Threshold = Union[float, ShownFilter]


def image_state(entry: Dict[str, Any], threshold: Threshold, hide_suspect: bool = True,
                names: Optional[Dict[str, str]] = None) -> str:
    """``failed``, ``empty`` or ``detections`` for one entry at a display threshold.

    ``threshold`` is a number, or a ``ShownFilter`` (per-class thresholds; its own
    ``hide_suspect`` then counts); ``names`` (category id → class name) lets per-class
    thresholds find their classes.
    """
    if is_failed(entry):
        return "failed"
    return "detections" if shown_detections(entry, threshold, hide_suspect, names) else "empty"


def is_failed(entry: Dict[str, Any]) -> bool:
    """Whether an entry is a file that could not be processed (a ``failure``, or no detections list)."""
    return entry.get("failure") is not None or entry.get("detections") is None


def in_category_order(found: Iterable[str], order: Sequence[str]) -> List[str]:
    """Class names in the order the file declares its categories (names it does not declare last, by name):
    ``animal`` before ``person`` wherever both appear (sort folders, compare states)."""
    return sorted(set(found), key=lambda c: (order.index(c) if c in order else len(order), c))


def is_cut_short(entry: Dict[str, Any]) -> bool:
    """Whether an entry is a video that was read, but ended before its header said (its ``warning``)."""
    return isinstance(entry.get("warning"), str) and entry.get("failure") is None


def shown_detections(entry: Dict[str, Any], threshold: Threshold, hide_suspect: bool = True,
                     names: Optional[Dict[str, str]] = None) -> List[Dict[str, Any]]:
    """An entry's detections at or above ``threshold`` (suspect repeats left out when asked)."""
    return ShownFilter.at(threshold, hide_suspect).entry_detections(entry, names)


def check_class_names(per_class: Dict[str, float], categories: Dict[str, str]) -> None:
    """``ResultsError`` for a per-class threshold naming a class the results do not have (a typo
    would otherwise silently leave that class at the general threshold)."""
    unknown = sorted(set(per_class) - set(categories.values()))
    if unknown:
        from ssd.base.argtypes import join_names

        comma = next((name for name in categories.values() if "," in name), None)
        hint = (f" (a name holding a comma is quoted as in CSV: {join_names([comma])}, or "
                f"{join_names([comma + '=0.3'])} with a threshold)" if comma else "")
        raise ResultsError(f"no class {', '.join(map(repr, unknown))} in these results; their classes are "
                           f"{', '.join(map(repr, categories.values()))}{hint}")


def sort_key(file: str) -> tuple:
    """The order of a recursive folder walk: by path components, so merged shards sort like one run
    (``\\`` too: files written on Windows)."""
    return tuple(str(file).replace("\\", "/").split("/"))

