"""A season's detections as a COCO file (``--format coco``): pre-annotations for a labelling tool.

The loop MegaDetector users close with ``md_to_labelme`` or CVAT / Label Studio pre-annotations:
detect a season, correct the boxes in the tool, train on them. The file is COCO's ``instances``
layout in the COCO Camera Traps flavour ``ssd.data.cct`` reads, with the fields CVAT's "COCO 1.0"
and Label Studio's COCO import require:

* ``images``: every image the results processed (id, ``file_name`` relative to the images folder,
  width and height from the results, else from the image's header, upright as the tools show it).
  Images with no detection at the thresholds stay, without annotations: empty frames are
  training data. Failed files and videos (COCO holds still images) are left out and counted.
* ``annotations``: one per detection shown at the thresholds, the normalized ``[x, y, w, h]``
  turned into pixels and clipped to the image, with ``area``, ``iscrowd`` 0 and the detector's
  ``score`` as an extra field (the tools ignore it or show it), and an empty ``segmentation``: CVAT's
  importer (Datumaro) refuses an annotation without one and reads ``[]`` as "a box"; Label Studio's
  current converter skips an empty one (its old ``label-studio-converter`` stumbled on it).
* ``categories``: the results' ``detection_categories`` with their ids (numbers, as the tools want
  them; ids that are not numbers are numbered 1..N in the file's order).

A name that leads outside the images folder (``..``, an absolute path elsewhere) refuses the
export: a labelling tool would look for it in the wrong place, or read a file it should not.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ssd.base.atomic import atomic_path
from ssd.base.safe_paths import PathRefused, relative_inside, relative_name
from ssd.base.text import terminal_safe
from ssd.camtrap.megadetector import ResultsError, Threshold, is_failed, shown_detections
from ssd.camtrap.rebase import CLI_TERMS
from ssd.camtrap.video import is_video
from ssd.inference.filtering import ShownFilter

BOX_DIGITS = 2          # hundredths of a pixel: below what any tool draws, and a compact file


@dataclass
class CocoCounts:
    """What the export kept and left out (the command says it on stderr, the page under the button)."""

    images: int = 0
    annotations: int = 0
    failed: List[str] = field(default_factory=list)
    videos: List[str] = field(default_factory=list)
    no_size: List[str] = field(default_factory=list)     # no size in the results and no readable file


def category_ids(categories: Dict[str, str]) -> Dict[str, int]:
    """Results category id → COCO category id: the same number where the ids are numbers."""
    keys = list(categories)
    if all(k.isdigit() for k in keys) and len({int(k) for k in keys}) == len(keys):
        return {k: int(k) for k in keys}
    return {k: i for i, k in enumerate(keys, start=1)}


def coco_name(file: str, real_root: str, terms: Tuple[str, str] = CLI_TERMS) -> str:
    """``file`` relative to the images folder, ``/``-separated; ``ResultsError`` when it leads outside,
    naming the settings by ``terms`` (path prefix, images folder: flags, or the page's fields)."""
    try:
        return "/".join(relative_name(real_root, file.replace("\\", "/")))
    except PathRefused as err:
        raise ResultsError(f"'{file}' {err}: it lies outside the images folder {real_root}, so a labelling tool "
                           f"would not find it there (give {terms[1]}, or {terms[0]} for names written on "
                           "another machine)") from None


def _size(entry: Dict[str, Any], name: str, real_root: str) -> Optional[Tuple[int, int]]:
    w, h = entry.get("width"), entry.get("height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return w, h
    from ssd.data.cct_labels import read_header
    from ssd.data.decoding import PIL_ERRORS

    try:
        return read_header(os.path.join(real_root, *relative_inside(real_root, name)), verify=False)
    except (OSError, PathRefused, *PIL_ERRORS):
        return None


def pixel_box(bbox: List[float], width: int, height: int) -> List[float]:
    """MegaDetector's normalized ``[x, y, w, h]`` as COCO's pixel ``[x, y, w, h]``, clipped to the image."""
    x1, y1 = max(0.0, bbox[0] * width), max(0.0, bbox[1] * height)
    x2, y2 = min(float(width), (bbox[0] + bbox[2]) * width), min(float(height), (bbox[1] + bbox[3]) * height)
    return [round(v, BOX_DIGITS) for v in (x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1))]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


@dataclass
class CocoRows:
    """A COCO file as compact JSON rows: its images and annotations one string each (a season's
    million images: a string each, not a dict of eight keys; written row by row, never one string),
    the head and categories as plain values."""

    head: Dict[str, Any]
    images: List[str]
    annotations: List[str]
    categories: List[Dict[str, Any]]

    def chunks(self) -> Iterator[str]:
        """The file's text in pieces: ``json.loads("".join(chunks()))`` is the COCO document."""
        yield _compact(self.head)[:-1] + ',"images":['
        yield from _joined(self.images)
        yield '],"annotations":['
        yield from _joined(self.annotations)
        yield '],"categories":' + _compact(self.categories) + "}"


def _joined(rows: List[str]) -> Iterator[str]:
    for i, row in enumerate(rows):
        yield row if i == 0 else "," + row


class CocoBuilder:
    """The rows of a COCO file made an entry at a time (``add``), then the file (``rows``): the
    results' entries need not all be held (``read_coco_rows``), only what the file will hold."""

    def __init__(self, categories: Dict[str, str], threshold: Threshold, image_root: str,
                 hide_suspect: bool = True, terms: Tuple[str, str] = CLI_TERMS) -> None:
        self.shown = ShownFilter.at(threshold, hide_suspect)
        self.names, self.ids = categories, category_ids(categories)
        self.real_root, self.terms = os.path.realpath(image_root), terms
        self.counts = CocoCounts()
        self.images: List[str] = []
        self.annotations: List[str] = []
        self.seen: set = set()

    def add(self, entry: Dict[str, Any], file: Optional[str] = None) -> None:
        """One checked entry (named ``file`` where given: a renamed one); ``ResultsError`` for a name
        outside the images folder or listed before."""
        file = str(entry.get("file", "")) if file is None else file
        counts = self.counts
        if is_video(file) or is_failed(entry):
            (counts.failed if is_failed(entry) else counts.videos).append(file)   # a failed clip: a failure
            return
        name = coco_name(file, self.real_root, self.terms)
        if name in self.seen:      # a labelling tool would get two images of one file, each read again
            raise ResultsError(f"{terminal_safe(file)!r} is listed twice in the results: one entry an image "
                               "(results merge joins shards without repeats; nothing was written)")
        self.seen.add(name)
        size = _size(entry, name, self.real_root)
        if size is None:
            counts.no_size.append(file)
            return
        image_id = len(self.images) + 1
        self.images.append(_compact({"id": image_id, "file_name": name, "width": size[0], "height": size[1]}))
        for d in shown_detections(entry, self.shown, names=self.names):
            box = pixel_box(d["bbox"], *size)
            self.annotations.append(_compact({"id": len(self.annotations) + 1, "image_id": image_id,
                                              "category_id": self.ids[d["category"]], "bbox": box,
                                              "area": round(box[2] * box[3], BOX_DIGITS), "iscrowd": 0,
                                              "segmentation": [], "score": d["conf"]}))

    def rows(self, info: Dict[str, Any]) -> Tuple[CocoRows, CocoCounts]:
        """The COCO file of the entries added (``info``: the results' ``info``), and its counts."""
        counts = self.counts
        counts.images, counts.annotations = len(self.images), len(self.annotations)
        head = {"info": {"description": "Detections for correction in a labelling tool",
                         "contributor": str(info.get("detector") or ""), "version": "1.0"}, "licenses": []}
        categories = [{"id": self.ids[k], "name": str(v), "supercategory": ""} for k, v in self.names.items()]
        return CocoRows(head, self.images, self.annotations, categories), counts


def coco_rows(doc: Dict[str, Any], threshold: Threshold, image_root: str, hide_suspect: bool = True,
              terms: Tuple[str, str] = CLI_TERMS) -> Tuple[CocoRows, CocoCounts]:
    """The COCO file of a results file at the thresholds, and what it kept and left out."""
    made = CocoBuilder(doc.get("detection_categories") or {}, threshold, image_root, hide_suspect, terms)
    for entry in doc.get("images", []):
        made.add(entry)
    return made.rows(doc.get("info") or {})


def coco_document(doc: Dict[str, Any], threshold: Threshold, image_root: str, hide_suspect: bool = True,
                  terms: Tuple[str, str] = CLI_TERMS) -> Tuple[Dict[str, Any], CocoCounts]:
    """The COCO document as values (for a caller that edits it; the file is written from rows)."""
    data, counts = coco_bytes(doc, threshold, image_root, hide_suspect, terms)
    return json.loads(data), counts


def coco_bytes(doc: Dict[str, Any], threshold: Threshold, image_root: str, hide_suspect: bool = True,
               terms: Tuple[str, str] = CLI_TERMS) -> Tuple[bytes, CocoCounts]:
    """The COCO file as bytes (the page's download button), and its counts."""
    rows, counts = coco_rows(doc, threshold, image_root, hide_suspect, terms)
    return "".join(rows.chunks()).encode("utf-8"), counts


def write_coco(doc: Dict[str, Any], out: str, threshold: Threshold, image_root: str,
               hide_suspect: bool = True) -> CocoCounts:
    """The COCO file at ``out``, written row by row under a temporary name and renamed (nothing when
    refused: every name is checked before the file is begun)."""
    rows, counts = coco_rows(doc, threshold, image_root, hide_suspect)
    write_coco_rows(rows, out)
    return counts


def write_coco_rows(rows: CocoRows, out: str) -> None:
    """``rows`` as the COCO file ``out``, written under a temporary name and renamed."""
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(rows.chunks())


def read_coco_rows(path: str, shown_for: Callable[[Dict[str, Any]], ShownFilter], image_root: str,
                   prefix: Optional[str] = None, check: Callable[[Dict[str, Any]], None] = lambda head: None,
                   terms: Tuple[str, str] = CLI_TERMS) -> Tuple[Dict[str, Any], CocoRows, CocoCounts]:
    """The results file ``path`` read as it goes (``results_stream``) into a COCO file at
    ``shown_for(head)``: its head (names below ``prefix`` made relative, as ``rebase_results``
    records it), the file's rows and its counts.

    Why: parsed whole, a season of ~84 boxes an image needed gigabytes to write the few boxes a
    threshold shows; here each entry is let go once its rows are made. The refusals are those of
    the whole-file code, in its order: the file's own; then a name the prefix refuses (or, without
    one, a Windows name); then ``check(head)`` (the flags against the file's classes); then a name
    outside the images folder or listed twice. A refusal found while reading is kept until the
    file is read, so that a fault of the file later on comes first.
    """
    from ssd.camtrap.rebase import Renamer, WindowsNames
    from ssd.camtrap.results_stream import read_results_streamed

    state: Dict[str, Any] = {}

    def take(head: Dict[str, Any]) -> Callable[[List[Dict[str, Any]]], None]:
        state.clear()                           # a second pass: what the first made is dropped
        state["windows"] = WindowsNames()
        try:
            state["renamer"] = Renamer(prefix) if prefix is not None else None
        except ResultsError as error:
            state["renamed"] = error
        state["made"] = CocoBuilder(head.get("detection_categories") or {}, shown_for(head), image_root,
                                    terms=terms)

        def sink(entries: List[Dict[str, Any]]) -> None:
            for entry in entries:
                file = entry["file"]
                if "renamed" in state:
                    return
                if state["renamer"] is None:
                    state["windows"].add(file)
                else:
                    try:
                        file = state["renamer"].name(file)
                    except ResultsError as error:
                        state["renamed"] = error
                        return
                if "made_error" in state:
                    continue
                try:
                    state["made"].add(entry, file)
                except ResultsError as error:
                    state["made_error"] = error
        return sink

    head = read_results_streamed(path, take)
    if "renamed" in state:
        raise state["renamed"]
    if state["renamer"] is None:
        state["windows"].refuse(image_root, terms)
    else:
        head = state["renamer"].head(head)
    check(head)
    if "made_error" in state:
        raise state["made_error"]
    rows, counts = state["made"].rows(head.get("info") or {})
    return head, rows, counts
