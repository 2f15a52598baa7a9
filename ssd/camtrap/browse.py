"""Browsing a batch's results: filter the images, page through them, draw their boxes.

What the "Camera traps" page shows is computed here, so the page only lays it out: which
images pass the filters (class, confidence, empty / non-empty / failed / suspect), one page of
them, and a picture of one with its boxes. Pictures are decoded with ``load_image`` (safe,
JPEG draft-scaled to the size shown), and a results file is untrusted: an image path that leaves
its folder is not opened.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ssd.base.text import name_on_disk
from ssd.inference.detector import RawDetections
from ssd.camtrap.megadetector import Threshold, image_state, is_cut_short, shown_detections
from ssd.camtrap.species import SPECIES_THRESHOLD, top_classification
from ssd.inference.filtering import ShownFilter

STATES = ("all", "with detections", "empty", "failed", "suspect", "cut short")
PAGE_SIZE = 24


def filter_entries(doc: Dict[str, Any], threshold: Threshold, classes: Optional[Sequence[str]] = None,
                   state: str = "all", hide_suspect: bool = True) -> List[Dict[str, Any]]:
    """The images passing the filters, in file order.

    ``threshold``: a number or a ``ShownFilter`` (per-class thresholds).
    ``classes``: keep images with a shown detection of one of these names (None: any).
    ``state``: one of ``STATES``; ``suspect`` keeps images with a flagged repeat ≥ ``threshold``;
    ``cut short`` the videos that ended before their header said (``video.cut_short``).
    """
    names = doc.get("detection_categories") or {}
    shown = ShownFilter.at(threshold, hide_suspect)
    of_class = None if classes is None else dataclasses.replace(shown, classes=frozenset(classes))
    out = []
    for im in doc.get("images", []):
        if state == "suspect":
            if not any(d.get("suspect") and d.get("conf", 0) >= shown.threshold_of(names.get(d.get("category"), ""))
                       for d in im.get("detections") or []):
                continue
        elif state == "with detections" and image_state(im, shown, names=names) != "detections":
            continue
        elif state in ("empty", "failed") and image_state(im, shown, names=names) != state:
            continue
        elif state == "cut short" and not is_cut_short(im):
            continue
        if of_class is not None and not of_class.entry_detections(im, names):
            continue
        out.append(im)
    return out


def split_failures(entries: Sequence[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """``(entries with a picture to show, entries that could not be processed)``, each in order.

    Why apart: a failure's reason is a sentence (a decoder's message), which in a thumbnail
    grid's cell pushes the columns out of line; failures read better as a list of their own."""
    readable, failed = [], []
    for entry in entries:
        (failed if entry.get("failure") else readable).append(entry)
    return readable, failed


def name_and_folder(file: str) -> Tuple[str, str]:
    """A results entry's file name and the folder it is in (``""`` at the top): a grid labels a
    thumbnail with the name and tells the folder on hover (``site/cam3/`` repeated on every
    button hid the names)."""
    folder, _, name = file.replace("\\", "/").rpartition("/")     # "\\": written on Windows
    return name, folder


def failure_rows(failed: Sequence[Dict[str, Any]]) -> List[Dict[str, str]]:
    """The failures as table rows: file name, folder, reason."""
    return [dict(zip(("file", "folder"), name_and_folder(e["file"])), reason=str(e.get("failure"))) for e in failed]


def detection_rows(entry: Dict[str, Any], names: Dict[str, str], shown: ShownFilter) -> List[Dict[str, Any]]:
    """The large view's table: the detections ``shown`` keeps, the very boxes drawn on the picture
    (a table listing every detection down to the results' floor contradicted the slider)."""
    return [{"class": names.get(str(d.get("category")), str(d.get("category"))), "conf": d.get("conf"),
             "bbox": str(d.get("bbox")), "suspect": bool(d.get("suspect"))}
            for d in shown_detections(entry, shown, shown.hide_suspect, names)]


def page_of(items: Sequence[Any], page: int, per_page: int = PAGE_SIZE) -> List[Any]:
    """Items of 1-based ``page`` (clamped to the pages there are)."""
    pages = max(1, -(-len(items) // per_page))
    page = min(max(1, int(page)), pages)
    return list(items[(page - 1) * per_page: page * per_page])


def page_count(n: int, per_page: int = PAGE_SIZE) -> int:
    return max(1, -(-n // per_page))


def image_path(entry: Dict[str, Any], image_root: Optional[str]) -> Optional[str]:
    """Where an entry's image is on disk; None when it would lie outside ``image_root``.

    With a root, relative and absolute names alike must stay inside it (a results file from
    elsewhere must not make the app show arbitrary files); without one, only absolute names open.
    ``\\`` is a folder separator first (results written on Windows), then, when no such file
    exists, part of the name (a Linux name may hold one).
    """
    file = name_on_disk(entry["file"])          # a name that is not UTF-8 is written escaped
    paths = [_inside(f, image_root) for f in dict.fromkeys((file.replace("\\", "/"), file))]
    return next((p for p in paths if p and os.path.isfile(p)), paths[0])


def _inside(file: str, image_root: Optional[str]) -> Optional[str]:
    if not image_root:
        return file if os.path.isabs(file) else None
    root = os.path.realpath(image_root)
    path = os.path.realpath(os.path.join(root, file))
    return path if path.startswith(root + os.sep) else None


def entry_detections(entry: Dict[str, Any], names: Dict[str, str], threshold: Threshold, hide_suspect: bool,
                     size, species: Optional[Dict[str, str]] = None,
                     species_threshold: float = SPECIES_THRESHOLD) -> RawDetections:
    """An entry's shown detections as ``RawDetections`` in ``size`` pixels, for the drawing code.

    Suspect repeats (when shown) get a class of their own, "<name> (suspect)", so they are drawn
    in another colour and say what they are. ``species`` (a classified file's species classes): a
    detection whose top species scores at least ``species_threshold`` is labelled with it instead.
    """
    order = list(names)
    classes = [names[k] for k in order] + [f"{names[k]} (suspect)" for k in order]
    dets = shown_detections(entry, threshold, hide_suspect, names)
    if "frames_processed" in entry:       # a video: only the boxes seen in the frame shown
        from ssd.camtrap.video import shown_frame

        frame = shown_frame(entry)
        dets = [d for d in dets if d.get("frame_number", frame) == frame]
    w, h = size
    boxes = np.array([[d["bbox"][0] * w, d["bbox"][1] * h, (d["bbox"][0] + d["bbox"][2]) * w,
                       (d["bbox"][1] + d["bbox"][3]) * h] for d in dets], dtype=np.float32).reshape(-1, 4)
    ids = np.array([(order.index(d["category"]) if d["category"] in order else 0)
                    + (len(order) if d.get("suspect") else 0) for d in dets], dtype=np.int64)
    if species is not None:
        ids = _species_ids(dets, ids, classes, species, species_threshold)
    scores = np.array([d["conf"] for d in dets], dtype=np.float32)
    return RawDetections(ids, scores, boxes, (w, h), classes or ["object"], entry["file"])


def _species_ids(dets: List[Dict[str, Any]], ids: np.ndarray, classes: List[str], species: Dict[str, str],
                 species_threshold: float) -> np.ndarray:
    """``ids`` with each detection that is no suspect and whose top species scores at least
    ``species_threshold`` moved to that species' class, appended to ``classes`` once."""
    out = ids.copy()
    for i, d in enumerate(dets):
        top = top_classification(d, species)
        if d.get("suspect") or top is None or top[1] < species_threshold:
            continue
        if top[0] not in classes:
            classes.append(top[0])
        out[i] = classes.index(top[0])
    return out


def open_picture(entry: Dict[str, Any], image_root: Optional[str], side: int = 320,
                 frame: Optional[int] = None) -> Optional[Image.Image]:
    """The entry's image (a video's best frame, or ``frame``) at about ``side`` pixels; None when
    it cannot be opened or lies outside ``image_root``."""
    from ssd.base.errors import ImageError
    from ssd.camtrap.video import is_video, read_frame, shown_frame
    from ssd.data.images import load_image

    path = image_path(entry, image_root)
    if path is None or not os.path.isfile(path):
        return None
    if is_video(entry["file"]):
        img = read_frame(path, shown_frame(entry) if frame is None else int(frame))
        if img is None:
            return None
    else:
        try:
            img = load_image(path, entry["file"], draft_to=side).image
        except ImageError:
            return None
    img.thumbnail((side, side))
    return img


def picture(entry: Dict[str, Any], names: Dict[str, str], image_root: Optional[str], threshold: Threshold,
            hide_suspect: bool = True, side: int = 320) -> Optional[Image.Image]:
    """The image at about ``side`` pixels with its shown boxes; None when it cannot be opened."""
    from ssd.viz.drawing import draw_detections

    img = open_picture(entry, image_root, side)
    if img is None:
        return None
    return draw_detections(img, entry_detections(entry, names, threshold, hide_suspect, img.size))


def crop(entry: Dict[str, Any], detection: Dict[str, Any], image_root: Optional[str],
         side: int = 160) -> Optional[Image.Image]:
    """The region of one detection (with a margin of half its size) at about ``side`` pixels, for
    the repeat review's grid; None when the image cannot be opened."""
    number = detection.get("frame_number")
    img = open_picture(entry, image_root, 4 * side, number if isinstance(number, int) else None)
    if img is None:
        return None
    w, h = img.size
    x, y, bw, bh = (float(v) for v in detection["bbox"])
    box = (max(0.0, x - bw / 2) * w, max(0.0, y - bh / 2) * h, min(1.0, x + 1.5 * bw) * w, min(1.0, y + 1.5 * bh) * h)
    region = img.crop(tuple(int(round(v)) for v in box)) if box[2] - box[0] >= 1 and box[3] - box[1] >= 1 else img
    region.thumbnail((side, side))
    return region


def picture_caption(entry: Dict[str, Any], names: Dict[str, str], threshold: Threshold,
                    hide_suspect: bool = True) -> str:
    """What ``picture`` draws, in words ("2 animal, 1 person"): its caption, so the boxes are not
    told by colour and sight alone."""
    from ssd.viz.drawing import boxes_summary

    return boxes_summary(entry_detections(entry, names, threshold, hide_suspect, (1, 1)))
