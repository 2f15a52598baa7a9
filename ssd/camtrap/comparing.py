"""Two runs over one season side by side: ``python -m ssd results compare A.json B.json``.

Why: a researcher choosing between two detectors, two engines, two thresholds or a re-run after a
model update asks what MegaDetector's ``compare_batch_results`` answers: which images each run
holds, what each image is at the threshold in A and in B, how many went from one state to another
(empty → animal is a miss found, animal → empty a miss made), which ones, and what failed.

An image's state is ``failed``, ``empty`` or the classes shown (``animal``, ``animal+person``, in
category order), by the rule every results command uses (``megadetector.image_state``,
``shown_detections``: thresholds, per-class thresholds, suspect repeats). Categories are matched
by name (MegaDetector's "1" animal beside another tool's "7" animal): files whose class names
differ are refused, as a transition between classes one side cannot report means nothing. Names
are compared as ``results merge`` compares them (``/`` or ``\\``); relative names beside absolute
ones are refused with the way out (``results rebase``), as is ``..`` or an image listed twice.

Each file is read a chunk of entries at a time (``read_side``, ``results_stream``) into a ``Side``:
per image its name, whether it failed, its best score and the classes shown, never its boxes, so
two seasons of 100,000 images at 84 boxes compare in a few hundred MB, not ~8.5 GB.
"""
from __future__ import annotations

import json
import math
from array import array
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Tuple, Union

from ssd.base.cells import CsvWriter, safe_cell
from ssd.base.safe_paths import PathRefused, absolute_name_parts, is_absolute_name, name_parts
from ssd.base.text import terminal_safe
from ssd.camtrap.megadetector import ResultsError, in_category_order, is_failed, shown_detections
from ssd.camtrap.results_stream import read_results_streamed
from ssd.inference.filtering import ShownFilter

#: The columns of the changed images' CSV.
CSV_COLUMNS = ["file", "state_a", "state_b", "max_score_a", "max_score_b"]
#: How many changed images the terminal table lists (the CSV and the JSON list all).
SHOWN_CHANGES = 20


class Side:
    """One results file as the comparison needs it: its head (the document less ``images``) and,
    per entry in file order, its name, whether it failed, its best score and the classes shown.

    Why not the document: a detector writes every box down to the results floor, ~84 an image,
    ~40 KB of parsed objects each; two seasons of 100,000 images held side by side needed ~8.5 GB.
    Here an entry is its name, a byte, a float and an index into the few sets of classes seen
    (``kinds``): ~100 bytes, whatever its boxes. ``add`` takes entries a chunk at a time
    (``results_stream.read_results_streamed``) and keeps nothing of them but that.
    """

    def __init__(self, head: Dict[str, Any], shown: ShownFilter) -> None:
        self.head, self.shown = head, shown
        self.names: Dict[str, str] = head["detection_categories"]
        self.files: List[str] = []
        self.failed = bytearray()
        self.best = array("d")                     # max_score; NaN: none (a failure)
        self.kind = array("L")                     # index into ``kinds``
        self.kinds: List[Optional[FrozenSet[str]]] = [None]        # 0: failed
        self._kind_index: Dict[FrozenSet[str], int] = {}

    def __len__(self) -> int:
        return len(self.files)

    def add(self, entries: List[Dict[str, Any]]) -> None:
        """Keep what the comparison needs of each entry (``entry_state``'s and ``max_score``'s rule)."""
        names, shown = self.names, self.shown
        for im in entries:
            self.files.append(im["file"])
            failed = is_failed(im)
            self.failed.append(failed)
            score = None if failed else max_score(im)
            self.best.append(math.nan if score is None else score)
            if failed:
                self.kind.append(0)
                continue
            found = shown_classes(im, shown, names)
            index = self._kind_index.get(found)
            if index is None:
                index = self._kind_index[found] = len(self.kinds)
                self.kinds.append(found)
            self.kind.append(index)

    def score(self, i: int) -> Optional[float]:
        """Entry ``i``'s ``max_score`` (None for a failure)."""
        v = self.best[i]
        return None if math.isnan(v) else v

    def states(self, order: List[str]) -> List[str]:
        """Each kind's state: ``failed``, ``empty`` or the classes shown in ``order`` joined by ``+``."""
        return [state_name(k, order) for k in self.kinds]


def read_side(path: str, shown_for: Callable[[Dict[str, Any]], ShownFilter]) -> Side:
    """The results file ``path`` as a ``Side``, read a chunk of entries at a time and checked as
    ``read_results`` checks it (refused with its messages); ``shown_for(head)``: its filter."""
    sides: List[Side] = []

    def take(head: Dict[str, Any]) -> Callable[[List[Dict[str, Any]]], None]:
        sides.append(Side(head, shown_for(head)))
        return sides[-1].add

    read_results_streamed(path, take)
    return sides[-1]


def side_of(doc: Dict[str, Any], shown: ShownFilter) -> Side:
    """A parsed document as a ``Side`` (what a caller holding the document already passes)."""
    side = Side({k: v for k, v in doc.items() if k != "images"}, shown)
    side.add(doc["images"])
    return side


def entry_state(entry: Dict[str, Any], shown: ShownFilter, names: Dict[str, str], order: List[str]) -> str:
    """``failed``, ``empty`` or the class names shown joined by ``+`` in ``order`` (category order)."""
    return state_name(None if is_failed(entry) else shown_classes(entry, shown, names), order)


def shown_classes(entry: Dict[str, Any], shown: ShownFilter, names: Dict[str, str]) -> FrozenSet[str]:
    """The class names of an entry's detections shown at ``shown`` (the rule every results command uses)."""
    return frozenset(names.get(d["category"], d["category"]) for d in shown_detections(entry, shown, names=names))


def state_name(found: Optional[FrozenSet[str]], order: List[str]) -> str:
    """``failed`` (None), ``empty`` (no class) or the classes in ``order`` joined by ``+``."""
    return "failed" if found is None else "+".join(in_category_order(found, order)) if found else "empty"


def max_score(entry: Dict[str, Any]) -> Optional[float]:
    """The best score of an entry's detections (all of them, not only the shown: how near it came)."""
    dets = entry.get("detections")
    if dets is None:
        return None
    return max((float(d.get("conf", 0.0)) for d in dets), default=0.0)


def check_categories(a: Dict[str, Any], b: Dict[str, Any], label_a: str, label_b: str) -> List[str]:
    """The class names both files declare, in A's order; ``ResultsError`` when their names differ."""
    names_a = list(dict.fromkeys(a["detection_categories"].values()))
    names_b = list(dict.fromkeys(b["detection_categories"].values()))
    if set(names_a) != set(names_b):
        show = lambda names: ", ".join(repr(terminal_safe(n)) for n in names)   # noqa: E731
        raise ResultsError(f"{label_a} has the classes {show(names_a)}, {label_b} has {show(names_b)}: categories "
                           "are matched by name, so only results of the same classes can be compared")
    return names_a


def _absolute(files: List[str], label: str) -> bool:
    """Whether a file's names are all absolute (``False``: all relative); ``ResultsError`` for a mix."""
    flags = set(map(is_absolute_name, files))
    if len(flags) > 1:
        raise ResultsError(f"{label} holds both absolute and relative names: make them all relative to the "
                           "season's folder first (python -m ssd results rebase FILE --relative-to FOLDER -o NEW.json)")
    return flags == {True}


def keyed_entries(files: List[str], label: str, absolute: bool) -> Dict[str, int]:
    """Each entry's position by its name as ``results merge`` compares names (``\\`` as ``/``);
    ``ResultsError`` for ``..`` or a name listed twice."""
    out: Dict[str, int] = {}
    check = absolute_name_parts if absolute else name_parts
    for i, file in enumerate(files):
        try:
            check(file)
        except PathRefused as why:
            raise ResultsError(f"{label}: image {terminal_safe(file)!r} {why}") from None
        key = file.replace("\\", "/")
        if key in out:
            raise ResultsError(f"{label} lists {terminal_safe(key)!r} twice: results compare needs one entry an image")
        out[key] = i
    return out


def matched_names(a: Side, b: Side, label_a: str, label_b: str) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Both files' entry positions by name; ``ResultsError`` when one names its images absolutely
    and the other relative to a folder (no name could match: the way out is ``results rebase``)."""
    abs_a, abs_b = _absolute(a.files, label_a), _absolute(b.files, label_b)
    if len(a) and len(b) and abs_a != abs_b:
        absolute, relative = (label_a, label_b) if abs_a else (label_b, label_a)
        raise ResultsError(f"{absolute} names its images absolutely, {relative} relative to a folder: no name can "
                           f"match. Make {absolute}'s names relative first: python -m ssd results rebase FILE "
                           "--relative-to FOLDER -o NEW.json, with FOLDER the season's folder")
    return keyed_entries(a.files, label_a, abs_a), keyed_entries(b.files, label_b, abs_b)


def _state_order(states: List[str], order: List[str]) -> List[str]:
    """``empty``, then the classes (single classes first, in category order), then ``failed``."""
    def key(s: str) -> Tuple[int, int, List[int]]:
        if s in ("empty", "failed"):
            return (0 if s == "empty" else 2, 0, [])
        parts = s.split("+")
        return (1, len(parts), [order.index(p) if p in order else len(order) for p in parts])
    return sorted(set(states), key=key)


def compare_results(a: Union[Side, Dict[str, Any]], b: Union[Side, Dict[str, Any]], shown_a: ShownFilter,
                    shown_b: ShownFilter, labels: Tuple[str, str] = ("A", "B")) -> Dict[str, Any]:
    """Membership, per-image states at each side's filter, the transition table (A state → B state →
    count), the changed images (in A's order) and the failures of each side. ``a``, ``b``: ``Side``s
    read at ``shown_a``, ``shown_b`` (``read_side``), or parsed documents."""
    a = a if isinstance(a, Side) else side_of(a, shown_a)
    b = b if isinstance(b, Side) else side_of(b, shown_b)
    if (a.shown, b.shown) != (shown_a, shown_b):
        raise ValueError("a Side's states are those of the filter it was read at: read it at this one")
    order = check_categories(a.head, b.head, *labels)
    ea, eb = matched_names(a, b, *labels)
    kinds_a, kinds_b = a.states(order), b.states(order)
    pairs: Dict[Tuple[str, str], int] = {}
    changed: List[Dict[str, Any]] = []
    for key, i in ea.items():
        j = eb.get(key)
        if j is None:
            continue
        sa, sb = kinds_a[a.kind[i]], kinds_b[b.kind[j]]
        pairs[(sa, sb)] = pairs.get((sa, sb), 0) + 1
        if sa != sb:
            changed.append({"file": key, "state_a": sa, "state_b": sb,
                            "max_score_a": a.score(i), "max_score_b": b.score(j)})
    states = _state_order([s for pair in pairs for s in pair], order)
    both = sum(pairs.values())
    return {"images_a": len(ea), "images_b": len(eb), "in_both": both,
            "only_in_a": len(ea) - both, "only_in_b": len(eb) - both,
            "examples_only_in_a": [k for k in ea if k not in eb][:3],
            "examples_only_in_b": [k for k in eb if k not in ea][:3],
            "failed": {"a": sum(a.failed), "b": sum(b.failed)},
            "states": states,
            "transitions": {sa: {sb: pairs.get((sa, sb), 0) for sb in states} for sa in states},
            "changed": changed}


def write_changed_csv(fh: Any, changed: List[Dict[str, Any]]) -> None:
    """The changed images as CSV rows; no cell starts a formula (names and classes come from outside)."""
    w = CsvWriter(fh)
    w.writerow(CSV_COLUMNS)
    w.writerows([safe_cell(row[c]) if row[c] is not None else "" for c in CSV_COLUMNS] for row in changed)


def comparison_json_chunks(c: Dict[str, Any]) -> Iterator[str]:
    """The comparison as JSON text in pieces: the counts indented, the changed images one compact
    row a line (a season's hundreds of thousands of rows: the file a quarter smaller than indented
    and written 3x faster, by the C encoder, never as one string)."""
    encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    head = {k: v for k, v in c.items() if k != "changed"}
    yield json.dumps(head, indent=1)[:-1].rstrip() + ',\n "changed": ['
    for i, row in enumerate(c["changed"]):
        yield ("\n  " if i == 0 else ",\n  ") + encode(row)
    yield "\n ]\n}\n"


def side_line(label: str, path: str, side: Union[Side, Dict[str, Any]], shown: ShownFilter) -> str:
    """``A  a.json: 6 image(s), md_v5a.0.0.pt, threshold 0.2, person 0.5``: what one side is."""
    per = "".join(f", {terminal_safe(k)} {v:g}" for k, v in shown.per_class)
    head, count = (side.head, len(side)) if isinstance(side, Side) else (side, len(side["images"]))
    detector = terminal_safe((head.get("info") or {}).get("detector") or "detector not recorded")
    return f"{label}  {terminal_safe(path)}: {count} image(s), {detector}, threshold {shown.threshold:g}{per}"


def compare_text(c: Dict[str, Any], heads: List[str]) -> str:
    """The comparison as lines for a terminal: sides, membership, failures, the transition table (A's
    states down, B's across) and the first changed images (names and classes with escapes)."""
    lines = list(heads)
    lines.append(f"in both {c['in_both']}, only in A {c['only_in_a']}{_examples(c['examples_only_in_a'])}, "
                 f"only in B {c['only_in_b']}{_examples(c['examples_only_in_b'])}")
    lines.append(f"failed: A {c['failed']['a']}, B {c['failed']['b']}")
    lines.extend(_table(c))
    lines.append(f"changed state: {len(c['changed'])} of {c['in_both']} image(s) in both")
    for row in c["changed"][:SHOWN_CHANGES]:
        lines.append(f"  {terminal_safe(row['file'])}  {terminal_safe(row['state_a'])} -> {terminal_safe(row['state_b'])}"
                     f"  (max score {_score(row['max_score_a'])} -> {_score(row['max_score_b'])})")
    if len(c["changed"]) > SHOWN_CHANGES:
        lines.append(f"  … {len(c['changed']) - SHOWN_CHANGES} more: --csv FILE lists them all")
    return "\n".join(lines)


def _table(c: Dict[str, Any]) -> List[str]:
    """The transition table with totals: A's states down, B's across, each column as wide as its name."""
    if not c["states"]:
        return []
    t = c["transitions"]
    heads = [terminal_safe(s) for s in c["states"]] + ["all"]
    rows = [[t[sa][sb] for sb in c["states"]] for sa in c["states"]]
    rows = [r + [sum(r)] for r in rows]
    rows.append([sum(col) for col in zip(*rows)])
    first = max(len(h) for h in heads + ["A \\ B"]) + 2
    widths = [max(len(h), len(str(rows[-1][-1]))) + 2 for h in heads]
    out = ["A \\ B".ljust(first) + "".join(h.rjust(w) for h, w in zip(heads, widths))]
    for head, row in zip(heads, rows):
        out.append(head.ljust(first) + "".join(str(n).rjust(w) for n, w in zip(row, widths)))
    return out


def _examples(names: List[str]) -> str:
    return f" (e.g. {terminal_safe(names[0])!r})" if names else ""


def _score(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3g}"
