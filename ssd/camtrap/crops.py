"""One JPEG per detection, and ``crops.csv``: ``results crops``, to train a species classifier.

Why: the detector finds animals; telling which species is a second model trained on the animals
cut out (MegaDetector's ``create_crop_folder``, AddaxAI's "crop detections"). Each crop is cut from
the photo decoded as detection decoded it (``load_image``: EXIF-upright, full size), so the
normalized box covers what the detector saw. A crop keeps its photo's folder and is named after it
and the detection's place in the entry (``IMG_1.JPG_crop002.jpg``), the same at any threshold, so
runs at other thresholds into one folder agree. ``crops.csv`` lists every crop (new or already
there) with its photo, class, score and box in pixels, each cell guarded against formulas. A
video's boxes are cut from the frame each was found in (``frame``: its number; empty for a photo),
named by their place in the entry as a photo's are. The rules for reading and writing are
``photo_outputs``'s.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from ssd.base.atomic import atomic_path
from ssd.base.cells import CsvWriter, safe_cell
from ssd.base.text import ESCAPED, escape_name
from ssd.camtrap.species import SPECIES_COLUMNS, species_cells, species_names
from ssd.camtrap.photo_outputs import (DEFAULT_WORKERS, OnProgress, Photo, Tally, choose_photos, held_output,
                                       in_batches, make_folders, on_picture, open_picture, refuse_shared_outputs,
                                       remove_stale_temps_under, succeeded, upright_size, write_output)
from ssd.inference.filtering import ShownFilter

#: ``--margin``'s default: the box itself (a classifier's own training decides how much context helps).
DEFAULT_MARGIN = 0.0

#: ``--min-size``'s default: every box (MegaDetector's crops keep every box above the threshold).
DEFAULT_MIN_SIZE = 0

CSV_NAME = "crops.csv"
#: ``frame`` last, so that readers of the columns before it by position still read them.
CSV_HEADER = ("crop", "image", "class", "score", "x_min", "y_min", "x_max", "y_max", "frame")

Box = Tuple[int, int, int, int]

#: Where a kept detection stood in its entry's list, for a reader that let the boxes below the
#: threshold go (``placed_above``): a crop's name is its box's place in the whole list.
PLACE = "_place"


#: Every name ``crop_name`` gives.
_CROP_NAME = re.compile(r".+_crop[0-9]{3,}\.jpg", re.DOTALL)


def is_output_name(name: str) -> bool:
    """Whether ``crops`` may have written a file of this name: a crop or ``crops.csv``."""
    return name == CSV_NAME or _CROP_NAME.fullmatch(name) is not None


def crop_name(parts: List[str], index: int) -> List[str]:
    """A crop's place below the output folder: its photo's folder, ``NAME_cropNNN.jpg`` (``index``:
    the detection's place in the entry, so two runs name a box alike)."""
    return parts[:-1] + [f"{parts[-1]}_crop{index:03d}.jpg"]


def pixel_box(bbox: Sequence[float], size: Tuple[int, int]) -> Box:
    """A normalized ``[x, y, w, h]`` box as whole pixels ``(x0, y0, x1, y1)`` inside ``size``."""
    w, h = size
    x, y, bw, bh = (float(v) for v in bbox)
    return (_clip(round(x * w), w), _clip(round(y * h), h),
            _clip(round((x + bw) * w), w), _clip(round((y + bh) * h), h))


def crop_region(box: Box, size: Tuple[int, int], margin: float = DEFAULT_MARGIN, square: bool = False) -> Box:
    """The region cut for ``box``: ``margin`` of its width and height added on each side, made
    square (its longer side) when asked, around the box's centre, kept inside the photo."""
    x0, y0, x1, y1 = box
    bw, bh = (x1 - x0) * (1 + 2 * margin), (y1 - y0) * (1 + 2 * margin)
    if square:
        bw = bh = max(bw, bh)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = size
    return (_clip(round(cx - bw / 2), w), _clip(round(cy - bh / 2), h),
            _clip(round(cx + bw / 2), w), _clip(round(cy + bh / 2), h))


def _clip(v: int, top: int) -> int:
    return max(0, min(int(v), top))


def placed_above(entry: Dict[str, Any], floor: float) -> Dict[str, Any]:
    """``entry`` with only its detections at or above ``floor``, each noting its place (``PLACE``).

    Why: a season's entries hold ~84 boxes each down to the results floor; a crop run holds the
    few a threshold can show, yet names each crop by its box's place in the whole list."""
    dets = entry.get("detections")
    if not dets:
        return entry
    return {**entry, "detections": [dict(d, **{PLACE: k}) for k, d in enumerate(dets) if isinstance(d, dict) and
                                    not (d.get("conf").__class__ is float and d["conf"] < floor)]}


def _shown_boxes(photo: Photo, names: Dict[str, str], shown: ShownFilter) -> List[Tuple[int, Dict[str, Any]]]:
    """The entry's shown detections on the photo's picture (a video's: its frame's) with their
    place in the entry's list."""
    dets = photo.entry.get("detections") or []
    keep = {id(d) for d in shown.entry_detections(photo.entry, names)}
    return [(d.get(PLACE, k), d) for k, d in enumerate(dets) if id(d) in keep and on_picture(photo, d)]


Crop = Tuple[List[str], Dict[str, Any], Box]        # (its parts below the output folder, detection, pixel box)


def _crops_of(photo: Photo, names: Dict[str, str], shown: ShownFilter, size: Tuple[int, int], min_size: int
              ) -> Tuple[List[Crop], int, int]:
    """The photo's shown boxes at least ``min_size`` wide and high, how many were smaller, and how
    many had no area in the photo (no pixel wide or high once kept inside it: told apart, since a
    box of zero or negative size, or outside the photo, is no matter of ``--min-size``)."""
    crops, small, empty = [], 0, 0
    for k, d in _shown_boxes(photo, names, shown):
        box = pixel_box(d["bbox"], size)
        wide, high = box[2] - box[0], box[3] - box[1]
        if wide < 1 or high < 1:
            empty += 1
        elif wide >= min_size and high >= min_size:
            crops.append((crop_name(photo.parts, k), d, box))
        else:
            small += 1
    return crops, small, empty


@dataclass
class PhotoCrops:
    """What cutting one photo's crops did: crops written and already there, every crop (for its
    CSV row), boxes too small to cut, and boxes with no area in the photo."""

    written: int
    skipped: int
    crops: List[Crop]
    small: int
    empty: int = 0


def cut_crops(photo: Photo, target: str, names: Dict[str, str], shown: ShownFilter, margin: float, square: bool,
              min_size: int) -> PhotoCrops:
    """Write the photo's crops not yet under ``target``. A photo is decoded only when one of its
    crops is missing; a video's frame always (its upright size is the decoded frame's: the
    container's rotation is applied in decoding). ``ImageError`` when it cannot be."""
    img = open_picture(photo) if photo.frame is not None else None
    size = img.size if img is not None else upright_size(photo.path)
    crops, small, empty = _crops_of(photo, names, shown, size, min_size)
    todo = [c for c in crops if not os.path.lexists(os.path.join(target, *c[0]))]
    if todo:
        img = img if img is not None else open_picture(photo)
        for parts, _, box in todo:
            buf = io.BytesIO()
            img.crop(crop_region(box, img.size, margin, square)).save(buf, format="JPEG", quality=95)
            write_output(os.path.join(target, *parts), buf.getvalue())
    return PhotoCrops(len(todo), len(crops) - len(todo), crops, small, empty)


def write_crops(doc: Dict[str, Any], image_root: str, out: str, shown: ShownFilter,
                margin: float = DEFAULT_MARGIN, square: bool = False, min_size: int = DEFAULT_MIN_SIZE,
                workers: int = DEFAULT_WORKERS, progress: OnProgress = None) -> Tally:
    """Cut every shown detection of the photos in ``doc`` into a JPEG under ``out``, and write
    ``out/crops.csv``; the tally counts crops (written, skipped) and photos (problems). A file
    classified into species gives each row its top species and score (``species.SPECIES_COLUMNS``)."""
    tally = Tally()
    names = doc.get("detection_categories") or {}
    species = species_names(doc)
    target = os.path.realpath(out)
    photos = choose_photos(doc, image_root, out, shown, tally, lambda p: [
        crop_name(p.parts, k) for k, _ in _shown_boxes(p, names, shown)] + [[CSV_NAME]])
    refuse_shared_outputs(photos, lambda p: p.parts, "cropped")     # a crop's name is its photo's and a suffix
    os.makedirs(target, exist_ok=True)
    with held_output(target, "crops"):
        tally.stale = remove_stale_temps_under(target, image_root, is_output_name)
        made: set = set()

        def work(photo: Photo) -> PhotoCrops:
            return cut_crops(photo, target, names, shown, margin, square, min_size)

        def before(batch: Sequence[Photo]) -> None:
            make_folders(target, (tuple(p.parts[:-1]) for p in batch if _shown_boxes(p, names, shown)), made)

        # the rows are written as the photos come (a season's crops are millions of rows), the file
        # appearing whole at the end
        with atomic_path(os.path.join(target, CSV_NAME)) as tmp, \
                open(tmp, "w", encoding="utf-8", errors=ESCAPED, newline="") as fh:
            writer = CsvWriter(fh)
            writer.writerow(list(CSV_HEADER) + (SPECIES_COLUMNS if species is not None else []))
            for photo, outcome in succeeded(in_batches(photos, work, before, workers, progress), tally):
                tally.written += outcome.written
                tally.skipped += outcome.skipped
                tally.small += outcome.small
                tally.empty += outcome.empty
                for parts, d, box in outcome.crops:
                    cat = str(d.get("category"))
                    frame = "" if photo.frame is None else photo.frame
                    # names that are not UTF-8 (lone surrogates) as every table writes them: ``\xff``
                    cells = [escape_name("/".join(parts)), escape_name(photo.entry["file"]),
                             escape_name(names.get(cat, cat)), float(d["conf"]), *box, frame]
                    if species is not None:
                        name, score = species_cells(d, species)
                        cells += [escape_name(name), score]
                    writer.writerow([safe_cell(c) for c in cells])
        return tally
