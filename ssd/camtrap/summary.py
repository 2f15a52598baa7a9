"""What a finished batch found: images, empty, failed, detections per class at a threshold.

The first question after a season's run ("how many images have animals?") and the totals the
app's results browser shows; the CLI's ``results summary`` prints the same numbers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Optional

from ssd.base.text import terminal_safe
from ssd.camtrap.megadetector import Threshold, is_cut_short, is_failed, shown_detections
from ssd.inference.filtering import ShownFilter

if TYPE_CHECKING:
    from ssd.camtrap.episodes import EpisodeLayout


def summarize(doc: Dict[str, Any], threshold: Threshold, hide_suspect: bool = True,
              layout: Optional["EpisodeLayout"] = None) -> Dict[str, Any]:
    """Counts at ``threshold``: images, with detections, empty, failed, suspect; per class; episodes.

    ``cut_short`` counts the videos that ended before their header said (``video.cut_short``):
    counted among the images read (their detections stand), and apart, as they may miss an animal.

    ``threshold`` is a number or a ``ShownFilter`` (per-class thresholds).
    ``per_class_images`` counts images with at least one detection of the class,
    ``per_class_detections`` the detections themselves (suspect repeats left out when hidden).
    ``episodes`` (``episodes.episode_counts``) counts bursts the same way, from the same filtering
    of each entry (one pass for both); ``layout`` (``episodes.episode_layout``, which does not depend
    on the threshold) spares grouping the entries again when the caller keeps it.
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
    return out


def summary_text(s: Dict[str, Any], threshold: Threshold) -> str:
    """The summary as lines for a terminal: images and episodes side by side (class names, from the
    file, with control characters escaped)."""
    shown = ShownFilter.at(threshold)
    e = s.get("episodes") or {}
    per = "".join(f", {terminal_safe(k)} {v:g}" for k, v in shown.per_class)
    lines = [f"threshold {shown.threshold:g}{per}",
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
    return "\n".join(lines)
