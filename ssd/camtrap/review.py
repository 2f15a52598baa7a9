"""Reviewing repeated detections: group the suspects, let a person decide, write a cleaned file.

Why: a box flagged as a repeat (``ssd.camtrap.repeats``) is only a suspect. A rock is a false
positive, but a nest box that a bird visits every morning is real. MegaDetector's answer is a
manual loop over a folder of rendered images; here the suspects are grouped by camera folder and
place (the same greedy IoU clustering the flagging used), a person sees a grid of crops per group
and says "these are real" or "false positive", and the decisions produce a cleaned results file:

* a **false positive** group's place is removed from that camera: every detection in an image of
  that folder whose box overlaps the group's box by IoU ≥ ``iou`` goes, whatever its score (as
  MegaDetector's repeat elimination does; a lower-scored copy of the rock would come back at a
  lower threshold otherwise);
* a **real** group's detections lose their ``suspect`` flag, so they count again;
* undecided groups stay as they are; ``info.repeat_review`` records what was decided and removed.

The decisions are a small JSON document (``decisions_document``), written by the Camera traps page
and read by ``python -m ssd results repeats apply``; it is untrusted input and checked field by field.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ssd.camtrap.cameras import file_camera_rule
from ssd.camtrap.megadetector import ResultsError
from ssd.camtrap.repeats import DEFAULT_IOU, iou_xywh

DECISIONS_VERSION = 1
REAL, FALSE_POSITIVE = "real", "false positive"
DECISIONS = (REAL, FALSE_POSITIVE)


@dataclass
class RepeatGroup:
    """Suspect detections at one place of one camera: ``members`` are (image index, detection index)."""

    id: str
    folder: str
    box: List[float]
    members: List[Tuple[int, int]] = field(default_factory=list)

    def files(self, doc: Dict[str, Any]) -> List[str]:
        return sorted({doc["images"][i]["file"] for i, _ in self.members})


def repeat_groups(doc: Dict[str, Any], iou: float = DEFAULT_IOU) -> List[RepeatGroup]:
    """The suspect detections, clustered per folder (each joins the first group whose first box it
    overlaps by ≥ ``iou``); largest groups first within a folder, folders in name order."""
    by_folder: Dict[str, List[RepeatGroup]] = {}
    camera_of = file_camera_rule(doc).camera_of
    for i, im in enumerate(doc.get("images", [])):
        for j, d in enumerate(im.get("detections") or []):
            if not d.get("suspect"):
                continue
            folder = camera_of(im["file"])
            groups = by_folder.setdefault(folder, [])
            for g in groups:
                if iou_xywh(g.box, d["bbox"]) >= iou:
                    g.members.append((i, j))
                    break
            else:
                groups.append(RepeatGroup(f"{folder or '.'}@{len(groups) + 1}", folder, list(d["bbox"]), [(i, j)]))
    out: List[RepeatGroup] = []
    for folder in sorted(by_folder):
        out += sorted(by_folder[folder], key=lambda g: -len(g.members))
    return out


def decisions_document(doc: Dict[str, Any], groups: List[RepeatGroup], decisions: Dict[str, str],
                       iou: float = DEFAULT_IOU, results: Optional[str] = None) -> Dict[str, Any]:
    """What a person decided, per group (undecided groups left out), as a file ``apply`` reads;
    ``results`` names the results file they were made on (``apply``'s default input)."""
    return {"ssd_repeat_decisions": DECISIONS_VERSION, "iou": float(iou), "results": results,
            "groups": [{"id": g.id, "folder": g.folder, "bbox": g.box, "decision": decisions[g.id],
                        "files": g.files(doc)} for g in groups if decisions.get(g.id) in DECISIONS]}


def _checked_groups(decisions: Any) -> Tuple[float, List[Dict[str, Any]]]:
    """The decisions file's IoU and groups, each field checked (``ResultsError`` naming the problem)."""
    if not isinstance(decisions, dict) or decisions.get("ssd_repeat_decisions") != DECISIONS_VERSION:
        raise ResultsError("not a repeat-review decisions file of this version (it needs \"ssd_repeat_decisions\": 1)")
    iou = decisions.get("iou", DEFAULT_IOU)
    if isinstance(iou, bool) or not isinstance(iou, (int, float)) or not 0 < iou <= 1:
        raise ResultsError(f"decisions: 'iou' must be a number within (0, 1], got {iou!r}")
    groups = decisions.get("groups")
    if not isinstance(groups, list):
        raise ResultsError("decisions: 'groups' must be a list")
    for k, g in enumerate(groups):
        box = g.get("bbox") if isinstance(g, dict) else None
        if not isinstance(g, dict) or not isinstance(g.get("folder"), str) or g.get("decision") not in DECISIONS \
                or not isinstance(box, list) or len(box) != 4 \
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
            raise ResultsError(f"decisions: groups[{k}] needs 'folder' (text), 'bbox' ([x, y, w, h]) and "
                               f"'decision' ({' or '.join(map(repr, DECISIONS))})")
    return float(iou), groups


def apply_decisions(doc: Dict[str, Any], decisions: Any, when: Optional[str] = None) -> Dict[str, Any]:
    """A cleaned copy of ``doc`` (see the module docstring); ``doc`` itself is not changed."""
    iou, groups = _checked_groups(decisions)
    images = [dict(im) for im in doc.get("images", [])]
    record = []
    camera_of = file_camera_rule(doc).camera_of
    for g in groups:
        touched = 0
        for im in images:
            dets = im.get("detections")
            if not dets or camera_of(im["file"]) != g["folder"]:
                continue
            here = [iou_xywh(g["bbox"], d["bbox"]) >= iou for d in dets]
            if not any(here):
                continue
            if g["decision"] == FALSE_POSITIVE:
                im["detections"] = [d for d, h in zip(dets, here) if not h]
                if "max_detection_conf" in im:
                    im["max_detection_conf"] = max((d["conf"] for d in im["detections"]), default=0.0)
                touched += sum(here)
            else:
                im["detections"] = [{k: v for k, v in d.items() if k != "suspect"} if h else d
                                    for d, h in zip(dets, here)]
                touched += sum(1 for d, h in zip(dets, here) if h and d.get("suspect"))
        record.append({"folder": g["folder"], "bbox": g["bbox"], "decision": g["decision"],
                       ("detections_removed" if g["decision"] == FALSE_POSITIVE else "detections_confirmed"): touched})
    info = dict(doc.get("info") or {})
    reviews = list(info.get("repeat_review") or []) if isinstance(info.get("repeat_review"), list) else []
    reviews.append({"time": when or time.strftime("%Y-%m-%d %H:%M:%S"), "iou": iou, "groups": record})
    info["repeat_review"] = reviews
    return {**doc, "info": info, "images": images}
