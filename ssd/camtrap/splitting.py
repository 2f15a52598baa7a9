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
import io
import json
import os
import re
from array import array
from contextlib import ExitStack
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

from ssd.base.atomic import replace_with
from ssd.base.safe_paths import PathRefused, is_absolute_name, name_parts, same_file_key
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
    """``safe_paths.same_file_key``: names that are one file on macOS and Windows."""
    return same_file_key(name)


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


def split_identity(head: Dict[str, Any], files: List[str], rule: CameraRule) -> str:
    """What the parts of one split share, and the parts of another split do not: a digest of the
    file's document less its entries, its names in order and the rule it is split by.

    Why: merge puts parts back together only when they are one split's (``merging``); two seasons'
    files, or one file split by two rules, may hold disjoint cameras that would merge silently into
    a file no run made. Made from what the file holds, the same split gives the same parts."""
    digest = hashlib.sha256(json.dumps([head, rule.recorded()], sort_keys=True, default=repr).encode())
    for file in files:
        digest.update(b"\0" + str(file).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:SPLIT_ID_HEX]


#: Hex digits of ``split_identity`` kept: 64 bits, no two seasons' splits alike by chance.
SPLIT_ID_HEX = 16


def _part_info(info: Dict[str, Any], folder: str, rule: CameraRule, split: Dict[str, Any]) -> Dict[str, Any]:
    """The run's ``info`` for one part: where it was split from (``split``: the split's identity and
    count of parts; the camera depth the file recorded, which the part's cannot say once moved
    down), and the recorded images folder and camera depth moved down to the part's folder (a
    depth counts levels below the images folder). ``merging._unsplit`` undoes each."""
    out = dict(info, split_from={"folder": folder, "camera_depth": rule.recorded(), **split})
    batch = info.get("ssd_batch")
    if isinstance(batch, dict) and "camera_depth" in batch:
        out["split_from"]["season_camera_depth"] = batch["camera_depth"]
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
    images = doc.get("images", [])
    files = [im.get("file") if isinstance(im, dict) else im for im in images]
    folders, part_of, names = split_plan(files, rule, prefix_term)
    groups: Dict[str, List[Dict[str, Any]]] = {folder: [] for folder in folders}
    for im, k, name in zip(images, part_of, names):
        groups[folders[k]].append(dict(im, file=name))
    split = _split_record(doc, files, rule, folders)
    return {folder: dict(part_head(doc, folder, rule, split), images=images) for folder, images in groups.items()}


def split_plan(files: List[Any], rule: CameraRule,
               prefix_term: str = CLI_TERMS[0]) -> Tuple[List[str], List[int], List[str]]:
    """Where each of ``files`` goes: the folders (by ``rule``, in order of first appearance), and per
    file the index of its folder and its name relative to it. ``ResultsError`` as ``split_results``
    refuses (the names in order, then folders that would share a file)."""
    index: Dict[str, int] = {}
    part_of: List[int] = []
    names: List[str] = []
    for file in files:
        parts = _entry_parts(file, prefix_term)
        folder = rule.camera_of("/".join(parts))
        levels = len(folder.split("/")) if folder else 0
        part_of.append(index.setdefault(folder, len(index)))
        names.append("/".join(parts[levels:]))
    folders = list(index)
    _refuse_shared_names(folders)
    return folders, part_of, names


def part_head(doc: Dict[str, Any], folder: str, rule: CameraRule, split: Dict[str, Any]) -> Dict[str, Any]:
    """A part's document less its ``images``: the run's, with ``info`` for that part (``_part_info``;
    ``split`` as ``_split_record`` gives it)."""
    head = dict(doc, info=_part_info(dict(doc.get("info") or {}), folder, rule, split))
    head.pop("images", None)
    return head


def _split_record(doc: Dict[str, Any], files: List[Any], rule: CameraRule, folders: List[str]) -> Dict[str, Any]:
    """What each part of this split records of it (``info.split_from``): its identity and its count
    of parts, by which merge tells a missing part and another split's."""
    head = {k: v for k, v in doc.items() if k != "images"}
    return {"split": split_identity(head, files, rule), "parts": len(folders)}


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


#: Part files written at once (each an open file): below the 256 a process may hold on macOS. A
#: season split into more parts is read once more for each further group.
OPEN_AT_ONCE = 128


def split_results_file(path: str, out: str, names_for: Callable[[Dict[str, Any]], Dict[str, Any]],
                       rule_for: Callable[[Dict[str, Any]], CameraRule],
                       prefix_term: str = CLI_TERMS[0]) -> Tuple[List[Tuple[str, int]], CameraRule]:
    """``write_split(split_results(...))`` of the results file ``path``, reading it as it goes:
    ``[(path, images)]`` and the rule it was split by. ``names_for`` makes the names of the file
    (read as a document whose entries hold only their ``file``) the ones to split, or refuses them
    (``--path-prefix``); ``rule_for`` gives the rule from that document.

    Why: the file holds every box down to the results floor, ~84 an image; parsed whole, a season
    of 100,000 images needed ~4.3 GB to be cut into per-camera files. Here a first reading checks
    the file and the names, notes where each entry's text stands, and plans the parts (per image
    its name and part); then each entry's text is read again from there, not parsed where it can be
    copied, and written into its part's temporary file, compact as ``write_split`` writes it; the
    parts are put in place once all are written. The same refusals, in the same order.
    """
    identity = _identity(path)
    read, spans = _first_reading(path)
    files = [im["file"] for im in read["images"]]
    doc = names_for(read)
    rule = rule_for(doc)
    folders, part_of, names = split_plan([im["file"] for im in doc["images"]], rule, prefix_term)
    split = _split_record(doc, [im["file"] for im in doc["images"]], rule, folders)
    read.pop("images", None)
    doc.pop("images", None)                    # the prefix made a new document, or it is the one read
    heads = {folder: part_head(doc, folder, rule, split) for folder in folders}
    plan = planned_files(heads, out)
    os.makedirs(out, exist_ok=True)
    temps: List[str] = []
    try:
        counts = [0] * len(plan)
        for first in range(0, len(plan), OPEN_AT_ONCE):
            group = plan[first:first + OPEN_AT_ONCE]
            temps += _write_parts(path, read, group, first, files, part_of, names, counts, identity, spans)
        for tmp, (dest, _) in zip(temps, plan):
            replace_with(tmp, dest)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return [(dest, n) for (dest, _), n in zip(plan, counts)], rule


def _identity(path: str) -> Tuple[int, ...]:
    """What a file rewritten between two readings changes: its device, inode, size and time of change."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Spans:
    """Per entry, in file order, where its text stands (``results_stream.Where``'s offsets) and
    whether that text is the bytes ``json.dumps`` would write (``_verbatim``): arrays, not a tuple
    an entry, to hold a season of a million images in ~17 MB."""

    def __init__(self) -> None:
        self.starts, self.ends, self.verbatim = array("q"), array("q"), bytearray()
        self.whole = True               # False: the file was read whole, no entry's text known


def _first_reading(path: str) -> Tuple[Dict[str, Any], Optional[_Spans]]:
    """The file read as a document whose entries hold only their ``file``, and where each entry's
    text stands (None where it was read whole by ``read_results``: an unusual file)."""
    from ssd.camtrap.results_stream import Where, read_results_kept_where

    spans = [_Spans()]

    def keep_for(_head: Dict[str, Any]) -> Callable[[Dict[str, Any], Optional[Where]], Dict[str, Any]]:
        found = spans[0] = _Spans()                    # a second pass: what the first noted is dropped

        def keep(entry: Dict[str, Any], where: Optional[Where]) -> Dict[str, Any]:
            if where is None:
                found.whole = False
            else:
                text, start, end = where
                found.starts.append(start)
                found.ends.append(end)
                found.verbatim.append(_verbatim(entry, text))
            return {"file": entry["file"]}
        return keep

    read = read_results_kept_where(path, keep_for)
    return read, (spans[0] if spans[0].whole else None)


def _write_parts(path: str, head: Dict[str, Any], group: List[Tuple[str, Dict[str, Any]]], first: int,
                 files: List[str], part_of: List[int], names: List[str], counts: List[int],
                 identity: Tuple[int, ...], spans: Optional[_Spans]) -> List[str]:
    """Read ``path`` once more and write the entries of the parts ``group`` (the ``first``-th part on)
    into a temporary file beside each; their paths. ``ResultsError`` when the file is not the one
    planned from (``head``, the names in order, ``identity`` as ``_identity`` gave it before the first
    reading): it changed between the readings. The entries are not checked again: the first
    reading checked them, and a file that changed is refused. With ``spans`` (the first reading's),
    each entry's text is taken from where it stood, parsed only where it is re-serialised."""
    from ssd.base.atomic import temp_beside
    from ssd.camtrap.results_stream import read_results_streamed
    from ssd.camtrap.run_checkpoint import IMAGES_JSON_END, images_json_entry, images_json_head

    with ExitStack() as stack:
        temps: List[str] = []
        handles: List[IO[str]] = []
        for dest, part in group:
            fd, tmp = temp_beside(dest)
            temps.append(tmp)
            stack.callback(lambda t=tmp: os.path.exists(t) and os.unlink(t))
            handles.append(stack.enter_context(io.open(fd, "w", encoding="utf-8")))
        seen = [0]

        def start_again() -> None:
            seen[0] = 0                                 # read again from the start: written again
            for k, fh in enumerate(handles):
                fh.seek(0)
                fh.truncate()
                fh.write(images_json_head(group[k][1]))
                counts[first + k] = 0

        def take(_: Dict[str, Any]) -> Callable[[List[Dict[str, Any]]], None]:
            start_again()

            def sink(entries: List[Dict[str, Any]]) -> None:
                for entry in entries:
                    i = seen[0]
                    if i >= len(files) or entry["file"] != files[i]:
                        raise _changed(path)
                    seen[0] += 1
                    k = part_of[i] - first
                    if 0 <= k < len(handles):
                        handles[k].write(images_json_entry(counts[first + k], json.dumps(
                            dict(entry, file=names[i]), separators=(",", ":"), allow_nan=False)))
                        counts[first + k] += 1
            return sink

        if spans is not None:                           # the text of each entry, not parsed again
            start_again()
            _copy_spans(path, head, spans, first, files, part_of, names, counts, handles)
            if _identity(path) != identity:
                raise _changed(path)
        else:                                           # an unusual file: read as the first reading read it
            again = read_results_streamed(path, take)
            again.pop("images", None)
            if seen[0] != len(files) or json.dumps(again) != json.dumps(head):
                raise _changed(path)
        for fh in handles:
            fh.write(IMAGES_JSON_END)
            fh.flush()
            os.fsync(fh.fileno())
        stack.pop_all()                                 # kept: the caller puts them in place
        for fh in handles:
            fh.close()
        return temps


def _copy_spans(path: str, head: Dict[str, Any], spans: _Spans, first: int, files: List[str],
                part_of: List[int], names: List[str], counts: List[int], handles: List[IO[str]]) -> None:
    """The second reading by the first's ``spans``: each entry of a part in ``handles`` (the
    ``first``-th on) written into it, its text copied (``_verbatim`` ones, their ``file`` renamed)
    or parsed and re-serialised. ``ResultsError`` where the file is no longer the one read first:
    a copied entry's text not beginning with its name, a parsed one not an entry of that name, or
    the text between the entries (the head, with each entry as ``0``) not the head read first
    with as many entries (a file changed within its size and time of change)."""
    from ssd.camtrap.results_stream import TextChanged, read_spans
    from ssd.camtrap.run_checkpoint import images_json_entry

    rest = io.StringIO()                                # the document, each entry as 0
    i = 0
    try:
        for between, text in read_spans(path, zip(spans.starts, spans.ends)):
            rest.write(between)
            if text is None:
                break
            rest.write("0")
            k = part_of[i] - first
            if spans.verbatim[i]:
                prefix = '{"file":' + json.dumps(files[i])
                if not text.startswith(prefix):
                    raise _changed(path)
                written = '{"file":' + json.dumps(names[i]) + text[len(prefix):] if 0 <= k < len(handles) else ""
            elif 0 <= k < len(handles):
                entry = _entry_of(text)
                if entry is None or entry.get("file") != files[i]:
                    raise _changed(path)
                written = json.dumps(dict(entry, file=names[i]), separators=(",", ":"), allow_nan=False)
            if 0 <= k < len(handles):
                handles[k].write(images_json_entry(counts[first + k], written))
                counts[first + k] += 1
            i += 1
    except TextChanged:
        raise _changed(path) from None
    try:
        again = json.loads(rest.getvalue())
    except (ValueError, RecursionError):
        raise _changed(path) from None
    if (type(again) is not dict or again.pop("images", None) != [0] * len(files)
            or json.dumps(again) != json.dumps(head)):
        raise _changed(path)


def _entry_of(text: str) -> Optional[Dict[str, Any]]:
    """The entry ``text`` holds, parsed as ``json.loads`` parses it; None where it is not one."""
    try:
        entry = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return entry if type(entry) is dict else None


#: An entry's text mapped for ``_verbatim``'s checks: digits and the decimal point as ``d``, an
#: exponent's letter as ``e``, structure as ``#``, what ``json.dumps`` would escape or drop as ``!``.
_SHAPES = str.maketrans({**{chr(c): "x" for c in range(128)}, **{c: "d" for c in "0123456789."},
                         "e": "e", "E": "e", " ": " ", **{c: "#" for c in ",:[]{}"},
                         **{c: "!" for c in "\\\t\n\r\x7f"}})
_TRAILING_ZERO = re.compile(r"\.\d+0[,\]}]")            # 0.50: json.dumps writes 0.5


def _as_written(entry: Dict[str, Any], text: str, name: str) -> str:
    """``json.dumps(dict(entry, file=name), separators=(",", ":"), allow_nan=False)``, made from the
    entry's own ``text`` where that is sure to be the same bytes (``_verbatim``), else by ``json.dumps``."""
    if _verbatim(entry, text):
        return '{"file":' + json.dumps(name) + text[len('{"file":' + json.dumps(entry.get("file"))):]
    return json.dumps(dict(entry, file=name), separators=(",", ":"), allow_nan=False)


def _verbatim(entry: Dict[str, Any], text: str) -> bool:
    """Whether ``text``, the parsed ``entry``'s own, is the bytes ``json.dumps(entry, separators=(",",
    ":"), allow_nan=False)`` would write, its ``file`` first (so renaming it changes only that).

    Why: re-serialising ~84 boxes an entry took a quarter of a split's time, and a file a batch
    run wrote holds each entry exactly as ``json.dumps`` writes it. The text is taken only when
    each difference ``json.dumps`` could make is ruled out: ASCII with no escape, no white space
    beside structure (outside strings), every number as ``repr`` writes it (no exponent, no
    trailing zero, fewer than 16 digits, not below 0.0001, no ``-0``; no NaN or Infinity), no key
    twice (the keys counted in the text against the parsed entry's, whose only dicts are it and
    its detections) and ``file`` its first key. Anything else, however rare, is re-serialised.
    """
    dets = entry.get("detections")
    dets = [] if dets is None else dets
    prefix = '{"file":' + json.dumps(entry.get("file"))
    if (text.isascii() and text.startswith(prefix) and isinstance(dets, list)
            and all(type(d) is dict for d in dets)
            and text.count('":') == len(entry) + sum(map(len, dets)) and text.count("{") == 1 + len(dets)
            and "NaN" not in text and "Infinity" not in text and ".0000" not in text
            and "-0," not in text and "-0]" not in text and "-0}" not in text):
        shapes = text.translate(_SHAPES)
        return ("!" not in shapes and "de" not in shapes and "# " not in shapes and " #" not in shapes
                and "d" * 16 not in shapes and not _TRAILING_ZERO.search(text))
    return False


def _changed(path: str) -> ResultsError:
    return ResultsError(f"'{path}' changed while it was split: split it again (nothing was written)")
