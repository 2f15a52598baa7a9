"""The one confidence filter of both pages: which detections are shown at a display setting.

Why one: the Detect page filtered the detector's arrays (``RawDetections.filter``) and the
Camera traps page filtered MegaDetector entries (``megadetector.shown_detections``) with two
copies of the same rule, which could drift (one compared with ``>``, a suspect flag only one
knew). Both now ask ``ShownFilter.indices``; neither runs the network again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np


@dataclass(frozen=True)
class ShownFilter:
    """A display setting: score at least ``threshold``, class among ``classes`` (None: any),
    repeats flagged suspect left out when ``hide_suspect``, at most ``max_detections`` (best first).

    ``per_class`` gives some classes a threshold of their own (MegaDetector's "separate into
    folders" takes one per category: people are often wanted at 0.5 while animals are kept from
    0.2); the classes not named there use ``threshold``. It is a sorted tuple of (name, value)
    pairs so the filter stays hashable (the page caches on it).
    """

    threshold: float = 0.0
    classes: Optional[FrozenSet[str]] = None
    hide_suspect: bool = True
    max_detections: Optional[int] = None
    per_class: Tuple[Tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.classes is not None and not isinstance(self.classes, frozenset):
            object.__setattr__(self, "classes", frozenset(self.classes))
        if isinstance(self.per_class, Mapping):
            object.__setattr__(self, "per_class", tuple(sorted((str(k), float(v)) for k, v in self.per_class.items())))

    @classmethod
    def of(cls, threshold: float = 0.0, classes: Optional[Iterable[str]] = None, hide_suspect: bool = True,
           max_detections: Optional[int] = None, per_class: Optional[Mapping[str, float]] = None) -> "ShownFilter":
        return cls(float(threshold), None if classes is None else frozenset(classes), hide_suspect, max_detections,
                   tuple(sorted((str(k), float(v)) for k, v in (per_class or {}).items())))

    @classmethod
    def at(cls, threshold: Union[float, "ShownFilter"], hide_suspect: bool = True) -> "ShownFilter":
        """``threshold`` itself when it is a filter already, else a filter at that one threshold."""
        return threshold if isinstance(threshold, ShownFilter) else cls(float(threshold), hide_suspect=hide_suspect)

    def threshold_of(self, class_name: str) -> float:
        """The threshold detections of ``class_name`` must reach."""
        for name, value in self.per_class:
            if name == class_name:
                return value
        return self.threshold

    def lowest(self) -> float:
        """The lowest threshold any class has (what a score must reach to be shown at all)."""
        return min([self.threshold] + [v for _, v in self.per_class])

    def indices(self, scores: Sequence[float], class_names: Sequence[str],
                suspect: Optional[Sequence[bool]] = None) -> np.ndarray:
        """Positions of the detections shown, in the given (descending-score) order."""
        if self.per_class:
            limits = np.array([self.threshold_of(c) for c in class_names], dtype=np.float64)
        else:
            limits = np.float64(self.threshold)
        keep = np.asarray(scores, dtype=np.float64) >= limits
        if self.classes is not None:
            keep &= np.array([c in self.classes for c in class_names], dtype=bool).reshape(keep.shape)
        if self.hide_suspect and suspect is not None:
            keep &= ~np.asarray(suspect, dtype=bool).reshape(keep.shape)
        idx = np.flatnonzero(keep)
        if self.max_detections is not None:
            idx = idx[:max(0, int(self.max_detections))]
        return idx

    def entry_detections(self, entry: Dict[str, Any],
                         names: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
        """A MegaDetector entry's detections shown (``names``: category id → class name)."""
        dets = entry.get("detections")
        if not dets:
            return []
        names = names or {}
        shown: List[Dict[str, Any]] = []
        limit = None if self.max_detections is None else max(0, int(self.max_detections))
        floor = min([self.threshold, *(v for _, v in self.per_class)])
        for d in dets:
            if not isinstance(d, dict):
                continue
            conf = d.get("conf")
            if conf.__class__ is float and conf < floor:
                continue        # most of an entry's detections (kept down to 0.005): no class shows them
            if limit is not None and len(shown) >= limit:
                break
            cat = str(d.get("category"))
            if self.shows(_score(d), names.get(cat, cat), bool(d.get("suspect"))):
                shown.append(d)
        return shown

    def shows(self, score: float, class_name: str, suspect: bool = False) -> bool:
        """Whether one detection is shown: ``indices``'s rule for a single one.

        Why a scalar copy: an entry holds a handful of detections, and a season's summary, sort or
        episode count asks for every entry's, several times each; the arrays ``indices`` builds
        cost ten times the comparison itself there (200,000 entries: seconds). A test holds the
        two to the same answers.
        """
        return (score >= self.threshold_of(class_name) and (self.classes is None or class_name in self.classes)
                and not (self.hide_suspect and suspect))


def _score(detection: Dict[str, Any]) -> float:
    conf = detection.get("conf", 0.0)
    return float(conf) if isinstance(conf, (int, float)) and not isinstance(conf, bool) else 0.0
