"""A results file as the Camera traps page holds it: a compact record per image, the boxes of
only the images shown read back from the file.

Why: the page keeps an open file for every session of a server a lab shares. Parsed whole, a
season of 100,000 images with ~84 boxes each (every box down to the results floor) is ~4 GB;
counts, filters, episodes and the threshold sweep read of each detection only its class, score,
suspect flag and video frame, and only the 24 images of a page (or the one shown large) need their
boxes. Each record keeps every field of its entry but the detections, and each detection without
its box (a suspect repeat's kept: the repeat review groups them by place), equal ones shared
(``compact_entry``); ``in_full`` reads the entries shown back from the
file (``results_index``), with the record's own fields (a name below a path prefix, a regrouped
episode) over the file's.
"""
from __future__ import annotations

import io
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ssd.camtrap.results_index import EntryIndex, read_results_indexed
from ssd.camtrap.species import species_names, top_pair

#: What a boxless detection keeps: all the counts, filters and captions read of it but the box.
DETECTION_FIELDS = ("category", "conf", "suspect", "frame_number")


def compact_entry(entry: Dict[str, Any], shared: Dict[Any, Dict[str, Any]],
                  species: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """``entry`` with each detection reduced to ``DETECTION_FIELDS``, one dict per distinct detection
    in ``shared`` (one per file: a score, class and flag recur across thousands of images);
    ``species`` (a classified file's species classes): with its top classification alone, as
    ``classifications`` (``species.top_pair``), which the per-species counts read."""
    dets = entry.get("detections")
    if not dets:
        return entry
    out = []
    append = out.append
    for d in dets:
        if len(d) == 3 and "bbox" in d:     # the common one (category, conf, bbox): a third of the time
            cat, conf = d.get("category"), d.get("conf")
            key = (cat, conf.__class__, conf)                     # 1, 1.0 and True kept apart
            kept = shared.get(key)
            if kept is None:
                kept = shared[key] = {k: d[k] for k in DETECTION_FIELDS if k in d}
            append(kept)
            continue
        kept = {k: d[k] for k in DETECTION_FIELDS if k in d}
        if d.get("suspect") and "bbox" in d:
            kept["bbox"] = d["bbox"]        # the repeat review groups and crops the suspects by their box
        top = top_pair(d, species) if species is not None else None
        if top is not None:
            kept["classifications"] = [list(top)]
        key = tuple((k, v.__class__, tuple(map(tuple, v)) if k == "classifications" else
                     tuple(v) if k == "bbox" else v) for k, v in kept.items())
        append(shared.setdefault(key, kept))
    return {**entry, "detections": out}


def open_compact(path: str) -> Tuple[Dict[str, Any], Optional[EntryIndex]]:
    """The results file ``path`` read as it goes (checked and refused as ``read_results``), its
    ``images`` compact records in file order, and the index to read entries back (None for a file
    read whole: its records are then the entries themselves)."""
    shared: Dict[Any, Dict[str, Any]] = {}

    def keep_for(head: Dict[str, Any]):
        shared.clear()
        species = species_names(head)
        return lambda entry: compact_entry(entry, shared, species)

    doc, index = read_results_indexed(path, keep_for)
    if index is None:                   # an unusual file read whole: its entries kept, boxes included
        from ssd.camtrap.megadetector import read_results

        return read_results(path), None
    return doc, index


def in_full(doc: Dict[str, Any], index: Optional[EntryIndex], entries: Sequence[Dict[str, Any]]
            ) -> List[Dict[str, Any]]:
    """``entries`` (records of ``doc["images"]``: the file's, or a copy entry for entry in the same
    order, as ``rebase_results`` and ``regrouped`` make) as whole entries, boxes included, read back from the file; ``ResultsChanged`` when it changed."""
    if index is None:
        return list(entries)
    at = {id(im): k for k, im in enumerate(doc["images"])}
    out = []
    for e in entries:
        whole = index.entry(at[id(e)])
        out.append({**whole, **{k: v for k, v in e.items() if k != "detections"}})
    return out


def whole_entries(doc: Dict[str, Any], index: Optional[EntryIndex]) -> Iterator[Dict[str, Any]]:
    """``whole_doc``'s entries one at a time, each read back from the file as it is asked for."""
    if index is None:
        yield from doc["images"]
        return
    for k, e in enumerate(doc["images"]):
        yield {**index.entry(k), **{key: v for key, v in e.items() if key != "detections"}}


def whole_json_bytes(doc: Dict[str, Any], index: Optional[EntryIndex]) -> bytes:
    """``whole_doc`` as a results file's bytes (the page's JSON download), written an entry at a
    time into a temporary file, one compact entry a line as a batch run writes them.

    Why: the document is the file's own only without a path prefix or regrouped episodes (the
    names and episode ids the page shows are the download's); ``json.dumps(whole_doc(...))`` held
    every box of the season as Python objects (~40 KB an image of 84 boxes) and then its text.
    Here memory holds the bytes handed to the browser and one entry."""
    from ssd.camtrap.run_checkpoint import write_images_json

    with tempfile.TemporaryFile("w+b") as raw:
        fh = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        write_images_json(fh, {k: v for k, v in doc.items() if k != "images"}, whole_entries(doc, index))
        fh.flush()
        raw.seek(0)
        data = raw.read()
        fh.detach()
        return data


def results_json_bytes(doc: Dict[str, Any], index: Optional[EntryIndex], as_opened: bool) -> bytes:
    """The page's JSON download of ``doc``: the file's own bytes where ``doc`` is the document as
    opened (``as_opened``: no path prefix, no regrouped episodes; checked to be the version opened),
    nothing parsed or written again; else ``whole_json_bytes``.

    Why: the same content either way, and the file as it is takes a read (0.5 s where writing it
    again took 8 s at 20,000 images of 84 boxes) and keeps MegaDetector's own layout."""
    if as_opened and index is not None:
        return index.file_bytes()
    return whole_json_bytes(doc, index)


def whole_doc(doc: Dict[str, Any], index: Optional[EntryIndex]) -> Dict[str, Any]:
    """``doc`` with every entry whole (``in_full``): for what writes or hands on the boxes (the JSON
    and CSV downloads, the exports, a split, a cleaned file), made when asked and let go after."""
    return doc if index is None else {**doc, "images": in_full(doc, index, doc["images"])}


def shown_doc(doc: Dict[str, Any], index: Optional[EntryIndex], floor: float) -> Dict[str, Any]:
    """``doc`` with every entry read back from the file as ``whole_doc`` reads it, each keeping only its
    detections at or above ``floor`` (``results_stream.above_floor``): what the exports at a threshold
    whose lowest value is ``floor`` write (Camtrap DP, XLSX, COCO), the same bytes.

    Why: ``whole_doc`` holds every box of the season at once, ~84 an image down to the results floor
    (~4 GB at 100,000 images) to write the few a threshold shows; here each entry's other boxes are
    let go as it is read, as ``results export`` lets them go (``read_results_above``)."""
    from ssd.camtrap.results_stream import above_floor

    if index is None:
        return doc
    images = []
    for k, e in enumerate(doc["images"]):
        whole = above_floor(index.entry(k), floor)
        images.append({**whole, **{key: v for key, v in e.items() if key != "detections"}})
    return {**doc, "images": images}
