"""Joining shards: N machines each ran ``--shard I/N``; one results file comes out.

Refused, with the reason: files of different models or categories (their scores mean different
things) and files that both contain an image (an overlap means the shards were not a partition,
and silently keeping one of two answers would hide it). Images come out in the walk order
(``megadetector.sort_key``), so merged shards equal one run over the folder; repeated boxes are
flagged again over the whole set, since a camera's images were split between shards, and so are
episodes (a burst's frames fall into different shards).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

from ssd.base.safe_paths import PathRefused, name_parts
from ssd.camtrap.megadetector import ResultsError, read_results, sort_key, typical_threshold
from ssd.camtrap.episodes import assign_episodes
from ssd.camtrap.repeats import flag_repeats


def _check_names(paths: Sequence[str], docs: Sequence[Dict[str, Any]]) -> None:
    """Shards of one folder name their images relative to it (or all absolutely, with
    ``--absolute-paths``): a name with ``..``, or an absolute one among relative ones, is refused."""
    absolute = {p: all(im["file"].replace("\\", "/").startswith("/") for im in d["images"]) for p, d in zip(paths, docs)}
    all_absolute = all(absolute.values())
    for p, d in zip(paths, docs):
        for im in d["images"]:
            name = im["file"]
            try:
                if all_absolute:
                    name_parts(name.lstrip("/"))
                else:
                    name_parts(name)
            except PathRefused as why:
                raise ResultsError(f"'{p}': image {name!r} {why}, outside the folder the shards share; "
                                   "merge results whose names are relative to one folder "
                                   "(or all absolute)") from None


def merge_results(paths: Sequence[str]) -> Dict[str, Any]:
    """One document from several results files of the same detector (``ResultsError`` if not)."""
    if len(paths) < 2:
        raise ResultsError("give at least two results files to merge")
    docs = [read_results(p) for p in paths]
    first = docs[0]
    for p, d in zip(paths[1:], docs[1:]):
        if d["detection_categories"] != first["detection_categories"]:
            raise ResultsError(f"'{p}' has categories {d['detection_categories']}, '{paths[0]}' has "
                               f"{first['detection_categories']}: only results of the same model merge")
        if (d.get("info") or {}).get("detector") != (first.get("info") or {}).get("detector"):
            raise ResultsError(f"'{p}' comes from detector {(d.get('info') or {}).get('detector')!r}, "
                               f"'{paths[0]}' from {(first.get('info') or {}).get('detector')!r}: "
                               "only results of the same model merge")
    _check_names(paths, docs)
    seen: Dict[str, str] = {}
    images: List[Dict[str, Any]] = []
    for p, d in zip(paths, docs):
        for im in d["images"]:
            if im["file"] in seen:
                raise ResultsError(f"'{im['file']}' is in both '{seen[im['file']]}' and '{p}': the shards "
                                   "overlap; merge results of disjoint shards only")
            seen[im["file"]] = p
            images.append(im)
    images.sort(key=lambda im: sort_key(im["file"]))
    info = dict(first.get("info") or {})
    batch = dict(info.get("ssd_batch") or {})
    k = int(batch.get("flag_repeats") or 0)
    if k:
        threshold = typical_threshold(first)
        flag_repeats(images, k, threshold)
    if batch.get("episode_gap"):
        assign_episodes(images, float(batch["episode_gap"]))     # a burst may have been split between shards
    if "shard" in batch:
        batch["shard"] = None
        info["ssd_batch"] = batch
    return {"info": info, "detection_categories": dict(first["detection_categories"]), "images": images}
