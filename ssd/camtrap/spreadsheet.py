"""A season's results as an Excel workbook (``--format xlsx``): what AddaxAI users open first.

Sheets: ``images`` (one row per file: episode, time, state at the thresholds, classes shown, best
score, size, video frames, failure; where a video's time came from, when the results say), ``detections`` (one row per detection shown: class, score,
normalized box, suspect flag, video frame; its top species and score where a classifier ran), ``summary`` (the counts ``results summary`` prints,
images and episodes) and ``info`` (detector, thresholds, episode gap, when). Every text cell goes
through ``safe_cell``: names from a camera card never become formulas. Written with openpyxl in
write-only mode (rows streamed, not held as cell objects) and saved atomically.
"""
from __future__ import annotations

import io
import time
from typing import IO, Any, Dict, Iterable, List, Optional, Union

from ssd.base.atomic import atomic_path
from ssd.base.cells import xlsx_cell
from ssd.camtrap.cameras import file_camera_rule
from ssd.camtrap.episodes import episode_ids, file_gap
from ssd.camtrap.megadetector import Threshold, image_state, shown_detections
from ssd.camtrap.results import TIME_SOURCE, has_time_source
from ssd.camtrap.species import SPECIES_COLUMNS, SPECIES_THRESHOLD, species_cells, species_names
from ssd.camtrap.summary import summarize
from ssd.inference.filtering import ShownFilter

IMAGE_COLUMNS = ["file", "episode", "datetime", "state", "classes", "max_conf", "width", "height",
                 "frames_processed", "failure", "warning"]
DETECTION_COLUMNS = ["file", "episode", "class", "conf", "x", "y", "width", "height", "suspect", "frame_number"]


def _rows_images(doc: Dict[str, Any], shown: ShownFilter, episodes: List[str],
                 time_source: bool) -> Iterable[List[Any]]:
    names = doc.get("detection_categories") or {}
    for im, ep in zip(doc.get("images", []), episodes):
        dets = shown_detections(im, shown, names=names)
        classes = sorted({names.get(d["category"], d["category"]) for d in dets})
        frames = im.get("frames_processed")
        yield [im["file"], ep, im.get("datetime") or "", image_state(im, shown, names=names), ", ".join(classes),
               max((d["conf"] for d in dets), default=None), im.get("width"), im.get("height"),
               len(frames) if isinstance(frames, list) else None, im.get("failure") or "",
               im.get("warning") or ""] + ([im.get(TIME_SOURCE) or ""] if time_source else [])


def _rows_detections(doc: Dict[str, Any], shown: ShownFilter, episodes: List[str],
                     species: Optional[Dict[str, str]] = None) -> Iterable[List[Any]]:
    """A row per detection shown; ``species`` (``species.species_names``): its top species and score last."""
    names = doc.get("detection_categories") or {}
    for im, ep in zip(doc.get("images", []), episodes):
        for d in shown_detections(im, shown, names=names):
            x, y, w, h = d["bbox"]
            yield [im["file"], ep, names.get(d["category"], d["category"]), d["conf"], x, y, w, h,
                   bool(d.get("suspect")), d.get("frame_number")] + \
                ([] if species is None else species_cells(d, species, score_text=False))


def _rows_summary(doc: Dict[str, Any], shown: ShownFilter, species_threshold: float) -> Iterable[List[Any]]:
    s = summarize(doc, shown, species_threshold=species_threshold)
    e = s["episodes"]
    yield ["", "images", "episodes"]
    for key, label in (("images", "all"), ("with_detections", "with detections"), ("empty", "empty"),
                       ("failed", "failed")):
        yield [label, s[key], e["episodes" if key == "images" else key]]
    yield ["untimed (each its own episode)", "", e["untimed"]]
    for name, n in s["per_class_images"].items():
        yield [f"class {name}", n, e["per_class"].get(name, 0)]
    if "per_species_images" in s:           # a file classified into species
        yield [f"species (classification score ≥ {s['species_threshold']:g})", "images", "detections"]
        for name, n in s["per_species_images"].items():
            yield [f"species {name}", n, s["per_species_detections"][name]]


def _rows_info(doc: Dict[str, Any], shown: ShownFilter) -> Iterable[List[Any]]:
    info = doc.get("info") or {}
    yield ["detector", info.get("detector") or ""]
    yield ["detection completion time", info.get("detection_completion_time") or ""]
    yield ["threshold", shown.threshold]
    for name, value in shown.per_class:
        yield [f"threshold for {name}", value]
    yield ["suspect repeats hidden", shown.hide_suspect]
    yield ["episode gap (s)", file_gap(doc)]
    yield ["camera folder", file_camera_rule(doc).describe()]
    yield ["exported", time.strftime("%Y-%m-%d %H:%M:%S")]


def write_xlsx(doc: Dict[str, Any], path: str, threshold: Threshold, hide_suspect: bool = True,
               image_root: Optional[str] = None, species_threshold: float = SPECIES_THRESHOLD) -> None:
    """The workbook at ``path`` (written under a temporary name, then renamed)."""
    with atomic_path(path) as tmp:
        save_xlsx(doc, tmp, threshold, hide_suspect, image_root, species_threshold)


def xlsx_bytes(doc: Dict[str, Any], threshold: Threshold, hide_suspect: bool = True,
               image_root: Optional[str] = None, species_threshold: float = SPECIES_THRESHOLD) -> bytes:
    """The workbook as bytes (the page's download button), its species counted from ``species_threshold``."""
    buf = io.BytesIO()
    save_xlsx(doc, buf, threshold, hide_suspect, image_root, species_threshold)
    return buf.getvalue()


def save_xlsx(doc: Dict[str, Any], target: Union[str, IO[bytes]], threshold: Threshold,
              hide_suspect: bool = True, image_root: Optional[str] = None,
              species_threshold: float = SPECIES_THRESHOLD) -> None:
    """Build the workbook and save it to a path or an open binary file. Entries without a time in
    the results are dated by their files under ``image_root`` as the Camtrap DP package dates them
    (``camtrap_dp.with_file_times``), and their episodes grouped by those times."""
    from openpyxl import Workbook

    from ssd.camtrap.camtrap_dp import with_file_times

    doc = with_file_times(doc, image_root)
    shown = ShownFilter.at(threshold, hide_suspect)
    episodes = episode_ids(doc)
    timed = has_time_source(doc.get("images", []))
    species = species_names(doc)
    wb = Workbook(write_only=True)
    sheets = (("images", [IMAGE_COLUMNS + [TIME_SOURCE] if timed else IMAGE_COLUMNS],
               _rows_images(doc, shown, episodes, timed)),
              ("detections", [DETECTION_COLUMNS + (SPECIES_COLUMNS if species is not None else [])],
               _rows_detections(doc, shown, episodes, species)),
              ("summary", [], _rows_summary(doc, shown, species_threshold)),
              ("info", [], _rows_info(doc, shown)))
    for title, head, rows in sheets:
        ws = wb.create_sheet(title)
        for row in head:
            ws.append(row)
        for row in rows:
            ws.append([xlsx_cell(v) for v in row])
    wb.save(target)
