"""One season's results as one file per camera folder (or per folder N levels down), each with
names relative to its folder: ``python -m ssd results split``.

Why: Timelapse reads a results file's names relative to the folder it was opened at (its root
folder). A season is processed in one run from its top folder, but each camera's or site's photos
are often reviewed in their own Timelapse database, opened at ``siteA/cam1`` or ``siteA``; a file
for the whole season names ``siteA/cam1/100RECNX/IMG_0001.JPG`` there, which Timelapse cannot find
below ``siteA/cam1``. MegaDetector's ``subset_json_detector_output --split_folders`` makes such files;
``results rebase --relative-to`` cannot, as it refuses every name outside its folder.

Which folder an entry belongs to is the camera rule (``ssd.camtrap.cameras``): automatic (the
photo's folder without date and card-overflow folders, ``siteA/cam1``) or the first N folder
levels (``siteA`` at 1). Photos directly in the top folder form a part of their own (``""``).
Each part keeps the run's ``info`` (detector, thresholds, format version) and categories; failed
images stay in their part with their ``failure``. Names must be relative (``--path-prefix`` makes
them so) and may not climb out with ``..``: everything is checked before any file is written.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from typing import Any, Dict, List, Optional, Tuple

from ssd.base.safe_paths import PathRefused, is_absolute_name, name_parts
from ssd.camtrap.cameras import CameraRule
from ssd.camtrap.rebase import CLI_TERMS, joined
from ssd.camtrap.results_check import ResultsError

#: The file name of the part holding the photos directly in the top folder.
TOP_PART = "top-folder.json"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f\\/:*?"<>|]')      # not in a file name on Windows or here
#: Device names on Windows, whatever follows their first dot (``CON.json`` opens the console there).
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{d}{n}" for d in ("COM", "LPT") for n in range(1, 10))}
#: A part's file name at most (file systems take 255 bytes), room left for ``.json``.
MAX_STEM_BYTES = 200


def part_file_name(folder: str) -> str:
    """The file a folder's part is written to: its path with ``/`` as ``_`` (MegaDetector's naming),
    characters no file system takes as ``_``, a Windows device name (``CON``) after a ``_``, and a name
    too long for a file system cut short with a hash of the whole (parts are opened on Windows, where
    Timelapse runs, and a season's folders can be named at any length)."""
    if not folder:
        return TOP_PART
    stem = _UNSAFE.sub("_", folder.replace("/", "_"))
    if stem.split(".")[0].upper() in _WINDOWS_DEVICES:
        stem = "_" + stem
    whole = stem.encode("utf-8", "surrogateescape")
    if len(whole) > MAX_STEM_BYTES:
        cut = whole[:MAX_STEM_BYTES - 11].decode("utf-8", "ignore")
        stem = f"{cut}-{hashlib.sha1(whole).hexdigest()[:10]}"
    return stem + ".json"


def _same_file(name: str) -> str:
    """What two names must differ in to be two files on macOS and Windows: case and Unicode
    normalization aside (``CamA``/``cama``, a composed ``é`` and ``e`` + accent are one file there)."""
    return unicodedata.normalize("NFC", name).casefold()


def _entry_parts(file: Any, prefix_term: str = CLI_TERMS[0]) -> List[str]:
    """A relative name's components; ``ResultsError`` for an absolute one or one climbing out."""
    if not isinstance(file, str):
        raise ResultsError(f"an entry's file name is {file!r}, not text (nothing was written)")
    if is_absolute_name(file):
        raise ResultsError(f"{file!r} is an absolute name: give the folder the names begin with as {prefix_term} "
                           "to split below it (nothing was written)")
    try:
        return name_parts(file)
    except PathRefused as why:
        raise ResultsError(f"{file!r} {why} (nothing was written)") from None


def _part_info(info: Dict[str, Any], folder: str, rule: CameraRule) -> Dict[str, Any]:
    """The run's ``info`` for one part: where it was split from, and the recorded images folder and
    camera depth moved down to the part's folder (a depth counts levels below the images folder)."""
    out = dict(info, split_from={"folder": folder, "camera_depth": rule.recorded()})
    batch = info.get("ssd_batch")
    if isinstance(batch, dict) and folder:
        batch = dict(batch)
        levels = folder.count("/") + 1
        if isinstance(batch.get("images_root"), str) and not batch.get("absolute_paths"):
            batch["images_root"] = joined(batch["images_root"], folder.split("/"))
        depth = batch.get("camera_depth")
        if isinstance(depth, int) and not isinstance(depth, bool):
            batch["camera_depth"] = max(depth - levels, 0)
        out["ssd_batch"] = batch
    return out


def split_results(doc: Dict[str, Any], rule: CameraRule,
                  prefix_term: str = CLI_TERMS[0]) -> Dict[str, Dict[str, Any]]:
    """A results document per folder (the camera folder by ``rule``), keyed by the folder, in order
    of first appearance; names relative to it. ``doc`` is left as it is. ``ResultsError`` (nothing
    made) for an absolute name (the setting to give named by ``prefix_term``: a flag or the page's
    field), ``..``, or two folders whose files would share a name."""
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for im in doc.get("images", []):
        parts = _entry_parts(im.get("file") if isinstance(im, dict) else im, prefix_term)
        folder = rule.camera_of("/".join(parts))
        levels = len(folder.split("/")) if folder else 0
        groups.setdefault(folder, []).append(dict(im, file="/".join(parts[levels:])))
    _refuse_shared_names(list(groups))
    info = dict(doc.get("info") or {})
    return {folder: dict(doc, info=_part_info(info, folder, rule), images=images)
            for folder, images in groups.items()}


def _refuse_shared_names(folders: List[str]) -> None:
    """``ResultsError`` when two folders map to one file name (``site_A/cam`` and ``site/A_cam``), here
    or on macOS and Windows (``CamA`` and ``cama``)."""
    seen: Dict[str, str] = {}
    for folder in folders:
        name = part_file_name(folder)
        if _same_file(name) in seen:
            raise ResultsError(f"the folders {seen[_same_file(name)]!r} and {folder!r} would both be written to "
                               f"{name!r}: split at another --camera-depth (nothing was written)")
        seen[_same_file(name)] = folder


def planned_files(parts: Dict[str, Dict[str, Any]], out: str) -> List[Tuple[str, Dict[str, Any]]]:
    """Each part's path under ``out``; ``ResultsError`` (nothing written) when one exists already or
    ``out`` is a file: a split never replaces a file."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ResultsError(f"'{out}' is a file: give a folder for the split results (nothing was written)")
    plan = [(os.path.join(out, part_file_name(folder)), doc) for folder, doc in parts.items()]
    existing: Optional[str] = next((p for p, _ in plan if os.path.lexists(p)), None)
    if existing is not None:
        raise ResultsError(f"'{existing}' exists already: split into a new or empty folder, or move it away "
                           "(nothing was written)")
    return plan


def write_split(parts: Dict[str, Dict[str, Any]], out: str) -> List[Tuple[str, int]]:
    """Write each part under ``out`` (made if missing), one compact entry a line as a batch run writes
    them; ``[(path, images)]``. Every path is checked first (``planned_files``): nothing is replaced."""
    from ssd.camtrap.run_checkpoint import write_json_with_images

    plan = planned_files(parts, out)
    os.makedirs(out, exist_ok=True)
    written: List[Tuple[str, int]] = []
    for path, part in plan:
        images = part["images"]
        head = {k: v for k, v in part.items() if k != "images"}
        write_json_with_images(path, head, (json.dumps(im, separators=(",", ":"), allow_nan=False) for im in images))
        written.append((path, len(images)))
    return written
