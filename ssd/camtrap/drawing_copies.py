"""Copies of a season's photos with their boxes drawn, and a gallery page: ``results draw``.

Why: before trusting a run, people look at a sample of its photos with the boxes on them
(MegaDetector's ``visualize_detector_output`` and its postprocessing preview). Each photo is
decoded as detection decoded it (``load_image``: EXIF-upright, so the normalized boxes land where
the detector put them) and drawn by the Detect page's own code (``draw_detections``, through
``browse.entry_detections``: class colours, name and score, suspect repeats apart). The copies keep
the photos' folders under the output folder; ``index.html`` shows them grouped as ``results sort``
groups them (``animal``, ``animal_person``, ``empty``), with relative links, every name escaped.
A video's frames with a box are drawn one copy each, ``CLIP.mp4_frameNNNNNN.jpg`` beside where the
clip's copy would be, each with that frame's boxes. The rules for reading and writing are
``photo_outputs``'s.
"""
from __future__ import annotations

import html
import io
import os
import urllib.parse
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ssd.base.atomic import atomic_path
from ssd.base.text import ESCAPED, escape_name
from ssd.camtrap.crops import is_output_name as is_crop_name
from ssd.camtrap.species import SPECIES_THRESHOLD, species_names
from ssd.camtrap.photo_outputs import (DEFAULT_SEED, DEFAULT_WORKERS, OnProgress, Photo, Tally, choose_photos,
                                       held_output, in_batches, make_folders, open_picture, picture_entry,
                                       refuse_shared_outputs, remove_stale_temps_under, succeeded, write_output)
from ssd.inference.filtering import ShownFilter

#: ``--width``'s default, MegaDetector's own: enough to judge a box, a tenth of a 12 MP photo's bytes.
DEFAULT_WIDTH = 1000

#: The thumbnails' width on the gallery page (the copy itself is shown, scaled by the browser).
THUMB_PX = 240

#: Thumbnails per group on the gallery page, as MegaDetector's preview samples: a page of a season's
#: million photos opens in no browser (and its list would be held until written). All are counted.
GALLERY_PER_GROUP = 1000

_KEPT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}

GALLERY_NAME = "index.html"


def copy_parts(parts: List[str]) -> List[str]:
    """Where a photo's copy goes below the output folder: its own path, ``.jpg`` added to a name
    whose format is not kept (a TIFF's copy is a JPEG) and to a name a crop may have: the page runs
    ``crops`` into the same folder, and the copy of ``x.jpg_crop001.jpg`` would stand where the
    crop of ``x.jpg``'s second box goes (that crop then skipped as there, crops.csv naming the copy)."""
    ext = os.path.splitext(parts[-1])[1].lower()
    kept = ext in _KEPT_FORMATS and not is_crop_name(parts[-1])
    return parts if kept else parts[:-1] + [parts[-1] + ".jpg"]


def output_parts(photo: Photo) -> List[str]:
    """Where a picture's copy goes: a photo's as ``copy_parts``; a video frame's is a JPEG named
    after the clip and the frame (``clip.mp4_frame000012.jpg``), beside where the clip would be."""
    if photo.frame is None:
        return copy_parts(photo.parts)
    return photo.parts[:-1] + [f"{photo.parts[-1]}_frame{photo.frame:06d}.jpg"]


def is_output_name(name: str) -> bool:
    """Whether ``draw`` may have written a file of this name: a copy (every copy is a JPEG or PNG,
    ``copy_parts``, never named as a crop) or the gallery page; never a crop's name, since the page
    runs ``crops`` into the same folder, maybe at the same time."""
    if is_crop_name(name):
        return False
    return name == GALLERY_NAME or os.path.splitext(name)[1].lower() in _KEPT_FORMATS


def drawn_copy(photo: Photo, names: Dict[str, str], shown: ShownFilter, width: Optional[int],
               species: Optional[Dict[str, str]] = None, species_threshold: float = SPECIES_THRESHOLD) -> bytes:
    """The picture, ``width`` pixels wide at most (None or 0: as it is), with its shown boxes (a
    frame's: its own), encoded in the copy's format; ``species`` (a classified file's species
    classes): a box labelled with its species (``browse.entry_detections``). ``ImageError`` for one
    that cannot be decoded."""
    from PIL import Image

    from ssd.camtrap.browse import entry_detections
    from ssd.viz.drawing import draw_detections

    img = open_picture(photo, draft_to=width or None)
    if width and img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.Resampling.LANCZOS)
    drawn = draw_detections(img, entry_detections(picture_entry(photo), names, shown, shown.hide_suspect, img.size,
                                                  species, species_threshold))
    fmt = _KEPT_FORMATS.get(os.path.splitext(output_parts(photo)[-1])[1].lower(), "JPEG")
    buf = io.BytesIO()
    drawn.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def draw_copies(doc: Dict[str, Any], image_root: str, out: str, shown: ShownFilter,
                sample: Optional[int] = None, seed: int = DEFAULT_SEED, width: Optional[int] = DEFAULT_WIDTH,
                workers: int = DEFAULT_WORKERS, progress: OnProgress = None,
                species_threshold: float = SPECIES_THRESHOLD) -> Tally:
    """Write a drawn copy of each chosen photo under ``out`` and ``out/index.html``; what was done.
    A classified file's boxes are labelled with their species scoring at least ``species_threshold``.

    ``shown``: what counts as a detection (threshold, per-class thresholds, suspects, and
    ``classes``: only photos showing one of them). ``sample``: that many photos at random
    (``seed``). A copy already there is skipped (a stopped run is resumed); the page lists it too.
    """
    from ssd.camtrap.sorting import folder_for

    tally = Tally()
    names = doc.get("detection_categories") or {}
    species = species_names(doc)
    photos = choose_photos(doc, image_root, out, shown, tally, lambda p: [output_parts(p), [GALLERY_NAME]],
                           sample, seed)
    refuse_shared_outputs(photos, output_parts, "drawn")
    target, made = os.path.realpath(out), set()
    os.makedirs(target, exist_ok=True)
    with held_output(target, "draw"):
        tally.stale = remove_stale_temps_under(target, image_root, is_output_name)
        groups: Dict[str, List[Tuple[str, str]]] = {}
        counts: Dict[str, int] = {}

        def work(photo: Photo) -> bool:
            dest = os.path.join(target, *output_parts(photo))
            if os.path.lexists(dest):
                return False
            write_output(dest, drawn_copy(photo, names, shown, width, species, species_threshold))
            return True

        def before(batch: Sequence[Photo]) -> None:
            make_folders(target, (tuple(output_parts(p)[:-1]) for p in batch), made)

        for photo, outcome in succeeded(in_batches(photos, work, before, workers, progress), tally):
            tally.written += outcome is True
            tally.skipped += outcome is False
            group = folder_for(photo.entry, names, shown, shown.hide_suspect)
            counts[group] = counts.get(group, 0) + 1
            if counts[group] <= GALLERY_PER_GROUP:
                groups.setdefault(group, []).append(("/".join(output_parts(photo)), _caption(photo)))
        with atomic_path(os.path.join(target, GALLERY_NAME)) as tmp, \
                open(tmp, "w", encoding="utf-8", errors=ESCAPED) as fh:
            fh.write(gallery_html(groups, counts, list(names.values()), tally))
        return tally


def gallery_html(groups: Dict[str, List[Tuple[str, str]]], counts: Dict[str, int], order: Sequence[str],
                 tally: Tally) -> str:
    """A self-contained page: a section per group (``animal``, ``animal_person``, …, ``empty`` last),
    each a grid of linked thumbnails (the first ``GALLERY_PER_GROUP``; ``counts``: all the group's). Links
    are relative and percent-encoded; every name is escaped (a results file may name a photo ``<script>…``)."""
    def rank(group: str) -> Tuple[int, int, str]:
        first = group.split("_")[0]
        return (group == "empty", order.index(first) if first in order else len(order), group)

    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Detections</title><style>"
             "body{font-family:sans-serif;margin:1em}figure{display:inline-block;margin:4px;width:"
             f"{THUMB_PX}px;vertical-align:top}}img{{width:{THUMB_PX}px}}figcaption{{font-size:80%;"
             "overflow-wrap:anywhere}</style></head><body><h1>Detections</h1>",
             "<p>" + html.escape(" · ".join(tally.lines("Copies")), quote=True) + "</p>", "<ul>"]
    ranked = sorted(groups, key=rank)
    parts += [f"<li><a href='#{_anchor(g)}'>{html.escape(g)}</a> ({counts[g]})</li>" for g in ranked]
    parts.append("</ul>")
    for g in ranked:
        parts.append(f"<h2 id='{_anchor(g)}'>{html.escape(g)} ({counts[g]})</h2>")
        for link, name in groups[g]:
            # a name that is not UTF-8 holds lone surrogates: the link carries its bytes (%FF), the
            # caption its escaped form (\xff), as the results and tables name it
            href = html.escape(urllib.parse.quote(link, errors="surrogateescape"), quote=True)
            label = html.escape(escape_name(name), quote=True)
            parts.append(f"<figure><a href='{href}'><img loading='lazy' src='{href}' alt='{label}'></a>"
                         f"<figcaption>{label}</figcaption></figure>")
        if counts[g] > len(groups[g]):
            parts.append(f"<p>{counts[g] - len(groups[g])} more in the folder (or draw a --sample).</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _caption(photo: Photo) -> str:
    """A thumbnail's caption: the file's name, and for a video the frame shown."""
    return photo.entry["file"] if photo.frame is None else f"{photo.entry['file']} (frame {photo.frame})"


def _anchor(group: str) -> str:
    return "g-" + urllib.parse.quote(group, safe="")
