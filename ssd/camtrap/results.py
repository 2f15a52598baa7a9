"""Detection results in the formats people exchange: MegaDetector batch JSON, CSV, a text table.

The CLI (files and folders), the camera-trap batch runs and the Detect page's downloads all
write through these functions, so they follow one set of rules (``ssd.camtrap.megadetector``):
every image once, failures with ``"detections": null``, every detection down to the floor (not
what a slider shows), and in the CSV one row per detection (with its video frame) plus one per
image with none.
"""
from __future__ import annotations

import io
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ssd.base.cells import CsvWriter, safe_cell
from ssd.base.text import terminal_safe
from ssd.inference.detector import RawDetections
from ssd.camtrap.megadetector import image_entry, results_document
from ssd.camtrap.species import SPECIES_COLUMNS, species_cells, species_names
from ssd.inference.thresholds import RESULTS_FLOOR

Row = Tuple[str, Optional[RawDetections], Optional[str]]

#: ``frame``: a video's frame the detection was seen in (MegaDetector's ``frame_number``); ``warning``:
#: what was wrong with a file that still gave detections (a video cut short; ``error`` is a failure).
#: Each new column goes last, so the columns before it keep their places for readers that count them.
CSV_COLUMNS = ["file", "class", "score", "xmin", "ymin", "xmax", "ymax", "image_width", "image_height",
               "datetime", "suspect", "error", "frame", "warning"]
#: Where a video's ``datetime`` came from (``mvhd``, ``creationdate``, … : ``ssd.data.video_time``).
#: Last, and only in a file whose results carry it: a file without it stays as it always was.
TIME_SOURCE = "datetime_source"


def has_time_source(images: Iterable[Dict[str, Any]]) -> bool:
    """Whether any entry says where its time came from (then the CSV gets a ``TIME_SOURCE`` column)."""
    return any(im.get(TIME_SOURCE) for im in images)


def texts_have_time_source(texts: Iterable[str]) -> bool:
    """``has_time_source`` over compact JSON texts (the run journal's), by a text search: a key in a
    file name is escaped (``\\"``) and never matches."""
    return any(f'"{TIME_SOURCE}":' in t for t in texts)


def megadetector_json(results: Sequence[Row], classes: Sequence[str], model_name: str, threshold: float,
                      floor: float = RESULTS_FLOOR, inference: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``results`` is ``(file, detections or None, failure message or None)`` per image; ``inference``
    (``Detector.engine_info()``: engine, precision, device) goes into ``info`` as a batch run's does."""
    images = [image_entry(file, det, failure, floor) for file, det, failure in results]
    return results_document(images, classes, model_name, threshold,
                            {"ssd_batch": {"inference": inference}} if inference else None)


def results_csv(doc: Dict[str, Any]) -> str:
    """One row per detection, one per image without any, one per failure; boxes in pixels. No cell
    starts a spreadsheet formula (``ssd.base.cells.safe_cell``): names come from outside."""
    buf = io.StringIO()
    images = doc.get("images", [])
    write_results_csv(buf, doc.get("detection_categories") or {}, images, has_time_source(images),
                      species_names(doc))
    return buf.getvalue()


def write_results_csv(fh: IO[str], categories: Dict[str, str], images: Iterable[Dict[str, Any]],
                      time_source: bool = False, species: Optional[Dict[str, str]] = None) -> None:
    """``results_csv`` written to ``fh`` as the entries come (a batch run streams them from disk);
    ``time_source`` (``has_time_source``, known before the first row) adds the ``TIME_SOURCE`` column,
    ``species`` (``species.species_names``) the ``SPECIES_COLUMNS``."""
    w = CsvWriter(fh)
    w.writerow(csv_head(time_source, species is not None))
    write_csv_entries(w, categories, images, time_source, species)


def csv_head(time_source: bool, species: bool = False) -> List[str]:
    """The CSV's header row: ``CSV_COLUMNS``, then ``TIME_SOURCE`` where the results carry it, then
    ``SPECIES_COLUMNS`` where they are classified into species."""
    return CSV_COLUMNS + ([TIME_SOURCE] if time_source else []) + (SPECIES_COLUMNS if species else [])


def write_csv_entries(w: CsvWriter, categories: Dict[str, str], images: Iterable[Dict[str, Any]],
                      time_source: bool, species: Optional[Dict[str, str]] = None) -> int:
    """The rows of ``images`` after the header (a reader of a file a chunk at a time writes them as
    they come); returns how many rows were written. ``species``: each detection's top species and
    score last (blank on a row without a detection)."""
    rows = 0
    for im in images:
        tail = [im.get(TIME_SOURCE) or ""] if time_source else []
        cells = _csv_rows(im, categories)
        if species is not None:
            dets = im.get("detections") or [None]
            cells = [row + tail + species_cells(d, species) for row, d in zip(cells, dets)]
            tail = []
        w.writerows([safe_cell(c) for c in row + tail] for row in cells)
        rows += len(cells)
    return rows


def _csv_rows(im: Dict[str, Any], names: Dict[str, str]) -> List[List[Any]]:
    """The rows of one entry."""
    file = im["file"]
    if im.get("detections") is None:
        return [[file] + [""] * (len(CSV_COLUMNS) - 4) + [im.get("failure") or "unknown failure", "", ""]]
    width, height = im.get("width"), im.get("height")
    when, warning = im.get("datetime") or "", im.get("warning") or ""
    if not im["detections"]:
        return [[file, "", "", "", "", "", "", width or "", height or "", when, "", "", "", warning]]
    rows = []
    for d in im["detections"]:
        x, y, bw, bh = d["bbox"]
        sx, sy = (width or 1), (height or 1)
        rows.append([file, names.get(d["category"], d["category"]), f"{d['conf']:.3f}",
                     f"{x * sx:.1f}", f"{y * sy:.1f}", f"{(x + bw) * sx:.1f}", f"{(y + bh) * sy:.1f}",
                     width or "", height or "", when, "yes" if d.get("suspect") else "", "",
                     d.get("frame_number", ""), warning])
    return rows


def text_table(doc: Dict[str, Any], threshold: float) -> str:
    """The CLI's stdout table: detections at the display threshold, one line per empty image.
    File and class names are shown with their control characters escaped (``terminal_safe``)."""
    buf = io.StringIO()
    write_text_table(buf, doc.get("detection_categories") or {}, lambda: iter(doc.get("images", [])), threshold)
    return buf.getvalue()[:-1]


def write_text_table(fh: IO[str], categories: Dict[str, str], images: Callable[[], Iterable[Dict[str, Any]]],
                     threshold: float) -> None:
    """``text_table`` written to ``fh`` a row at a time, each line ending with a newline.

    ``images`` is called twice (the column widths, then the rows): a season's table is never held,
    nor its document (parsing a 10^6-photo results file took 3.1 GB before a line was printed).
    """
    widths = [len(c) for c in _TABLE_HEAD[:3]]
    for row in _table_rows(categories, images(), threshold):
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    fh.write(_table_line(_TABLE_HEAD, widths))
    for row in _table_rows(categories, images(), threshold):
        fh.write(_table_line(row, widths))


_TABLE_HEAD = ("file", "class", "score", "box (x, y, w, h) normalized")


def _table_line(row: Tuple[str, str, str, str], widths: List[int]) -> str:
    return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}\n"


def _table_rows(names: Dict[str, str], images: Iterable[Dict[str, Any]],
                threshold: float) -> Iterator[Tuple[str, str, str, str]]:
    """The table's rows after its head: a detection at the threshold each, or one for an image with none."""
    for im in images:
        if im.get("detections") is None:
            continue
        shown = [d for d in im["detections"] if d["conf"] >= threshold]
        if not shown:
            yield terminal_safe(im["file"]), "-", "-", "no detection above threshold"
        for d in shown:
            yield (terminal_safe(im["file"]), terminal_safe(names.get(d["category"], d["category"])),
                   f"{d['conf']:.3f}", "(" + ", ".join(f"{v:.3f}" for v in d["bbox"]) + ")")
