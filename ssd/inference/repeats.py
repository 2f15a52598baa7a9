"""Repeated false positives: the same box in many images of one camera is a rock, not an animal.

A fixed camera photographs the same scene thousands of times; a detector that mistakes a rock or
a branch for an animal does so in most of them, at the same place. MegaDetector's "repeat
detection elimination" finds such boxes; here a detection is flagged ``"suspect": true`` when a
box at the same place (IoU ≥ 0.85) appears in at least ``min_images`` images of the same folder
(a camera). Flags are advisory: the detection stays in the file, and viewers can hide it.
"""
from __future__ import annotations

import posixpath
from collections import defaultdict
from typing import Any, Dict, List, Sequence, Tuple

DEFAULT_IOU = 0.85


def iou_xywh(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two normalized ``[x, y, w, h]`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def flag_repeats(images: List[Dict[str, Any]], min_images: int, min_conf: float,
                 iou: float = DEFAULT_IOU) -> int:
    """Mark repeated boxes ``suspect`` in place (clearing old marks); returns how many were marked.

    Only detections ≥ ``min_conf`` take part (the floor's noise would match everything). Greedy
    clustering per folder: each box joins the first cluster whose first box it overlaps by ≥
    ``iou``; a cluster seen in ≥ ``min_images`` distinct images is a repeat.
    """
    by_folder: Dict[str, List[Tuple[Dict[str, Any], str]]] = defaultdict(list)
    for im in images:
        for d in im.get("detections") or []:
            d.pop("suspect", None)
            if d.get("conf", 0.0) >= min_conf:
                by_folder[posixpath.dirname(im["file"])].append((d, im["file"]))
    marked = 0
    for dets in by_folder.values():
        clusters: List[Tuple[List[float], List[Dict[str, Any]], set]] = []
        for d, file in dets:
            for rep, members, files in clusters:
                if iou_xywh(rep, d["bbox"]) >= iou:
                    members.append(d)
                    files.add(file)
                    break
            else:
                clusters.append((list(d["bbox"]), [d], {file}))
        for _, members, files in clusters:
            if len(files) >= max(2, int(min_images)):
                for d in members:
                    d["suspect"] = True
                marked += len(members)
    return marked
