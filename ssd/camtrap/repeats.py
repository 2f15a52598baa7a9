"""Repeated false positives: the same box in many images of one camera is a rock, not an animal.

A fixed camera photographs the same scene thousands of times; a detector that mistakes a rock or
a branch for an animal does so in most of them, at the same place. MegaDetector's "repeat
detection elimination" finds such boxes; here a detection is flagged ``"suspect": true`` when a
box at the same place (IoU ≥ 0.85) appears in at least ``min_images`` images of the same folder
(a camera). Flags are advisory: the detection stays in the file, and viewers can hide it.
"""
from __future__ import annotations

from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set

from ssd.camtrap.cameras import CameraRule

DEFAULT_IOU = 0.85


def iou_xywh(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two normalized ``[x, y, w, h]`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def flag_repeats(images: List[Dict[str, Any]], min_images: int, min_conf: float,
                 iou: float = DEFAULT_IOU, camera: Optional[CameraRule] = None) -> int:
    """Mark repeated boxes ``suspect`` in place (clearing old marks); returns how many were marked.

    Only detections ≥ ``min_conf`` take part (the floor's noise would match everything). Greedy
    clustering per camera (``camera``, default automatic): each box joins the first cluster whose first box it overlaps by ≥
    ``iou``; a cluster seen in ≥ ``min_images`` distinct images is a repeat.
    """
    finder = RepeatFinder(min_conf, iou, camera)
    for k, im in enumerate(images):
        for d in im.get("detections") or []:
            d.pop("suspect", None)
        finder.add(k, im)
    marks = finder.repeats(min_images)
    for k, which in marks.items():
        dets = images[k]["detections"]
        for j in which:
            dets[j]["suspect"] = True
    return sum(len(which) for which in marks.values())


_STRIDE = 1 << 20          # a member is packed as image number * _STRIDE + detection index


@dataclass
class _Cluster:
    box: List[float]                                        # the first box: what later ones match
    members: "array[int]" = field(default_factory=lambda: array("q"))
    files: Set[str] = field(default_factory=set)


class RepeatFinder:
    """``flag_repeats``' clustering fed one image at a time, so a run's entries can stay on disk.

    Why: a season's entries are read back from the run's journal; holding them all to flag
    repeats would undo that. What it holds is proportional to the detections that take part (≥
    ``min_conf``): per folder, each cluster's first box, its members packed as integers (image
    number, detection index) and the names of the distinct files it was seen in. Images must be
    added in the order of the results (the clustering is greedy, so order decides it) and numbered
    0, 1, 2... in that order.
    """

    def __init__(self, min_conf: float, iou: float = DEFAULT_IOU, camera: Optional[CameraRule] = None) -> None:
        self.min_conf, self.iou = min_conf, iou
        self._camera = (camera or CameraRule()).camera_of
        self._folders: Dict[str, List[_Cluster]] = defaultdict(list)

    def add(self, number: int, image: Dict[str, Any]) -> None:
        """Cluster the boxes of one entry (number: its position among the entries)."""
        dets = image.get("detections") or []
        if len(dets) >= _STRIDE:
            raise ValueError(f"at most {_STRIDE - 1} detections per image take part in repeat flagging")
        clusters = None
        for j, d in enumerate(dets):
            if d.get("conf", 0.0) >= self.min_conf:
                if clusters is None:
                    clusters = self._folders[self._camera(image["file"])]
                self._join(clusters, d["bbox"], number * _STRIDE + j, image["file"])

    def _join(self, clusters: List[_Cluster], box: Sequence[float], member: int, file: str) -> None:
        for c in clusters:
            if iou_xywh(c.box, box) >= self.iou:
                c.members.append(member)
                c.files.add(file)
                return
        clusters.append(_Cluster(list(box), array("q", [member]), {file}))

    def repeats(self, min_images: int) -> Dict[int, Set[int]]:
        """Image number → indices of its detections in a cluster seen in ≥ ``min_images`` files."""
        out: Dict[int, Set[int]] = defaultdict(set)
        for clusters in self._folders.values():
            for c in clusters:
                if len(c.files) >= max(2, int(min_images)):
                    for m in c.members:
                        out[m // _STRIDE].add(m % _STRIDE)
        return dict(out)
