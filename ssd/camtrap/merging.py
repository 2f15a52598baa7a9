"""Joining shards: N machines each ran ``--shard I/N``; one results file comes out.

Refused, with the reason: files of different models (by name, or by the weights' digest where
recorded) or categories, engines, precisions, floors,
NMS thresholds or numbers of detections kept per image (their scores mean different things, and
the merged file names one of each) or camera rules (``--camera-depth``: episodes and repeats are
made again over the whole set, by one rule), shards of different splits (2/4 beside 3/5), a shard
given twice, a missing shard (unless asked for: the file then records ``shards_merged`` and
``shards_missing``, and merges again with the rest) and files that both contain an image (an overlap means the
shards were not a partition, and silently keeping one of two answers would hide it), and
``--absolute-paths`` shards run with their photos at different folders (``_check_roots``). Parts of a
``results split`` (``info.split_from``) name their images relative to their own folder: they are put
back under the folder they were split from (``_unsplit``), and refused where that folder and another
file's cannot be the same (``_check_split_roots``). The merged
file's completion time is its last shard's. Images come out in the walk order
(``megadetector.sort_key``), so merged shards equal one run over the folder; repeated boxes are
flagged again over the whole set, since a camera's images were split between shards, and so are
episodes (a burst's frames fall into different shards).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ssd.base.safe_paths import PathRefused, absolute_name_parts, is_absolute_name, name_parts
from ssd.base.text import terminal_safe
from ssd.camtrap.rebase import split_name
from ssd.camtrap.megadetector import ResultsError, is_cut_short, read_results, sort_key, typical_threshold
from ssd.camtrap.cameras import file_camera_rule
from ssd.camtrap.episodes import assign_episodes
from ssd.camtrap.repeats import flag_repeats
from ssd.camtrap.species import classification_head


def _check_names(paths: Sequence[str], docs: Sequence[Dict[str, Any]]) -> None:
    """Shards of one folder name their images relative to it (or all absolutely, with
    ``--absolute-paths``, as MegaDetector does by default, on Windows with a drive letter or a
    ``\\\\server\\share``): a name with ``..``, or an absolute one among relative ones, is refused."""
    absolute = {p: all(is_absolute_name(im["file"]) for im in d["images"]) for p, d in zip(paths, docs)}
    all_absolute = all(absolute.values())
    for p, d in zip(paths, docs):
        for im in d["images"]:
            name = im["file"]
            try:
                (absolute_name_parts if all_absolute else name_parts)(name)
            except PathRefused as why:
                raise ResultsError(f"'{p}': image {name!r} {why}, outside the folder the shards share; "
                                   "merge results whose names are relative to one folder "
                                   "(or all absolute)") from None


def _check_finished(paths: Sequence[str]) -> None:
    """A journal beside a results file (``s2.checkpoint.jsonl`` for ``s2.json``) is a run of that
    shard that has not finished, stopped or still going (a finished run deletes it): its results are
    absent, or an older run's that it will replace. Either way the merged file would lack or
    misstate that shard; the reason is said rather than "does not exist"."""
    import os

    from ssd.camtrap.run_store import default_journal_path, journal_in_use

    for p in paths:
        journal = default_journal_path(p)
        if os.path.lexists(journal):
            raise ResultsError(f"the run writing '{p}' has not finished: its journal '{journal}' is there "
                               "(a run stopped or still going); finish it (the same detect command with "
                               "--resume, on any machine), then merge")
        if journal_in_use(journal):         # a young run's journal is still under a temporary name
            raise ResultsError(f"the run writing '{p}' has not finished: a run is still writing its journal "
                               f"'{journal}'; wait for it to end, then merge")


def _weights(doc: Dict[str, Any]) -> Optional[str]:
    """The weights' digest a results file records (``info.ssd_batch.model_weights``), else None."""
    digest = ((doc.get("info") or {}).get("ssd_batch") or {}).get("model_weights")
    return digest if isinstance(digest, str) else None


def _check_classifier(paths: Sequence[str], docs: Sequence[Dict[str, Any]]) -> None:
    """Files classified into species (``classification_categories``) merge only with files of the
    same classes: the merged file names one list, and a detection's ``classifications`` are ids into
    it (``"3"`` a red deer in one file, a roe deer in another); a classified file beside one that is
    not would be written as if all were classified."""
    first = classification_head(docs[0])
    for p, d in zip(paths[1:], docs[1:]):
        theirs = classification_head(d)
        if theirs != first:
            raise ResultsError(f"'{p}' has classification categories {theirs.get('classification_categories')}, "
                               f"'{paths[0]}' has {first.get('classification_categories')} (or their descriptions "
                               "differ): only results classified by the same classifier merge")


def _check_weights(paths: Sequence[str], docs: Sequence[Dict[str, Any]]) -> None:
    """The detector's name is its folder's: two machines' ``models/tiny-pikachu``, one retrained,
    name the same detector. Files that record the weights' digest (``info.ssd_batch.model_weights``)
    are compared by it; files that do not (older ones, MegaDetector's) are not."""
    first: Optional[Tuple[str, str]] = None
    for p, d in zip(paths, docs):
        digest = _weights(d)
        if digest is None:
            continue
        if first is None:
            first = (p, digest)
        elif digest != first[1]:
            raise ResultsError(f"'{p}' and '{first[0]}' were made by other weights of model "
                               f"{(d.get('info') or {}).get('detector')!r} (a retrained model of the same folder "
                               "name): only results of the same model merge; run that shard again with the "
                               "others' model")


def _check_roots(paths: Sequence[str], docs: Sequence[Dict[str, Any]]) -> None:
    """``--absolute-paths`` shards name their images under the folder each run was given
    (``info.ssd_batch.images_root``): shards run at ``/mnt/a/season`` and ``/data/season`` would
    merge into one file listing both roots, which no later step can resolve. Such shards are refused,
    naming both roots, until one is rebased onto the other. Files that record no root (older ones,
    MegaDetector's) and shards with relative names are not compared."""
    first: Optional[Tuple[str, str]] = None
    for p, d in zip(paths, docs):
        batch = (d.get("info") or {}).get("ssd_batch") or {}
        root = batch.get("images_root")
        if not batch.get("absolute_paths") or not isinstance(root, str):
            continue
        if first is None:
            first = (p, root)
        elif root != first[1]:
            raise ResultsError(f"'{first[0]}' was run with its photos at '{first[1]}', '{p}' at '{root}': their "
                               "absolute names would list one season under two folders; rebase one onto the "
                               f"other first: python -m ssd results rebase '{p}' --from '{root}' --to '{first[1]}' "
                               "-o REBASED.json, then merge that file")


def _split_folder(doc: Dict[str, Any]) -> Optional[str]:
    """The folder a ``results split`` part holds (``info.split_from.folder``; ``""``: the top folder's
    photos), None for a file that is no part."""
    split = (doc.get("info") or {}).get("split_from")
    folder = split.get("folder") if isinstance(split, dict) else None
    return folder if isinstance(folder, str) else None


def _images_root(doc: Dict[str, Any]) -> Optional[str]:
    """The images folder a file records (``info.ssd_batch.images_root``), None where it records none."""
    root = ((doc.get("info") or {}).get("ssd_batch") or {}).get("images_root")
    return root if isinstance(root, str) else None


def _unsplit(path: str, doc: Dict[str, Any]) -> Dict[str, Any]:
    """A ``results split`` part as it stood in the file it was split from: each name below the part's
    folder again, the recorded images folder moved back up (``splitting._part_info`` moved it down by
    that folder), the camera depth the file recorded put back (``split_from.season_camera_depth``;
    the part's own, moved down, is 0 for a depth of 1 and of 2 alike: merged by it, episodes and
    repeats were made over the whole season as one camera) and ``split_from`` dropped. A file that
    is no part is returned as it is.

    Why: a part's names are relative to its own folder (for Timelapse opened there); merged as they
    were, two cameras' ``a.jpg`` were one image and the merged file named the first part's folder as
    the whole season's."""
    folder = _split_folder(doc)
    if folder is None:
        return doc
    try:
        parts = name_parts(folder) if folder else []
    except PathRefused as why:
        raise ResultsError(f"'{path}': its split_from folder {folder!r} {why}") from None
    info = dict(doc.get("info") or {})
    split = info.pop("split_from")
    if "season_camera_depth" in split and isinstance(info.get("ssd_batch"), dict):
        info["ssd_batch"] = dict(info["ssd_batch"], camera_depth=split["season_camera_depth"])
    root = _images_root(doc)
    if root is not None and parts:
        ends = [sep + sep.join(parts) for sep in "/\\"]
        end = next((e for e in ends if root.rstrip("/\\").endswith(e)), None)
        if end is None:
            raise ResultsError(f"'{path}' is the part for folder '{folder}' of a split, but records its photos at "
                               f"'{root}', not in such a folder: its names cannot be put back under the season's "
                               "folder; merge the files it was split from instead")
        season = root.rstrip("/\\")[:-len(end)] or split_name(root)[0] or end[0]
        info["ssd_batch"] = dict(info["ssd_batch"], images_root=season)
    prefix = "/".join(parts) + "/" if parts else ""
    for im in doc["images"]:        # split writes none: one edited in would be made relative, silently
        if is_absolute_name(im["file"]):
            raise ResultsError(f"'{path}' is the part for folder '{folder}' of a split, but names "
                               f"{terminal_safe(im['file'])!r}, an absolute path: a part's names are relative to "
                               "its folder; give the files results split wrote")
    images = [dict(im, file=prefix + im["file"].replace("\\", "/")) for im in doc["images"]]
    return dict(doc, info=info, images=images)


def _check_split_roots(paths: Sequence[str], docs: Sequence[Dict[str, Any]], was_part: Sequence[bool]) -> None:
    """Where a split's part is merged (``was_part``), every file, put back under the folder it was
    split from (``_unsplit``), must record the same images folder, or all none: parts of two
    seasons' splits (``/data/season`` beside ``/mnt/other``), or a part beside a file whose relative
    names have no recorded folder, would be listed as one season's photos. Refused, naming both."""
    if not any(was_part):
        return
    first = (paths[0], _images_root(docs[0]))
    for p, d in zip(paths[1:], docs[1:]):
        root = _images_root(d)
        if root == first[1]:
            continue
        said = [f"its photos at '{r}'" if r is not None else "no images folder (names relative to a folder it "
                "does not name)" for r in (first[1], root)]
        raise ResultsError(f"'{first[0]}' records {said[0]}, '{p}' records {said[1]}: their names are relative "
                           "to folders that cannot be told to be the same, and would be merged as one season's; "
                           "merge the parts of one split (or the files they were split from)")


def _split_record(doc: Dict[str, Any]) -> Optional[Tuple[Dict[str, Any], List[Any]]]:
    """What ``doc`` (as read) records of the split it comes from, less the folders, and the folders
    it holds: a part's ``split_from`` (its one folder), or a partial merge's ``parts_merged`` (the
    parts it was merged from, so that it merges again with those it lacked); None for other files."""
    info = doc.get("info") or {}
    split = info.get("split_from")
    if isinstance(split, dict) and isinstance(split.get("split"), str) and _split_folder(doc) is not None:
        return {k: v for k, v in split.items() if k != "folder"}, [split["folder"]]
    batch = info.get("ssd_batch")
    merged = batch.get("parts_merged") if isinstance(batch, dict) else None
    if isinstance(merged, dict) and isinstance(merged.get("split"), str) and isinstance(merged.get("folders"), list):
        return {k: v for k, v in merged.items() if k != "folders"}, list(merged["folders"])
    return None


def _split_key(path: str, doc: Dict[str, Any]) -> str:
    """Which file ``doc`` (as read) comes from: a part's split (``split_from.split``) or a partial
    merge's (``parts_merged``), else its own path. Parts written before splits recorded themselves
    (or naming no folder) are each their own, as before."""
    record = _split_record(doc)
    return f"split {record[0]['split']}" if record else f"file {path}"


def _sources(paths: Sequence[str], read: Sequence[Dict[str, Any]]) -> Dict[str, List[int]]:
    """The files merged, by ``_split_key``: each split's parts together (its file, in pieces), each
    other file alone; the indices of their inputs, in order of first appearance."""
    sources: Dict[str, List[int]] = {}
    for k, (p, d) in enumerate(zip(paths, read)):
        sources.setdefault(_split_key(p, d), []).append(k)
    return sources


def _parts_missing(paths: Sequence[str], read: Sequence[Dict[str, Any]], sources: Dict[str, List[int]],
                   allow_missing: bool) -> Tuple[int, List[Dict[str, Any]]]:
    """How many parts the splits given lack (``split_from.parts`` each recorded), and of each such
    split what the merged file is to record (``parts_merged``: its record and the folders given); refused unless
    ``allow_missing``: the merged file would lack their cameras and look whole. A part given twice
    is refused as such (rather than as the parts it then seems to lack), and so are parts that
    record their split differently (one edited: the first's count alone could hide a missing part)."""
    missing, partial = 0, []
    for key, held in sources.items():
        if not key.startswith("split "):
            continue
        first = _split_record(read[held[0]])[0]
        count = first.get("parts")
        folders: Dict[Any, str] = {}
        for k in held:
            # one edited by hand: the first's count alone could hide a missing part, and the first's
            # season_camera_depth alone made the merged file's
            record, holds = _split_record(read[k])
            for field in sorted(set(first) | set(record)):
                if first.get(field) != record.get(field):
                    raise ResultsError(f"'{paths[held[0]]}' records {field} {first.get(field)!r} of its split, "
                                       f"'{paths[k]}' {record.get(field)!r}: one was edited; give the files "
                                       "results split wrote")
            for folder in holds:
                if folder in folders:
                    raise ResultsError(f"the part for folder '{folder}' is in both '{folders[folder]}' and "
                                       f"'{paths[k]}'; give each part once")
                folders[folder] = paths[k]
        given = len(folders)
        if isinstance(count, int) and given < count:
            if not allow_missing:
                raise ResultsError(f"'{paths[held[0]]}' is one of a split's parts; {given} of its {count} parts "
                                   "are given: the merged file would lack the others' cameras; give every part "
                                   "(the files results split wrote), or --allow-missing to merge these (the file "
                                   "then records how many it lacks)")
            missing += count - given
            partial.append(dict(first, folders=sorted(folders, key=str)))
    return missing, partial


def _check_one_split(paths: Sequence[str], docs: Sequence[Dict[str, Any]], sources: Dict[str, List[int]]) -> None:
    """Parts of two splits merge only as the parts of shards' splits (``check_shards`` then sees
    each shard once): two seasons' files, or one file split by two rules, may hold disjoint cameras
    whose parts would make a file no run made, under one season's name."""
    splits = [held[0] for key, held in sources.items() if key.startswith("split ")]
    if len(splits) < 2 or all(_shards(docs[k]) for k in splits):
        return
    a, b = splits[0], splits[1]
    raise ResultsError(f"'{paths[a]}' and '{paths[b]}' are parts of different splits (of other files, or of one "
                       "file split by other rules): merge the parts of one split (the files one results split "
                       "wrote), or of each shard's split")


def latest_completion(docs: Sequence[Dict[str, Any]]) -> Optional[str]:
    """The latest ``detection_completion_time`` of the files (the merged run ended with its last
    shard), as written; times that do not read as ``YYYY-MM-DD HH:MM:SS`` (ISO) are passed over,
    and the first file's is kept when none does."""
    import datetime as dt

    times = [(d.get("info") or {}).get("detection_completion_time") for d in docs]
    read = []
    for t in times:
        try:
            read.append((dt.datetime.fromisoformat(str(t).strip()).replace(tzinfo=None), t))
        except ValueError:
            continue
    return max(read)[1] if read else times[0]


#: What makes the scores of two shards comparable: ``info.ssd_batch``'s and its ``inference``'s.
SCORING_SETTINGS = ("floor", "nms", "max_detections", "frame_every")
SCORING_INFERENCE = ("engine", "precision")


def scoring(doc: Dict[str, Any]) -> Dict[str, Any]:
    """How a results file's scores were made (None where it does not say, as older files)."""
    batch = (doc.get("info") or {}).get("ssd_batch") or {}
    inference = batch.get("inference") or {}
    return {**{k: batch.get(k) for k in SCORING_SETTINGS}, **{k: inference.get(k) for k in SCORING_INFERENCE}}


def scoring_difference(a: Dict[str, Any], b: Dict[str, Any]) -> Optional[Tuple[str, Any, Any]]:
    """The first of ``scoring``'s values that both record and that differ: (key, a's, b's)."""
    for key, value in b.items():
        if value is not None and a.get(key) is not None and value != a[key]:
            return key, a[key], value
    return None


def _merged_settings(doc: Dict[str, Any]) -> Dict[str, Any]:
    """``scoring`` and the camera rule: what one merged file can name only once."""
    return {**scoring(doc), "camera_depth": ((doc.get("info") or {}).get("ssd_batch") or {}).get("camera_depth")}


def _check_scoring(paths: Sequence[str], docs: Sequence[Dict[str, Any]]) -> None:
    """The merged file names one engine, precision, floor, NMS, cut per image and camera rule for
    every image: shards made otherwise are refused (a value a file does not record, as older ones,
    is not compared). Devices may differ (ONNX Runtime's scores agree on CPU and GPU): they are
    named together."""
    first = _merged_settings(docs[0])
    for p, d in zip(paths[1:], docs[1:]):
        differ = scoring_difference(first, _merged_settings(d))
        if differ:
            key, old, new = differ
            raise ResultsError(f"{key} differs: {old!r} in '{paths[0]}', {new!r} in '{p}': only "
                               "shards run with the same engine, precision, floor, NMS, --max-detections and "
                               "--camera-depth merge; "
                               "run that shard again with the others' settings")


def _devices(docs: Sequence[Dict[str, Any]]) -> str:
    """Each device the shards ran on, once, in order: ``"CPU; CUDA (…)"``."""
    seen: List[str] = []
    for d in docs:
        device = (((d.get("info") or {}).get("ssd_batch") or {}).get("inference") or {}).get("device")
        if device and device not in seen:
            seen.append(device)
    return "; ".join(seen)


Shard = Tuple[int, int]


def _shards(doc: Dict[str, Any]) -> Optional[List[Shard]]:
    """The ``(I, N)`` shards a file holds: its ``shard``, or a partial merge's ``shards_merged``
    (``None`` when it records neither: a whole run, or an older file)."""
    batch = (doc.get("info") or {}).get("ssd_batch") or {}
    try:
        if batch.get("shards_merged"):
            return [(int(i), int(n)) for i, n in batch["shards_merged"]]
        return [(int(batch["shard"][0]), int(batch["shard"][1]))] if batch.get("shard") else None
    except (TypeError, ValueError, IndexError, KeyError):
        raise ResultsError(f"info.ssd_batch.shard is {batch.get('shard')!r}: expected [I, N]") from None


def check_shards(paths: Sequence[str], docs: Sequence[Dict[str, Any]], allow_missing: bool = False) -> List[Shard]:
    """The shards missing from a set that is one season's ``--shard I/N`` runs: every file's N
    must agree and each I come once (2/4 beside 3/5, or shard 1/2 run twice, is not a partition);
    a missing I is refused unless ``allow_missing``. Nothing is checked when a file records no shard."""
    held = [(p, _shards(d)) for p, d in zip(paths, docs)]
    if any(s is None for _, s in held):
        return []
    (first_path, first), seen = held[0], {}
    for p, shards in held:
        for i, n in shards:
            if n != first[0][1]:
                raise ResultsError(f"'{first_path}' holds shard {first[0][0]}/{first[0][1]}, '{p}' shard {i}/{n}: "
                                   "only shards of one split (the same N in --shard I/N) merge")
            if i in seen:
                raise ResultsError(f"the shards overlap: shard {i}/{n} is in both '{seen[i]}' and '{p}'; "
                                   "give each shard's results once")
            seen[i] = p
    count = first[0][1]
    missing = [(i, count) for i in range(1, count + 1) if i not in seen]
    if missing and not allow_missing:
        raise ResultsError(f"shard(s) {', '.join(f'{i}/{n}' for i, n in missing)} missing: the merged file would "
                           "lack their images; give every shard's results, or --allow-missing to merge "
                           "these (the file then records which shards it lacks)")
    return missing


def merge_results(paths: Sequence[str], allow_missing: bool = False) -> Dict[str, Any]:
    """One document from several results files of the same detector (``ResultsError`` if not);
    every shard of a ``--shard I/N`` split must be there, unless ``allow_missing``."""
    if not paths:
        raise ResultsError("give at least two results files to merge")
    _check_finished(paths)
    read = [read_results(p) for p in paths]
    sources = _sources(paths, read)
    if len(paths) < 2 and _split_folder(read[0]) is None:       # one part alone is its split's file
        raise ResultsError("give at least two results files to merge")
    docs = [_unsplit(p, d) for p, d in zip(paths, read)]
    first = docs[0]
    for p, d in zip(paths[1:], docs[1:]):
        if d["detection_categories"] != first["detection_categories"]:
            raise ResultsError(f"'{p}' has categories {d['detection_categories']}, '{paths[0]}' has "
                               f"{first['detection_categories']}: only results of the same model merge")
        if (d.get("info") or {}).get("detector") != (first.get("info") or {}).get("detector"):
            raise ResultsError(f"'{p}' comes from detector {(d.get('info') or {}).get('detector')!r}, "
                               f"'{paths[0]}' from {(first.get('info') or {}).get('detector')!r}: "
                               "only results of the same model merge")
    _check_classifier(paths, docs)
    _check_weights(paths, docs)
    _check_names(paths, docs)
    _check_roots(paths, docs)
    _check_split_roots(paths, docs, [_split_folder(d) is not None for d in read])
    _check_scoring(paths, docs)
    _check_one_split(paths, docs, sources)
    parts_missing, partial = _parts_missing(paths, read, sources, allow_missing)
    whole = [held[0] for held in sources.values()]          # each shard once, however many its parts
    missing = check_shards([paths[k] for k in whole], [docs[k] for k in whole], allow_missing) if len(whole) > 1 else []
    seen: Dict[str, str] = {}
    images: List[Dict[str, Any]] = []
    for p, d in zip(paths, docs):
        for im in d["images"]:
            key = im["file"].replace("\\", "/")        # one image, whether written on Windows or not
            if key in seen:
                raise ResultsError(f"'{im['file']}' is in both '{seen[key]}' and '{p}': the files "
                                   "overlap; merge results of disjoint shards (or parts) only")
            seen[key] = p
            images.append(im)
    images.sort(key=lambda im: sort_key(im["file"]))
    info = dict(first.get("info") or {})
    if info.get("detection_completion_time") is not None or latest_completion(docs) is not None:
        info["detection_completion_time"] = latest_completion(docs)
    batch = dict(info.get("ssd_batch") or {})
    k = int(batch.get("flag_repeats") or 0)
    rule = file_camera_rule(first)
    if k:
        threshold = typical_threshold(first)
        flag_repeats(images, k, threshold, camera=rule)
    if batch.get("episode_gap"):
        assign_episodes(images, float(batch["episode_gap"]), rule)     # a burst may have been split between shards
    if "shard" in batch and len(whole) > 1:     # one split's parts make its file: a shard stays one
        batch["shard"] = None
        info["ssd_batch"] = batch
    held = batch.get("parts_merged")
    if isinstance(held, dict) and f"split {held.get('split')}" in sources:
        batch.pop("parts_missing", None)        # a partial merge's, merged again: what this one lacks is below
        batch.pop("parts_merged", None)         # (a note of another split, e.g. one split again, is kept)
        info["ssd_batch"] = batch
    if parts_missing:
        batch["parts_missing"] = parts_missing
        if len(partial) == 1:       # which parts it holds, so that it merges again with those it lacks
            batch["parts_merged"] = partial[0]
        info["ssd_batch"] = batch
    if ("shards_merged" in batch or missing) and len(whole) > 1:   # a partial merge says so, and merges again
        batch.pop("shards_merged", None)
        batch.pop("shards_missing", None)
        if missing:
            batch["shards_merged"] = sorted([i, n] for d in docs for i, n in (_shards(d) or []))
            batch["shards_missing"] = [list(s) for s in missing]
        info["ssd_batch"] = batch
    if "model_weights" in batch and len({str(_weights(d)) for d in docs}) > 1:
        batch.pop("model_weights")           # a shard records none (_check_weights let it by): unknown
        info["ssd_batch"] = batch
    if "cut_short" in batch:                 # the merged file's count, not the first shard's
        batch["cut_short"] = sum(is_cut_short(im) for im in images)
        info["ssd_batch"] = batch
    if batch.get("inference") and len(docs) > 1 and _devices(docs):
        batch["inference"] = dict(batch["inference"], device=_devices(docs))
        info["ssd_batch"] = batch
    return {"info": info, "detection_categories": dict(first["detection_categories"]),
            **classification_head(first), "images": images}
