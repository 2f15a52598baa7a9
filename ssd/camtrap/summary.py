"""What a finished batch found: images, empty, failed, detections per class at a threshold.

The first question after a season's run ("how many images have animals?") and the totals the
app's results browser shows; the CLI's ``results summary`` prints the same numbers.
"""
from __future__ import annotations

from typing import Any, Dict

from ssd.base.text import terminal_safe
from ssd.camtrap.megadetector import image_state, shown_detections


def summarize(doc: Dict[str, Any], threshold: float, hide_suspect: bool = True) -> Dict[str, Any]:
    """Counts at ``threshold``: images, with detections, empty, failed, suspect; per class.

    ``per_class_images`` counts images with at least one detection of the class,
    ``per_class_detections`` the detections themselves (suspect repeats left out when hidden).
    """
    names = doc.get("detection_categories") or {}
    out: Dict[str, Any] = {"images": 0, "with_detections": 0, "empty": 0, "failed": 0, "suspect_detections": 0,
                           "per_class_images": {n: 0 for n in names.values()},
                           "per_class_detections": {n: 0 for n in names.values()}}
    for im in doc.get("images", []):
        out["images"] += 1
        state = image_state(im, threshold, hide_suspect)
        out[{"failed": "failed", "empty": "empty", "detections": "with_detections"}[state]] += 1
        out["suspect_detections"] += sum(1 for d in im.get("detections") or []
                                         if d.get("suspect") and d.get("conf", 0) >= threshold)
        seen = set()
        for d in shown_detections(im, threshold, hide_suspect):
            name = names.get(d["category"], d["category"])
            out["per_class_detections"][name] = out["per_class_detections"].get(name, 0) + 1
            seen.add(name)
        for name in seen:
            out["per_class_images"][name] = out["per_class_images"].get(name, 0) + 1
    return out


def summary_text(s: Dict[str, Any], threshold: float) -> str:
    """The summary as lines for a terminal (class names with control characters escaped)."""
    lines = [f"threshold {threshold:g}",
             f"images           {s['images']}",
             f"with detections  {s['with_detections']}",
             f"empty            {s['empty']}",
             f"failed           {s['failed']}"]
    if s["suspect_detections"]:
        lines.append(f"suspect repeats  {s['suspect_detections']} detection(s), not counted below")
    lines.append("class            images  detections")
    for name in s["per_class_images"]:
        lines.append(f"{terminal_safe(name):<16} {s['per_class_images'][name]:>7}  "
                     f"{s['per_class_detections'].get(name, 0):>10}")
    return "\n".join(lines)
