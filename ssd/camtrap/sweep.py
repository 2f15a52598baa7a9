"""What moving the threshold does to a whole season: images and episodes with detections per class
at thresholds 0.05–0.95, and how many change state against the threshold in use.

Why: the threshold decides which photos a person looks at and which go to "empty" unseen. A
single number hides how much rides on it; the sweep shows, for each candidate threshold, how many
images (and bursts) would keep a detection and how many would flip between "empty" and
"detections" compared with now, so the choice can be made on the season itself. No network runs:
every detection down to the floor is in the results file already.

Counted: an image "has detections" at ``t`` when any of its detections scores ≥ ``t`` (suspect
repeats left out when the filter hides them); an episode when any of its frames has; images that
failed are in neither count. "Changed" compares that with the state under the current filter
(whose per-class thresholds count), so at the current threshold it is 0.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from ssd.camtrap.episodes import episode_groups
from ssd.camtrap.megadetector import Threshold
from ssd.camtrap.summary import coverage, coverage_notes
from ssd.inference.filtering import ShownFilter

SWEEP_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))     # 0.05, 0.10, … 0.95


def _class_maxima(doc: Dict[str, Any], shown: ShownFilter) -> np.ndarray:
    """(images, classes) best score per class (-1: none); a failed image's row is NaN."""
    cats = list((doc.get("detection_categories") or {}).keys())
    col = {c: j for j, c in enumerate(cats)}
    images = doc.get("images", [])
    out = np.full((len(images), max(1, len(cats))), -1.0)
    for i, im in enumerate(images):
        if im.get("failure") is not None or im.get("detections") is None:
            out[i] = np.nan
            continue
        for d in im["detections"]:
            j = col.get(str(d.get("category")))
            if j is None or (shown.hide_suspect and d.get("suspect")):
                continue
            out[i, j] = max(out[i, j], float(d.get("conf", 0.0)))
    return out


def _episode_maxima(doc: Dict[str, Any], per_image: np.ndarray) -> np.ndarray:
    """(episodes, classes) best score over each episode's frames (NaN where every frame failed)."""
    groups = list(episode_groups(doc).values())
    out = np.full((len(groups), per_image.shape[1]), np.nan)
    for e, members in enumerate(groups):
        rows = per_image[members]
        ok = rows[~np.isnan(rows[:, 0])]
        if len(ok):
            out[e] = ok.max(axis=0)
    return out


def _current(maxima: np.ndarray, doc: Dict[str, Any], shown: ShownFilter) -> np.ndarray:
    names = list((doc.get("detection_categories") or {}).values())
    limits = np.array([shown.threshold_of(n) for n in names] or [shown.threshold])
    return (maxima >= limits).any(axis=1)


def threshold_sweep(doc: Dict[str, Any], current: Threshold, thresholds: Optional[List[float]] = None,
                    hide_suspect: bool = True) -> Dict[str, Any]:
    """Counts per threshold (see the module docstring); lists aligned with ``thresholds``, and
    ``summary.coverage``'s keys where the file is not the whole season (the summary's, said the same)."""
    shown = ShownFilter.at(current, hide_suspect)
    ts = list(thresholds or SWEEP_THRESHOLDS)
    names = list((doc.get("detection_categories") or {}).values())
    out: Dict[str, Any] = {"thresholds": ts, "current": shown.threshold, "per_class_current": dict(shown.per_class)}
    per_image = _class_maxima(doc, shown)
    for unit, maxima in (("images", per_image), ("episodes", _episode_maxima(doc, per_image))):
        valid = ~np.isnan(maxima[:, 0])
        m = maxima[valid]
        now = _current(m, doc, shown)
        out[f"{unit}_counted"] = int(valid.sum())
        out[f"{unit}_with_detections_now"] = int(now.sum())
        out[f"{unit}_with_detections"] = [int((m >= t).any(axis=1).sum()) for t in ts]
        out[f"{unit}_changed"] = [int(((m >= t).any(axis=1) != now).sum()) for t in ts]
        out[f"per_class_{unit}"] = {n: [int((m[:, j] >= t).sum()) for t in ts] for j, n in enumerate(names)}
    out.update(coverage(doc))
    return out


def sweep_text(s: Dict[str, Any]) -> str:
    """The sweep as a table for a terminal: one row per threshold."""
    names = list(s["per_class_images"])
    head = ["threshold", "images", "changed", "episodes", "changed"] + [f"{n} (img/ep)" for n in names]
    rows = [head]
    for k, t in enumerate(s["thresholds"]):
        rows.append([f"{t:.2f}", str(s["images_with_detections"][k]), str(s["images_changed"][k]),
                     str(s["episodes_with_detections"][k]), str(s["episodes_changed"][k])]
                    + [f"{s['per_class_images'][n][k]}/{s['per_class_episodes'][n][k]}" for n in names])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = coverage_notes(s)
    lines += [f"images and episodes with detections per threshold; 'changed' counts those whose state "
             f"(empty / detections) differs from now (threshold {s['current']:g}"
             + (", " + ", ".join(f"{k}={v:g}" for k, v in s["per_class_current"].items()) if s["per_class_current"]
                else "") + f"): {s['images_with_detections_now']} of {s['images_counted']} images, "
             f"{s['episodes_with_detections_now']} of {s['episodes_counted']} episodes with detections"]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)
