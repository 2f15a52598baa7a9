"""Episodes: the frames one trigger of a camera took, grouped by camera folder and time stamp.

Why: a camera trap takes a burst of 3–10 frames per trigger, and often the animal is in only some
of them. Counting, sorting and reviewing frame by frame splits one visit into many and sends the
empty frames of a burst away from the animal they belong to. Timelapse groups such frames into
"episodes" by time; here the same rule is applied when a run ends, and each results entry gets
its episode id (``"episode": "siteA/cam1#3"``), so counts, sorting and the browser can work per
visit.

The rule (Timelapse's): within one camera (``cameras.CameraRule``: a folder without its date and
card-overflow folders, or the first N folder levels), images sorted by their EXIF time belong to
the same episode while each is at most ``gap`` seconds after the one before it (default 120 s,
Timelapse's 2 minutes). An image without a time stamp (or that could not be read) stands alone,
an episode of one, and is counted as such (``untimed``). Ids number a camera's episodes 1, 2, …
in time order, the untimed ones after the timed ones in file order: they depend only on that
camera's files, so adding another camera's card does not renumber this one's.
"""
from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set

from ssd.camtrap.cameras import CameraRule, file_camera_rule
from ssd.camtrap.megadetector import Threshold, image_state, shown_detections
from ssd.data.exif import _FORMATS, parse_time  # noqa: F401 - results code reads time stamps from here
from ssd.inference.filtering import ShownFilter

DEFAULT_EPISODE_GAP = 120.0          # seconds; Timelapse's default (it allows 1 s to 30 min)


class EpisodeFinder:
    """Episodes of a run's entries, fed one entry at a time (they stay on disk, in the journal).

    Holds one camera number and one time per entry (16 bytes), never the entries.
    """

    def __init__(self, rule: Optional[CameraRule] = None) -> None:
        self._camera = (rule or CameraRule()).camera_of
        self._folders: Dict[str, int] = {}
        self._folder = array("q")
        self._time = array("d")

    def add(self, file: str, datetime: Any) -> None:
        """The next entry's file and time stamp (None or unreadable: it stands alone)."""
        f = self._camera(file)
        self._folder.append(self._folders.setdefault(f, len(self._folders)))
        t = parse_time(datetime)
        self._time.append(float("nan") if t is None else t)

    def ids(self, gap: float = DEFAULT_EPISODE_GAP) -> List[str]:
        """One episode id per entry added, in the order they were added."""
        names = {v: k for k, v in self._folders.items()}
        by_folder: Dict[int, List[int]] = {}
        for k, f in enumerate(self._folder):
            by_folder.setdefault(f, []).append(k)
        out: List[str] = [""] * len(self._folder)
        for f, members in by_folder.items():
            timed = sorted((k for k in members if self._time[k] == self._time[k]), key=lambda k: (self._time[k], k))
            n, prev = 0, None
            for k in timed:
                if prev is None or self._time[k] - prev > gap:
                    n += 1
                out[k] = _episode_id(names[f], n)
                prev = self._time[k]
            for k in members:
                if self._time[k] != self._time[k]:
                    n += 1
                    out[k] = _episode_id(names[f], n)
        return out


def _episode_id(folder: str, n: int) -> str:
    return f"{folder or '.'}#{n}"


def assign_episodes(images: List[Dict[str, Any]], gap: float = DEFAULT_EPISODE_GAP,
                    rule: Optional[CameraRule] = None) -> None:
    """Set every entry's ``episode`` (in place), from its camera folder and ``datetime``."""
    finder = EpisodeFinder(rule)
    for im in images:
        finder.add(im["file"], im.get("datetime"))
    for im, eid in zip(images, finder.ids(gap)):
        im["episode"] = eid


def records_camera_rule(doc: Dict[str, Any]) -> bool:
    """Whether a results file says which camera rule its episodes were made with."""
    return "camera_depth" in (((doc.get("info") or {}).get("ssd_batch")) or {})


def file_gap(doc: Dict[str, Any]) -> float:
    """The gap a results file's episodes were made with (``info.ssd_batch.episode_gap``), else the default."""
    gap = ((doc.get("info") or {}).get("ssd_batch") or {}).get("episode_gap")
    return float(gap) if isinstance(gap, (int, float)) and not isinstance(gap, bool) and gap > 0 \
        else DEFAULT_EPISODE_GAP


def regroup_episodes(doc: Dict[str, Any], gap: Optional[float] = None, rule: Optional[CameraRule] = None) -> None:
    """Episodes made again (in place) with another gap and/or camera rule, recorded in the
    document's ``info.ssd_batch`` so that what reads it next (counts, deployments, the package's
    metadata) uses them too; nothing asked for: the file's episodes stay as they are."""
    if gap is None and rule is None:
        return
    gap = file_gap(doc) if gap is None else gap
    rule = file_camera_rule(doc) if rule is None else rule
    info = doc.setdefault("info", {})
    info["ssd_batch"] = dict(info.get("ssd_batch") or {}, episode_gap=gap, camera_depth=rule.recorded())
    assign_episodes(doc.get("images", []), gap, rule)


def regrouped(doc: Dict[str, Any], gap: Optional[float] = None, rule: Optional[CameraRule] = None) -> Dict[str, Any]:
    """``regroup_episodes`` on a copy: the page regroups a file it shares between reruns and
    sessions (read once per version on disk), which must never change. The copy holds new entry
    dicts (their ``episode`` is set) and a new ``info``; the detections are shared, only read.
    Asked for what the file records already: ``doc`` itself, nothing copied or recomputed."""
    if (gap is None or gap == file_gap(doc)) and (rule is None or rule == file_camera_rule(doc)):
        return doc
    out = dict(doc, info=dict(doc.get("info") or {}), images=[dict(im) for im in doc.get("images", [])])
    regroup_episodes(out, gap, rule)
    return out


def episode_ids(doc: Dict[str, Any], gap: Optional[float] = None) -> List[str]:
    """One id per entry: the file's own ``episode`` fields, or computed (with ``gap``, else the
    file's gap, and the file's camera rule) when a gap is asked for, some entry has none
    (MegaDetector's own files), or the file records no camera rule (written before there was
    one: its ids were made per immediate folder, a day folder apart from its camera's other days,
    while its deployments and repeats now follow the automatic rule)."""
    images = doc.get("images", [])
    if gap is None and records_camera_rule(doc) and all(isinstance(im.get("episode"), str) for im in images):
        return [im["episode"] for im in images]
    finder = EpisodeFinder(file_camera_rule(doc))
    for im in images:
        finder.add(im["file"], im.get("datetime"))
    return finder.ids(file_gap(doc) if gap is None else gap)


def episode_groups(doc: Dict[str, Any], gap: Optional[float] = None) -> Dict[str, List[int]]:
    """Episode id → positions of its entries in ``doc["images"]``, ordered by time then file.

    Groups come in the order their first entry appears in the file.
    """
    images = doc.get("images", [])
    groups: Dict[str, List[int]] = {}
    for k, eid in enumerate(episode_ids(doc, gap)):
        groups.setdefault(eid, []).append(k)
    for members in groups.values():
        members.sort(key=lambda k: (parse_time(images[k].get("datetime")) or 0.0, k))
    return groups


def episode_classes(doc: Dict[str, Any], members: Iterable[int], shown: ShownFilter) -> List[str]:
    """The classes shown in any frame of an episode, in category order."""
    names = doc.get("detection_categories") or {}
    return _class_names(names, {d["category"] for k in members
                                for d in shown_detections(doc["images"][k], shown, names=names)})


def _class_names(names: Dict[str, str], found: Set[Any]) -> List[str]:
    """Class names of the category ids ``found``, in category order (ids the file does not list last)."""
    return [names[c] for c in names if c in found] + sorted(str(c) for c in found if c not in names)


def episode_state(doc: Dict[str, Any], members: List[int], shown: ShownFilter) -> str:
    """``detections`` if any frame shows one, ``failed`` if every frame failed, else ``empty``."""
    names = doc.get("detection_categories") or {}
    states = {image_state(doc["images"][k], shown, names=names) for k in members}
    return "detections" if "detections" in states else ("failed" if states == {"failed"} else "empty")


@dataclass(frozen=True)
class EpisodeLayout:
    """What a results file's episodes are, whatever the threshold: their members (``episode_groups``),
    how many are untimed single images, the camera folders, the gap and rule they were made with.

    Why apart from the counts: grouping 100,000 entries (time stamps parsed, members sorted,
    camera folders found) took longer than counting them, and a threshold move changes none of it;
    the page keeps one layout per version of the file.
    """

    groups: Dict[str, List[int]]
    untimed: int
    cameras: int
    gap: float
    camera_rule: str


def episode_layout(doc: Dict[str, Any], gap: Optional[float] = None) -> EpisodeLayout:
    """The episodes of ``doc`` (with ``gap``, else the file's own), grouped once."""
    images = doc.get("images", [])
    rule = file_camera_rule(doc)
    groups = episode_groups(doc, gap)
    untimed = sum(1 for m in groups.values() if len(m) == 1 and parse_time(images[m[0]].get("datetime")) is None)
    return EpisodeLayout(groups, untimed, len({rule.camera_of(im["file"]) for im in images}),
                         file_gap(doc) if gap is None else gap, rule.describe())


def shown_categories(doc: Dict[str, Any], shown: ShownFilter) -> List[Optional[FrozenSet[str]]]:
    """Per entry, the category ids it shows at ``shown`` (None: it failed, as ``image_state`` says)."""
    names = doc.get("detection_categories") or {}
    return [None if im.get("failure") is not None or im.get("detections") is None
            else frozenset(d["category"] for d in shown_detections(im, shown, names=names))
            for im in doc.get("images", [])]


def episode_counts(doc: Dict[str, Any], threshold: Threshold, gap: Optional[float] = None,
                   layout: Optional[EpisodeLayout] = None,
                   shown_cats: Optional[Sequence[Optional[FrozenSet[str]]]] = None) -> Dict[str, Any]:
    """Episodes in all, with detections, empty, failed, untimed (single images without a time
    stamp, each its own episode) and per class (episodes with that class in any frame).

    ``layout`` (``episode_layout`` of this file and ``gap``) and ``shown_cats`` (``shown_categories``
    at this threshold) may come from the caller, which has them already: ``summarize`` filters each
    entry once for images and episodes, the page groups once per version of the file. The counts are
    those of ``episode_state`` and ``episode_classes`` per episode (a test holds them to it).
    """
    names = doc.get("detection_categories") or {}
    layout = episode_layout(doc, gap) if layout is None else layout
    cats = shown_categories(doc, ShownFilter.at(threshold)) if shown_cats is None else shown_cats
    out: Dict[str, Any] = {"episodes": len(layout.groups), "with_detections": 0, "empty": 0, "failed": 0,
                           "untimed": layout.untimed, "per_class": {n: 0 for n in names.values()},
                           "gap": layout.gap, "camera_rule": layout.camera_rule, "cameras": layout.cameras}
    for members in layout.groups.values():
        found: Set[str] = set()
        failed = True
        for k in members:
            c = cats[k]
            if c is not None:
                failed = False
                found.update(c)
        out["with_detections" if found else "failed" if failed else "empty"] += 1
        for name in _class_names(names, found):
            out["per_class"][name] = out["per_class"].get(name, 0) + 1
    return out


def with_episode(text: str, episode: str) -> str:
    """A compact JSON entry with its ``episode`` set: appended to the text when it has none (the
    usual case: no parse), else parsed and replaced (entries adopted from older results)."""
    if '"episode"' not in text:
        return text[:-1] + ',"episode":' + json.dumps(episode) + "}"
    entry = json.loads(text)
    entry["episode"] = episode
    return json.dumps(entry, separators=(",", ":"))
