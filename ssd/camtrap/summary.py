"""What a finished batch found: images, empty, failed, detections per class at a threshold.

The first question after a season's run ("how many images have animals?") and the totals the
app's results browser shows; the CLI's ``results summary`` prints the same numbers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, List, Optional, Tuple

from ssd.base.text import terminal_safe
from ssd.camtrap.megadetector import Threshold, is_cut_short, is_failed, shown_detections
from ssd.camtrap.species import SPECIES_THRESHOLD, species_names, top_classification, top_pair
from ssd.inference.filtering import ShownFilter

if TYPE_CHECKING:
    from ssd.camtrap.episodes import EpisodeLayout


def summarize(doc: Dict[str, Any], threshold: Threshold, hide_suspect: bool = True,
              layout: Optional["EpisodeLayout"] = None, species_threshold: float = SPECIES_THRESHOLD
              ) -> Dict[str, Any]:
    """Counts at ``threshold``: images, with detections, empty, failed, suspect; per class; episodes.

    ``cut_short`` counts the videos that ended before their header said (``video.cut_short``):
    counted among the images read (their detections stand), and apart, as they may miss an animal.

    ``threshold`` is a number or a ``ShownFilter`` (per-class thresholds).
    ``per_class_images`` counts images with at least one detection of the class,
    ``per_class_detections`` the detections themselves (suspect repeats left out when hidden).
    ``episodes`` (``episodes.episode_counts``) counts bursts the same way, from the same filtering
    of each entry (one pass for both); ``layout`` (``episodes.episode_layout``, which does not depend
    on the threshold) spares grouping the entries again when the caller keeps it.

    A file classified into species (``classification_categories``) also gets ``species_threshold``,
    ``per_species_images`` and ``per_species_detections``: each detection shown counts for its top
    species where that classification scores at least ``species_threshold`` (``species``); other
    files' counts stay as they were, key for key.
    """
    from ssd.camtrap.episodes import episode_counts

    names = doc.get("detection_categories") or {}
    shown = ShownFilter.at(threshold, hide_suspect)
    out: Dict[str, Any] = {"images": 0, "with_detections": 0, "empty": 0, "failed": 0, "suspect_detections": 0,
                           "cut_short": 0,
                           "per_class_images": {n: 0 for n in names.values()},
                           "per_class_detections": {n: 0 for n in names.values()}}
    shown_cats: List[Optional[FrozenSet[str]]] = []        # per entry, for the episode counts
    for im in doc.get("images", []):
        out["images"] += 1
        failed = is_failed(im)
        dets = [] if failed else shown_detections(im, shown, names=names)             # once per entry
        out["failed" if failed else "with_detections" if dets else "empty"] += 1
        out["cut_short"] += is_cut_short(im)
        out["suspect_detections"] += sum(1 for d in im.get("detections") or [] if d.get("suspect")
                                         and d.get("conf", 0) >= shown.threshold_of(names.get(d.get("category"), "")))
        cats = frozenset(d["category"] for d in dets)
        shown_cats.append(None if failed else cats)
        for d in dets:
            name = names.get(d["category"], d["category"])
            out["per_class_detections"][name] = out["per_class_detections"].get(name, 0) + 1
        for name in {names.get(c, c) for c in cats}:
            out["per_class_images"][name] = out["per_class_images"].get(name, 0) + 1
    out["episodes"] = episode_counts(doc, shown, layout=layout, shown_cats=shown_cats)
    out.update(species_counts(doc, shown, species_threshold))
    out.update(coverage(doc))   # only where it applies: other files' counts stay as they were, key for key
    return out


def species_counts(doc: Dict[str, Any], shown: ShownFilter, species_threshold: float) -> Dict[str, Any]:
    """``summarize``'s species keys (none for a file without species classes): images and detections
    shown at ``shown`` per top species scoring at least ``species_threshold``."""
    species = species_names(doc)
    if species is None:
        return {}
    names = doc.get("detection_categories") or {}
    images = {n: 0 for n in species.values()}
    detections = dict(images)
    for im in doc.get("images", []):
        seen = set()
        for d in [] if is_failed(im) else shown_detections(im, shown, names=names):
            top = top_classification(d, species)
            if top is not None and top[1] >= species_threshold:
                detections[top[0]] += 1
                seen.add(top[0])
        for name in seen:
            images[name] += 1
    return {"species_threshold": species_threshold, "per_species_images": images,
            "per_species_detections": detections}


def coverage(doc: Dict[str, Any]) -> Dict[str, Any]:
    """What of the season a file lacks, as the counts report it (the summary's and the sweep's):
    ``shard`` ``[I, N]`` for one shard's file, ``shards_missing`` and ``parts_missing`` for a merge
    made with ``--allow-missing`` (``merging``); none of them for a whole file, or a value that
    cannot be read (the counts make no claim they cannot read)."""
    out: Dict[str, Any] = {}
    shard = shard_of(doc)
    if shard:
        out["shard"] = list(shard)
    batch = (doc.get("info") or {}).get("ssd_batch")
    batch = batch if isinstance(batch, dict) else {}
    lacking = batch.get("shards_missing")
    if (isinstance(lacking, list) and lacking
            and all(isinstance(s, list) and len(s) == 2 and all(_whole(v) for v in s) for s in lacking)):
        out["shards_missing"] = [list(s) for s in lacking]
    parts = batch.get("parts_missing")
    if _whole(parts) and parts > 0:
        out["parts_missing"] = parts
    return out


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def coverage_notes(counts: Dict[str, Any]) -> List[str]:
    """One line for each of ``coverage``'s keys in ``counts``: what ``results summary``, its
    ``--sweep`` and the page say above counts that are not the season's."""
    notes = [shard_note(counts["shard"])] if counts.get("shard") else []
    if counts.get("shards_missing"):
        notes.append("merged without shard(s) " + ", ".join(f"{i}/{n}" for i, n in counts["shards_missing"])
                     + ": counts lack their images; merge them in (`results merge`) for the season")
    if counts.get("parts_missing"):
        notes.append(f"merged without {counts['parts_missing']} part(s) of a split: counts lack their cameras' "
                     "images")
    return notes


def shard_of(doc: Dict[str, Any]) -> Optional[Tuple[int, int]]:
    """``(I, N)`` when ``doc`` is one ``--shard I/N`` run's file (``info.ssd_batch.shard``), else
    ``None`` (a merged file records ``None``; a value that is not two whole numbers 1 ≤ I ≤ N is
    passed over: the summary makes no claim it cannot read).

    Why: a shard's counts cover only its files, and a burst split between shards is an episode in
    each; read alone, they look like the season's."""
    batch = (doc.get("info") or {}).get("ssd_batch")
    shard = batch.get("shard") if isinstance(batch, dict) else None
    if (isinstance(shard, list) and len(shard) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in shard) and 1 <= shard[0] <= shard[1]):
        return shard[0], shard[1]
    return None


def shard_note(shard: Tuple[int, int]) -> str:
    """The one line the summary, ``results summary`` and the page give a shard's file."""
    return (f"shard {shard[0]} of {shard[1]}: counts cover only its files; "
            "merge the shards (`results merge`) for the season")


def read_for_summary(path: str, shown_for: Callable[[Dict[str, Any]], ShownFilter],
                     sweep: bool = False) -> Dict[str, Any]:
    """The results file ``path`` as ``summarize`` (or, ``sweep``, ``sweep.threshold_sweep``) reads
    it at ``shown_for(head)``, and the episode code with it: every field of the head, and per
    entry only ``summary_entry`` of it. Refused as ``read_results`` refuses it.

    Why: the file holds every box down to the results floor, ~84 an image; parsed whole, a season
    of 100,000 images needed ~4.3 GB to print a dozen numbers (``results_stream``). ``results
    sort`` reads the same of each entry (``sorting.folder_for``, ``episode_folders``).
    """
    from ssd.camtrap.results_stream import read_results_kept

    def keep_for(head: Dict[str, Any]) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
        shown, shared, species = shown_for(head), {}, species_names(head)
        return lambda entry: summary_entry(entry, shown, sweep, shared, species)
    return read_results_kept(path, keep_for)


#: How many distinct boxless detections ``summary_entry`` shares at most (a file's confidences
#: are mostly rounded, to 3 decimals by MegaDetector: a few thousand (category, score) pairs).
SHARED_DETECTIONS = 2 ** 16


def summary_entry(entry: Dict[str, Any], shown: ShownFilter, sweep: bool = False,
                  shared: Optional[Dict[Any, Dict[str, Any]]] = None,
                  species: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """What the counts at ``shown`` read of a checked entry: its name, time stamp and episode (the
    episodes), failure and warning (failed, cut short), and of its detections only those that can
    count, each without its box: those scoring at least ``shown``'s lowest threshold (shown or
    counted as suspect; the rest no class shows) or, for the sweep, each category's best (suspect
    ones left out when ``shown`` hides them), which is all ``threshold_sweep`` looks at.

    ``shared`` (one per file) holds one boxless detection per (category, score, suspect), read
    only by the counts: a low threshold shows dozens of boxes an image, each then 8 bytes.
    ``species`` (the file's species classes): each detection kept keeps its top classification alone
    (``species.top_pair``), as ``classifications``, for the per-species counts."""
    out = {k: entry[k] for k in ("file", "datetime", "episode", "failure", "warning") if k in entry}
    dets = entry.get("detections")
    if dets is None:
        out["detections"] = None
        return out
    if sweep:
        best: Dict[str, float] = {}
        for d in dets:
            if shown.hide_suspect and d.get("suspect"):
                continue
            cat, conf = str(d.get("category")), float(d.get("conf", 0.0))
            if conf > best.get(cat, -1.0):
                best[cat] = conf
        kept = [{"category": c, "conf": v} for c, v in best.items()]
    else:
        floor = shown.lowest()
        kept = [_kept_detection(d, species) for d in dets if d.get("conf", 0) >= floor]
    if shared is not None:
        for i, d in enumerate(kept):
            top = d.get("classifications")
            key = (d["category"], d["conf"].__class__, d["conf"], "suspect" in d, d.get("suspect"),
                   tuple(top[0]) if top else None)
            kept[i] = shared.get(key, d) if len(shared) >= SHARED_DETECTIONS else shared.setdefault(key, d)
    out["detections"] = kept
    return out


def _kept_detection(d: Dict[str, Any], species: Optional[Dict[str, str]]) -> Dict[str, Any]:
    """What the counts read of a detection: class, score, suspect flag and, where the file has
    species classes and it a valid classification, its top one (``[[id, score]]``)."""
    kept = {k: d[k] for k in ("category", "conf", "suspect") if k in d}
    top = top_pair(d, species) if species is not None else None
    if top is not None:
        kept["classifications"] = [list(top)]
    return kept


def summary_text(s: Dict[str, Any], threshold: Threshold) -> str:
    """The summary as lines for a terminal: images and episodes side by side (class names, from the
    file, with control characters escaped)."""
    shown = ShownFilter.at(threshold)
    e = s.get("episodes") or {}
    per = "".join(f", {terminal_safe(k)} {v:g}" for k, v in shown.per_class)
    lines = coverage_notes(s)
    lines += [f"threshold {shown.threshold:g}{per}",
             "                    images  episodes",
             f"all               {s['images']:>8}  {e.get('episodes', 0):>8}",
             f"with detections   {s['with_detections']:>8}  {e.get('with_detections', 0):>8}",
             f"empty             {s['empty']:>8}  {e.get('empty', 0):>8}",
             f"failed            {s['failed']:>8}  {e.get('failed', 0):>8}"]
    if "camera_rule" in e:
        lines.append(f"episodes: frames at most {e['gap']:g} s apart in one of {e['cameras']} camera folder(s) "
                     f"({e['camera_rule']})")
    if e.get("untimed"):
        lines.append(f"{e['untimed']} image(s) without a time stamp: each is an episode of its own")
    if s.get("cut_short"):
        lines.append(f"cut short         {s['cut_short']} video(s) ended before their header said: "
                     "detections from the frames read")
    if s["suspect_detections"]:
        counted = "not counted below" if shown.hide_suspect else "counted below (--show-suspect)"
        lines.append(f"suspect repeats   {s['suspect_detections']} detection(s), {counted}")
    lines.append("class               images  episodes  detections")
    for name in s["per_class_images"]:
        lines.append(f"{terminal_safe(name):<16} {s['per_class_images'][name]:>9}  {(e.get('per_class') or {}).get(name, 0):>8}  "
                     f"{s['per_class_detections'].get(name, 0):>10}")
    if "per_species_images" in s:
        lines.append(f"species (classification score ≥ {s['species_threshold']:g})  images  detections")
        for name, n in s["per_species_images"].items():
            lines.append(f"{terminal_safe(name):<26} {n:>9}  {s['per_species_detections'].get(name, 0):>10}")
    return "\n".join(lines)
