"""Camtrap DP 1.0 (1.0.2): the TDWG camera-trap data package that GBIF and other data platforms ingest.

A package is a folder: ``datapackage.json`` (who, what, where, when; the profile and table-schema
URLs of Camtrap DP 1.0) and three CSV tables. From a results file:

* **deployments.csv**: one deployment per camera folder (``siteA/cam1``; ``cameras``: day folders
  and card-overflow folders below it belong to it, or the first N folder levels with
  ``--camera-depth``, as the results record), from its first to its last media time stamp. Camtrap DP requires each deployment's latitude and longitude; the results
  do not know them, so they come from ``locations`` (a CSV per folder) or one default position,
  and a deployment without any is refused with its name (never invented).
* **media.csv**: every file that was processed (failures left out), its path relative to the
  images folder, media type and time stamp: the EXIF time in the camera's UTC offset (given;
  camera clocks keep none), from the results or else from the image itself (MegaDetector writes
  none unless asked; a video's from its container, ``video_time``, noted in ``mediaComments``),
  else the file's modification time when the file can be found (noted
  in ``mediaComments``), else the file is left out and counted.
* **observations.csv**: one media-level observation per detection shown at the thresholds
  (per-class thresholds count; suspect repeats are left out when hidden), with its box, score,
  model (``classifiedBy``) and episode (``eventID``, ``eventStart``/``eventEnd``: the burst it
  belongs to, to the end of its last video's frames); a media file with no detection shown gets one ``blank`` observation. Class names
  become ``observationType`` ``human`` or ``vehicle`` when they say so, else ``animal``; the class
  name itself is kept in ``observationTags`` (``class:red fox``). With a taxa CSV (``taxa``), a class
  given a scientific name gets it (``animal``; ``human`` for Homo sapiens), and ``taxonomic`` lists them.

The model, the thresholds, the episode gap and the camera rule are recorded in ``datapackage.json`` (``ssdStudio``).
Every text cell goes through ``safe_cell`` (no formula when a table is opened in a spreadsheet).
Column order follows the vendored table schemas (``schemas/camtrap-dp-1.0.2``: Camtrap DP 1.0's
current patch release; its README says why not the ``1.0`` tag's profile, whose broken JSON pointer
current validators cannot resolve).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import math
import mimetypes
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.cells import CsvWriter, safe_cell
from ssd.base.safe_paths import PathRefused, relative_inside
from ssd.base.text import ESCAPED
from ssd.camtrap.cameras import CameraRule, file_camera_rule
from ssd.camtrap.episodes import episode_ids, file_gap, parse_time
from ssd.camtrap.locations import read_locations  # noqa: F401 - the pages and the CLI import it from here
from ssd.camtrap.megadetector import ResultsError, Threshold, is_failed, shown_detections
from ssd.camtrap.package_folder import DESCRIPTOR, OUR_BLOCK, PACKAGE_TABLES as TABLES, check_package_folder
from ssd.camtrap.rebase import recorded_folder_hint
from ssd.camtrap.results import TIME_SOURCE
from ssd.camtrap.species import SPECIES_THRESHOLD, classifier_name, species_names, taxonomy_name, top_pair
from ssd.camtrap.taxa import (CLASS_TAG, SPECIES_TAG, SUSPECT_TAG, Taxa, by_class, class_key, taxa_report,
                              taxon_fields, taxonomic)
from ssd.camtrap.video import is_video
from ssd.data.exif import exif_datetime
from ssd.data.video_time import recorded_time
from ssd.inference.filtering import ShownFilter

VERSION = "1.0.2"        # the current patch release of Camtrap DP 1.0 (schemas/camtrap-dp-1.0.2/README.md says why)
BASE_URL = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}"
PROFILE_URL = f"{BASE_URL}/camtrap-dp-profile.json"
SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas", f"camtrap-dp-{VERSION}")
SAMPLING_DESIGNS = ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted",
                    "opportunistic")
_HUMAN = {"person", "people", "human", "humans"}
_VEHICLE = {"vehicle", "vehicles", "car", "truck", "bus", "motorcycle", "motorbike", "bicycle", "train", "boat",
            "airplane", "aeroplane"}
MAX_CLIP_S = 7 * 86400        # a longer clip (by its frames and rate) is a damaged header: its event is not stretched
#: The media types of what a run reads, fixed: ``mimetypes`` consults the machine's own table, and
#: where that lacks ``.mkv``, ``.flv`` or ``.webp`` (Python's built-in one does) the file was called a JPEG.
MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp",
               ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff", ".gif": "image/gif",
               ".heic": "image/heic", ".heif": "image/heif", ".hif": "image/heif", ".avif": "image/avif",
               ".mp4": "video/mp4", ".avi": "video/x-msvideo", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
               ".mpeg": "video/mpeg", ".mpg": "video/mpeg", ".flv": "video/x-flv"}


@dataclass
class PackageOptions:
    """What the results cannot say: where the cameras were, their clocks' UTC offset, who and what."""

    title: str = "Camera-trap detections"
    contributor: str = "SSD Studio export"
    utc_offset: str = "+00:00"
    locations: Dict[str, Tuple[float, float]] = field(default_factory=dict)   # folder → (latitude, longitude)
    default_location: Optional[Tuple[float, float]] = None
    image_root: Optional[str] = None
    sampling_design: str = "opportunistic"
    taxa: Taxa = field(default_factory=dict)        # class → scientific name (``read_taxa``); none: classes as tags only
    images_term: str = "--images"        # how a refusal names the image_root setting (a flag, or the page's field)
    species_threshold: float = SPECIES_THRESHOLD    # a classified file: the score at which a species is observed


def columns(table: str) -> List[str]:
    """A table's columns, in the order of its vendored Camtrap DP 1.0 schema."""
    with open(os.path.join(SCHEMA_DIR, f"{table}-table-schema.json"), encoding="utf-8") as fh:
        return [f["name"] for f in json.load(fh)["fields"]]


def check_offset(text: str) -> dt.timezone:
    """``+02:00`` / ``-0500`` / ``Z`` → a fixed time zone (``ResultsError`` otherwise)."""
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", text.strip()) if text.strip() not in ("Z", "z") else None
    if text.strip() in ("Z", "z"):
        return dt.timezone.utc
    if not m or int(m.group(2)) > 14 or int(m.group(3)) > 59:
        raise ResultsError(f"UTC offset {text!r}: give it as +HH:MM or -HH:MM (e.g. +02:00), or Z")
    sign = 1 if m.group(1) == "+" else -1
    return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


def deployment_of(file: str, rule: Optional[CameraRule] = None) -> str:
    """The deployment (camera folder, ``rule`` default automatic) of a file; ``.`` for files whose
    camera is the images folder itself."""
    return (rule or _AUTOMATIC).camera_of(file) or "."


_AUTOMATIC = CameraRule()


def observation_type(class_name: str) -> str:
    """Camtrap DP's ``observationType`` for a detector class (see the module docstring)."""
    name = str(class_name).strip().lower()
    return "human" if name in _HUMAN else "vehicle" if name in _VEHICLE else "animal"


def media_type(path: str) -> str:
    """``fileMediatype``: from ``MEDIA_TYPES`` by extension, else the system's guess, else a JPEG."""
    ext = os.path.splitext(path)[1].lower()
    return MEDIA_TYPES.get(ext) or mimetypes.guess_type(path)[0] or "image/jpeg"


def _timestamp(entry: Dict[str, Any], tz: dt.timezone,
               image_root: Optional[str]) -> Tuple[Optional[str], str, bool]:
    """(ISO time stamp with offset, comment, whether it is the EXIF time read from the image now): the
    results' EXIF time, else the image's own (MegaDetector writes none unless asked: its files' photos
    were dated by their copy time), else the file's modification time, else None."""
    t = parse_time(entry.get("datetime"))
    if t is not None:
        return dt.datetime.utcfromtimestamp(t).replace(tzinfo=tz).isoformat(), _source(entry.get("datetime_source")), False
    path, when, source = _read_time(entry["file"], image_root)
    t = parse_time(when)
    if t is not None:
        return dt.datetime.utcfromtimestamp(t).replace(tzinfo=tz).isoformat(), _source(source), True
    if path and os.path.isfile(path):
        when = dt.datetime.fromtimestamp(int(os.path.getmtime(path)), tz)
        return when.isoformat(), "timestamp from file modification time", False
    return None, "", False


def with_file_times(doc: Dict[str, Any], image_root: Optional[str]) -> Dict[str, Any]:
    """``doc`` with each entry that gave detections but has no time in the results dated by what its
    file under ``image_root`` carries (a photo's EXIF, a video's container), read as the package reads
    it (``_read_time``); never by a modification time (a copy's time), never outside
    ``image_root``. The entries are copies; ``doc`` is not changed.

    Why: MegaDetector writes no times unless asked. The package read them from the photos, the
    workbook (``spreadsheet``) of the same results left its time column empty and made each photo an
    episode of its own: now both read them here."""
    if not image_root:                          # no folder to read inside: nothing is read
        return doc
    images = []
    for im in doc.get("images", []):
        if im.get("failure") is None and im.get("detections") is not None and parse_time(im.get("datetime")) is None:
            _, when, source = _read_time(im["file"], image_root)
            if parse_time(when) is not None:
                im = dict(im, datetime=when, **({TIME_SOURCE: source} if source else {}))
        images.append(im)
    return dict(doc, images=images)


def _read_time(file: str, image_root: Optional[str]) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(where the results name ``file`` is here, the time stamp its file carries, that time's source),
    the last two None when the file is not found inside ``image_root`` (``_local_file``)."""
    path = _local_file(file, image_root)
    return (path, *_file_time(path)) if path and os.path.isfile(path) else (path, None, None)


def _file_time(path: str) -> Tuple[Optional[str], Optional[str]]:
    """(time stamp, source) a file carries: a video's from its container (``video_time``: the
    recording time, as a photo's EXIF is; none for a clip whose container has none), else EXIF."""
    if is_video(path):
        return recorded_time(path) or (None, None)
    return exif_datetime(path), None


def _source(source: Any) -> str:
    """``mediaComments`` for a time that is not a photo's EXIF (a video container's field)."""
    return f"timestamp recorded in the video ({source})" if isinstance(source, str) and source else ""


def _local_file(file: str, image_root: Optional[str]) -> Optional[str]:
    """Where a results name is on this machine: ``\\`` read as a folder separator (as sorting does; files
    written on Windows have them); with ``image_root``, relative and absolute names alike inside it
    only, links resolved (None otherwise: a results file must not make the export read other files)."""
    norm = file.replace("\\", "/")
    if not image_root:
        return norm
    try:
        return os.path.join(os.path.realpath(image_root), *relative_inside(image_root, norm))
    except PathRefused:
        return None


def _media_path(file: str, image_root: Optional[str]) -> Optional[str]:
    """A relative path Camtrap DP accepts (no leading ``/ . ~``, no ``..``), else None."""
    rel = file
    if os.path.isabs(file) and image_root:
        rel = os.path.relpath(file, image_root)
    rel = rel.replace("\\", "/")
    return None if (not rel or rel[0] in "./~" or ".." in rel.split("/")) else rel


@dataclass
class _Tables:
    media: List[Dict[str, Any]] = field(default_factory=list)
    observations: List[Dict[str, Any]] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    times: Dict[str, List[str]] = field(default_factory=dict)     # deployment → media time stamps
    ends: Dict[str, List[str]] = field(default_factory=dict)      # deployment → media ends (``_media_end``)
    read_times: Dict[int, str] = field(default_factory=dict)      # entry → EXIF time read from the image


def _media_rows(doc: Dict[str, Any], opts: PackageOptions,
                tz: dt.timezone) -> Tuple[_Tables, Dict[int, Tuple[str, str]]]:
    """media.csv rows, and each kept entry's (time stamp, mediaID) by position."""
    tables, stamps = _Tables(), {}
    rule = file_camera_rule(doc)
    for k, im in enumerate(doc.get("images", [])):
        if im.get("failure") is not None or im.get("detections") is None:
            continue
        stamp, comment, read = _timestamp(im, tz, opts.image_root)
        path = _media_path(im["file"], opts.image_root)
        if stamp is None or path is None:
            tables.skipped.append(im["file"])
            continue
        stamps[k] = (stamp, path)
        if read:
            tables.read_times[k] = stamp
        dep = deployment_of(im["file"], rule)
        tables.times.setdefault(dep, []).append(stamp)
        tables.ends.setdefault(dep, []).append(_media_end(stamp, im))
        kind = media_type(path)
        tables.media.append({"mediaID": path, "deploymentID": dep, "captureMethod": "activityDetection",
                             "timestamp": stamp, "filePath": path, "filePublic": "false",
                             "fileName": os.path.basename(path), "fileMediatype": kind,
                             "mediaComments": "; ".join(c for c in (comment, _warning(im)) if c)})
    return tables, stamps


def _observations(doc: Dict[str, Any], tables: _Tables, kept: Dict[int, Tuple[str, str]],
                  shown: ShownFilter, taxa: Taxa, species_threshold: float = SPECIES_THRESHOLD) -> None:
    """observations.csv rows: one per shown detection, one ``blank`` per media file without any."""
    names = doc.get("detection_categories") or {}
    episodes = episode_ids(_with_times(doc, tables.read_times))
    bounds: Dict[str, Tuple[str, str]] = {}
    for k, (stamp, _) in kept.items():
        end = _media_end(stamp, doc["images"][k])
        lo, hi = bounds.get(episodes[k], (stamp, end))
        bounds[episodes[k]] = (min(lo, stamp), max(hi, end))
    model = str((doc.get("info") or {}).get("detector") or "detector")
    rule, index = file_camera_rule(doc), by_class(taxa)
    species = _Species.of(doc, species_threshold, model)
    for k, (stamp, media_id) in kept.items():
        im = doc["images"][k]
        start, end = bounds[episodes[k]]
        base = {"deploymentID": deployment_of(im["file"], rule), "mediaID": media_id, "eventID": episodes[k],
                "eventStart": start, "eventEnd": end, "observationLevel": "media"}
        dets = shown_detections(im, shown, names=names)
        if not dets:
            tables.observations.append({**base, "observationID": f"{media_id}:blank", "observationType": "blank"})
        for j, d in enumerate(dets):
            tables.observations.append({**base, **_detection_fields(d, names, model, index, species),
                                        "observationID": f"{media_id}:{j + 1}"})


def _media_end(stamp: str, entry: Dict[str, Any]) -> str:
    """When a media file's moment ends: a photo's at its stamp; a video's where its frames end
    (its last frame looked at, plus one, over its frame rate: within one sampling step of the
    clip's end, from what every video entry holds), rounded up to a whole second.

    Why: a clip alone in its episode got ``eventEnd`` equal to ``eventStart``, an event of no length,
    while the animal was filmed for the whole clip."""
    fps, frames = entry.get("frame_rate"), entry.get("frames_processed")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0 and isinstance(frames, list) and frames):
        return stamp
    last = max((n for n in frames if isinstance(n, int) and n >= 0), default=None)
    if last is None:
        return stamp
    seconds = math.ceil((last + 1) / float(fps) - 1e-9)
    if seconds <= 0 or seconds > MAX_CLIP_S:
        return stamp
    return (dt.datetime.fromisoformat(stamp) + dt.timedelta(seconds=seconds)).isoformat()


def _warning(entry: Dict[str, Any]) -> str:
    """What was wrong with a file that still gave detections (a video cut short), as text."""
    warning = entry.get("warning")
    return warning.strip() if isinstance(warning, str) else ""


def _with_times(doc: Dict[str, Any], times: Dict[int, str]) -> Dict[str, Any]:
    """``doc`` with the EXIF times read from the images themselves as the entries' ``datetime``.

    Why: MegaDetector writes no times unless asked; its photos' media rows carry the EXIF time read
    here, and their events (``eventID``, start, end) must come from the same times, not one event
    per photo. Times from a file's modification (a copy's time) are not used for events.
    """
    if not times:
        return doc
    images = [dict(im, datetime=times[k]) if k in times else im for k, im in enumerate(doc.get("images", []))]
    return dict(doc, images=images)


@dataclass(frozen=True)
class _Species:
    """A classified file's species classes, their taxonomy strings, the classifier's name and the
    score at which its top class is observed (``species``)."""

    names: Dict[str, str]
    descriptions: Dict[str, Any]
    classifier: str
    threshold: float

    @classmethod
    def of(cls, doc: Dict[str, Any], threshold: float, model: str) -> Optional["_Species"]:
        names = species_names(doc)
        if names is None:
            return None
        descriptions = doc.get("classification_category_descriptions")
        return cls(names, descriptions if isinstance(descriptions, dict) else {},
                   classifier_name(doc) or f"species classifier on {model}", threshold)

    def fields(self, d: Dict[str, Any], index: Dict[str, Any]) -> Dict[str, Any]:
        """What the detection's top species sets of its observation (nothing below the threshold):
        its probability and classifier, its name as a tag (``species:NAME``, after the class's), and
        its scientific name from the taxa file by the species' name, else from its taxonomy string
        (a taxa row left empty stays empty)."""
        top = top_pair(d, self.names)
        if top is None or top[1] < self.threshold:
            return {}
        name = self.names[top[0]]
        out: Dict[str, Any] = {"classifiedBy": self.classifier, "classificationProbability": round(top[1], 3),
                               "species": name}
        if class_key(name) in index:
            out.update(taxon_fields(name, index))
        else:
            scientific = taxonomy_name(self.descriptions.get(top[0]))
            if scientific:
                out["scientificName"] = scientific
        return out


def _detection_fields(d: Dict[str, Any], names: Dict[str, str], model: str, index: Dict[str, Any],
                      species: Optional[_Species] = None) -> Dict[str, Any]:
    name = names.get(str(d.get("category")), str(d.get("category")))
    x, y, w, h = (float(v) for v in d["bbox"])
    out = {"observationType": observation_type(name), "count": 1, "classificationMethod": "machine",
           "classifiedBy": model, "classificationProbability": round(float(d["conf"]), 3),
           **taxon_fields(name, index), **(species.fields(d, index) if species is not None else {})}
    named = out.pop("species", None)
    out["observationTags"] = (f"{CLASS_TAG}{name}" + (f"{SPECIES_TAG}{named}" if named else "")
                              + (SUSPECT_TAG if d.get("suspect") else ""))
    if w > 0 and h > 0:
        out.update(bboxX=round(min(max(x, 0.0), 1.0), 4), bboxY=round(min(max(y, 0.0), 1.0), 4),
                   bboxWidth=round(min(w, 1.0), 4), bboxHeight=round(min(h, 1.0), 4))
    return out


def _deployments(tables: _Tables, opts: PackageOptions) -> List[Dict[str, Any]]:
    """deployments.csv rows; ``ResultsError`` naming the deployments that have no position.

    A deployment ends where its latest media ends (``_media_end``, the rule events use): ending at
    the last file's start cut off the clip a camera was still filming."""
    missing = [d for d in tables.times if d not in opts.locations and opts.default_location is None]
    if missing:
        raise ResultsError("Camtrap DP needs each deployment's latitude and longitude; none given for "
                           f"{', '.join(map(repr, missing[:10]))}{' …' if len(missing) > 10 else ''}: give a "
                           "locations CSV (deploymentID,latitude,longitude; deploymentID is the camera folder) "
                           "or one latitude/longitude for all")
    rows = []
    for dep, stamps in sorted(tables.times.items()):
        lat, lon = opts.locations.get(dep, opts.default_location)
        rows.append({"deploymentID": dep, "locationID": dep, "locationName": dep, "latitude": lat, "longitude": lon,
                     "deploymentStart": min(stamps), "deploymentEnd": max(tables.ends[dep])})
    return rows


def _descriptor(doc: Dict[str, Any], tables: _Tables, deployments: List[Dict[str, Any]], opts: PackageOptions,
                shown: ShownFilter) -> Dict[str, Any]:
    """datapackage.json: Camtrap DP 1.0's required metadata, the resources, and what made them."""
    lats = [d["latitude"] for d in deployments] or [0.0]
    lons = [d["longitude"] for d in deployments] or [0.0]
    stamps = sorted(s for v in tables.times.values() for s in v)
    ends = sorted(s for v in tables.ends.values() for s in v)
    spatial = ({"type": "Point", "coordinates": [lons[0], lats[0]]} if len(set(zip(lats, lons))) <= 1 else
               {"type": "Polygon", "coordinates": [[[min(lons), min(lats)], [max(lons), min(lats)],
                                                     [max(lons), max(lats)], [min(lons), max(lats)],
                                                     [min(lons), min(lats)]]]})
    info = doc.get("info") or {}
    return {
        "profile": PROFILE_URL, "name": "camera-trap-detections",
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "title": opts.title, "contributors": [{"title": opts.contributor, "role": "contributor"}],
        "description": "Machine detections of a camera-trap season (SSD Studio), one media-level observation "
                       "per detection above the thresholds recorded under ssdStudio.",
        "project": {"title": opts.title, "samplingDesign": opts.sampling_design,
                    "captureMethod": ["activityDetection"], "individualAnimals": False, "observationLevel": ["media"]},
        "spatial": spatial,
        "temporal": {"start": stamps[0][:10] if stamps else "1970-01-01",
                     "end": ends[-1][:10] if ends else "1970-01-01"},
        "taxonomic": _taxonomic(tables.observations, opts.taxa),
        "resources": [{"name": t, "path": f"{t}.csv", "profile": "tabular-data-resource", "format": "csv",
                       "mediatype": "text/csv", "encoding": "utf-8", "schema": f"{BASE_URL}/{t}-table-schema.json"}
                      for t in TABLES],
        OUR_BLOCK: {"detector": info.get("detector"), "detection_categories": doc.get("detection_categories"),
                      "threshold": shown.threshold, "class_thresholds": dict(shown.per_class),
                      "hide_suspect": shown.hide_suspect, "episode_gap": file_gap(doc),
                      "camera_depth": file_camera_rule(doc).recorded(),
                      "detection_completion_time": info.get("detection_completion_time"),
                      "media_left_out": len(tables.skipped)},
    }


def _taxonomic(observations: List[Dict[str, Any]], taxa: Taxa) -> List[Dict[str, Any]]:
    """``taxa.taxonomic``, with each scientific name the observations took from a classifier's
    taxonomy strings (none in the taxa file) listed by its name alone."""
    listed = taxonomic(observations, taxa)
    known = {t["scientificName"] for t in listed}
    more = {o["scientificName"] for o in observations if o.get("scientificName")} - known
    return sorted(listed + [{"scientificName": n} for n in more], key=lambda t: t["scientificName"])


def camtrap_tables(doc: Dict[str, Any], threshold: Threshold, opts: PackageOptions,
                   hide_suspect: bool = True) -> Tuple[Dict[str, Any], Dict[str, List[Dict[str, Any]]], List[str]]:
    """(datapackage.json, rows per table, files left out for want of a time stamp or a valid path)."""
    if opts.sampling_design not in SAMPLING_DESIGNS:
        raise ResultsError(f"sampling design {opts.sampling_design!r}: one of {', '.join(SAMPLING_DESIGNS)}")
    shown = ShownFilter.at(threshold, hide_suspect)
    tables, kept = _media_rows(doc, opts, check_offset(opts.utc_offset))
    if not tables.media:
        raise ResultsError(_no_media(len(tables.skipped), opts.image_root, recorded_folder_hint(doc, opts.image_root, opts.images_term)))
    _observations(doc, tables, kept, shown, opts.taxa, opts.species_threshold)
    deployments = _deployments(tables, opts)
    rows = {"deployments": deployments, "media": tables.media, "observations": tables.observations}
    return _descriptor(doc, tables, deployments, opts, shown), rows, tables.skipped


def _no_media(skipped: int, image_root: Optional[str], hint: str = "") -> str:
    """Why a package would hold no media (refused: an empty package would claim 1970 at 0°, 0°)."""
    if not skipped:
        return "no media to export: every file in these results failed to be read (nothing was written)"
    return (f"no media to export: none of the {skipped} file(s) has an EXIF time, and none was found in the images "
            f"folder '{image_root}' to date it by, or their paths lie outside it; is that the folder the results' "
            f"paths start from?{hint} (nothing was written)")


def write_camtrap_dp(doc: Dict[str, Any], out_dir: str, threshold: Threshold, opts: PackageOptions,
                     hide_suspect: bool = True, replace: bool = False) -> Dict[str, Any]:
    """Write the package into ``out_dir`` (each file atomically); returns counts, what was left out,
    and the ``locations`` rows that name no camera folder (a typo there would otherwise pass
    silently wherever a default position fills in). A folder holding files not of a package of
    ours is refused unless ``replace`` (``check_package_folder``): a user's files are never lost unasked."""
    check_package_folder(out_dir, replace)
    descriptor, rows, skipped = camtrap_tables(doc, threshold, opts, hide_suspect)
    os.makedirs(out_dir, exist_ok=True)
    for table in TABLES:
        # names UTF-8 cannot hold (a lone surrogate in a results file's class or species name) escaped
        with atomic_path(os.path.join(out_dir, f"{table}.csv")) as tmp, \
                open(tmp, "w", encoding="utf-8", newline="", errors=ESCAPED) as fh:
            write_table(fh, table, rows[table])
    atomic_write_json(os.path.join(out_dir, DESCRIPTOR), descriptor)
    folders = [d["deploymentID"] for d in rows["deployments"]]
    rule = file_camera_rule(doc)             # every camera of the results, also one whose media were left out
    cameras = {deployment_of(im["file"], rule) for im in doc.get("images", [])}
    return {"deployments": len(rows["deployments"]), "media": len(rows["media"]),
            "observations": len(rows["observations"]), "left_out": skipped, "deployment_ids": folders,
            "failed": sum(1 for im in doc.get("images", []) if is_failed(im)),   # never in media.csv: said
            "unmatched_locations": sorted(set(opts.locations) - cameras),
            **taxa_report(_observed_names(doc), rows["observations"], opts.taxa)}


def _observed_names(doc: Dict[str, Any]) -> Dict[str, str]:
    """Every name an observation can be observed as: the detector's classes, then the classifier's
    species (a taxa row naming either is no typo; an unnamed one of either is warned)."""
    detector = (doc.get("detection_categories") or {}).values()
    return {str(k): n for k, n in enumerate(dict.fromkeys([*detector, *(species_names(doc) or {}).values()]))}


def camtrap_dp_zip(doc: Dict[str, Any], threshold: Threshold, opts: PackageOptions,
                   hide_suspect: bool = True) -> bytes:
    """The package as a zip file's bytes (the page's download): the same four files."""
    descriptor, rows, _ = camtrap_tables(doc, threshold, opts, hide_suspect)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for table in TABLES:
            text = io.StringIO(newline="")
            write_table(text, table, rows[table])
            zf.writestr(f"{table}.csv", text.getvalue().encode("utf-8", ESCAPED))
        zf.writestr(DESCRIPTOR, json.dumps(descriptor, indent=1))
    return buf.getvalue()


def write_table(fh, table: str, rows: List[Dict[str, Any]]) -> None:
    """One Camtrap DP table as CSV: the schema's columns, empty cells for the ones not known."""
    cols = columns(table)
    w = CsvWriter(fh)
    w.writerow(cols)
    for row in rows:
        w.writerow([safe_cell(_cell(row.get(c))) for c in cols])


def _cell(value: Any) -> Any:
    return "" if value is None else value
