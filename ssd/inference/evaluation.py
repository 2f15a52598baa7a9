"""VOC07 11-point mAP with per-class AP, using GluonCV's ``VOC07MApMetric``, and beside it the
ENA24 tutorial's micro-F1 and accuracy over anchors (``ssd.inference.anchor_metrics``).

Evaluation keeps every candidate above a low floor (0.01, as the SSD paper's evaluation),
because AP integrates over all thresholds; a display threshold would truncate the curve. The
anchor metrics come from the same forward (the detector hands its raw outputs to a tap).

A dataset with ``difficult_masks`` (Pascal VOC) has its difficult boxes ignored as VOC07 does: a
detection on one is neither a true nor a false positive, and one left undetected is no miss.

A dataset with ``crowd_regions`` (COCO's ``iscrowd: 1``) has them ignored as COCO's own evaluation
(pycocotools) does: a region is never a positive to find, and a detection that the VOC07 matching
leaves false but that lies in a region of its class (intersection over the detection's own area at
least the IoU threshold) is ignored instead. Both end in the same place, the metric's "ignored"
match (-1), so the curve and AP treat a difficult box and a crowd region alike; only the rule that
picks the detection differs, because a crowd region is many objects and a detection finds only one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from ssd.inference.anchor_metrics import AnchorTally
from ssd.inference.thresholds import DEFAULT_NMS, EVAL_FLOOR
from ssd.base.errors import ImageError
from ssd.data.preprocess import resize

#: With progress shown, a validation batch grows while it takes less than this (``batch_spans``).
PROGRESS_BATCH_S = 0.5


@dataclass
class EvalResult:
    map: float
    per_class_ap: Dict[str, float]
    num_images: int
    num_boxes: int
    pr_curves: Dict[str, Dict[str, List[float]]] = field(default_factory=dict)
    skipped: int = 0                 # images that could not be decoded (counted, not fatal)
    micro_f1: Optional[float] = None  # over anchors, as the ENA24 tutorial (None: the net hides its anchors)
    accuracy: Optional[float] = None
    anchor_counts: Dict[str, int] = field(default_factory=dict)
    unscored_boxes: int = 0          # ground-truth boxes of classes the model lacks (left out of every number)
    difficult_boxes: int = 0         # Pascal VOC "difficult" boxes: neither a hit nor a miss (VOC07)
    crowd_regions: int = 0           # COCO crowd regions: detections in them ignored (pycocotools)

    def table(self) -> str:
        width = max([len("class")] + [len(c) for c in self.per_class_ap])
        lines = [f"{'class':<{width}}  AP"]
        for c, ap in self.per_class_ap.items():
            lines.append(f"{c:<{width}}  {'  n/a' if ap != ap else f'{ap:.4f}'}")
        lines.append(f"{'mAP':<{width}}  {self.map:.4f}   ({self.num_images} images, {self.num_boxes} boxes"
                     + (f"; {self.skipped} undecodable image(s) skipped" if self.skipped else "")
                     + (f"; {self.unscored_boxes} box{'es' if self.unscored_boxes != 1 else ''} of classes the "
                        "model lacks left out" if self.unscored_boxes else "")
                     + (f"; {self.difficult_boxes} difficult box{'es' if self.difficult_boxes != 1 else ''} "
                        "ignored, as VOC07 does" if self.difficult_boxes else "")
                     + (f"; {self.crowd_regions} crowd region{'s' if self.crowd_regions != 1 else ''}: detections "
                        "in them ignored, as COCO does" if self.crowd_regions else "") + ")")
        if self.micro_f1 is not None:
            c = self.anchor_counts
            lines.append(f"micro-F1 {self.micro_f1:.4f}, accuracy {self.accuracy:.4f} over {c.get('anchors', 0)} anchors "
                         f"(TP {c.get('tp', 0)}, FP {c.get('fp', 0)}, FN {c.get('fn', 0)}; the ENA24 tutorial's metrics)")
        else:
            lines.append("micro-F1 / accuracy: n/a (this network decodes inside its graph and hides its anchors)")
        return "\n".join(lines)


class _Truth(NamedTuple):
    """One decoded image and what it is scored against, in the model's class indices."""

    img: np.ndarray
    gt: np.ndarray          # (K, 5) real boxes, normalized
    hard: np.ndarray        # (K,) difficult flags
    crowd: np.ndarray       # (C, 5) crowd regions, normalized


def evaluate(detector, dataset, batch_size: int = 16, nms: float = DEFAULT_NMS, floor: float = EVAL_FLOOR,
             iou_thresh: float = 0.5, limit: Optional[int] = None,
             progress: Optional[Callable[[int, int], None]] = None) -> EvalResult:
    """Detect on every image of ``dataset`` and score against its labels (pixels of each image).

    ``progress(done, total)`` is called after each batch (training shows validation progress); with
    it, batches start at one image and grow while they stay quick (``batch_spans``)."""
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric

    classes = list(detector.classes)
    metric = VOC07MApMetric(iou_thresh=iou_thresh, class_names=classes)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    counts = {"boxes": 0, "skipped": 0, "unscored": 0, "difficult": 0, "crowd": 0}
    to_model = class_index_map(getattr(dataset, "classes", None) or [], classes)
    crowd_to_model = _crowd_index_map(dataset, classes, to_model)
    tally = AnchorTally()
    batch_size = min(batch_size, getattr(detector, "max_batch", None) or batch_size)   # one forward per batch
    for start, stop in batch_spans(n, batch_size, adaptive=progress is not None):
        items = _truths(dataset, range(start, stop), (to_model, crowd_to_model), len(classes), counts)
        if items:
            batch = np.stack([resize(t.img, detector.input_size) for t in items])
            preds = detector.predict_arrays(batch, nms=nms, floor=floor, tap=tally.tap)
            tally.score([t.gt for t in items])
            for truth, pred in zip(items, preds):
                _score_image(metric, truth, pred, iou_thresh, counts)
        if progress is not None:
            progress(stop, n)
    names, values = metric.get()
    per_class = {nm: float(v) for nm, v in zip(names[:-1], values[:-1])}
    curves = {}
    for ci, nm in enumerate(classes):
        prec, rec = _pr_curve(metric, ci)
        if prec is not None:
            curves[nm] = {"precision": prec, "recall": rec}
    anchors = tally.available and tally.counts.anchors > 0
    return EvalResult(float(values[-1]) if values[-1] == values[-1] else 0.0, per_class, n - counts["skipped"],
                      counts["boxes"], curves, counts["skipped"], tally.counts.micro_f1 if anchors else None,
                      tally.counts.accuracy if anchors else None, tally.counts.as_dict() if anchors else {},
                      counts["unscored"], counts["difficult"], counts["crowd"])


def _truths(dataset, indices: range, maps: Tuple[Optional[np.ndarray], Optional[np.ndarray]], n_model: int,
            counts: Dict[str, int]) -> List[_Truth]:
    """The decodable images of ``indices`` with their boxes, difficult flags and crowd regions
    (``maps``: the boxes' and the regions' class index maps to the model's, ``class_index_map``)."""
    to_model, crowd_to_model = maps
    masks = getattr(dataset, "difficult_masks", None)
    regions = getattr(dataset, "crowd_regions", None)
    out = []
    for i in indices:
        try:
            img, lab = dataset[i]
        except ImageError:
            counts["skipped"] += 1
            continue
        gt, left_out, hard = _model_labels(lab, to_model, n_model, None if masks is None else masks[i])
        counts["unscored"] += left_out
        crowd = np.zeros((0, 5), np.float32)
        if regions is not None and len(regions[i]):
            crowd = _model_labels(np.asarray(regions[i], np.float32).reshape(-1, 5), crowd_to_model, n_model)[0]
        out.append(_Truth(img, gt, hard, crowd))
    return out


def _score_image(metric, truth: _Truth, pred: Tuple[np.ndarray, np.ndarray, np.ndarray], iou_thresh: float,
                 counts: Dict[str, int]) -> None:
    """Add one image's detections to ``metric`` (in pixels: VOC07 matches integer-pixel boxes)."""
    ids, scores, boxes = pred
    h, w = truth.img.shape[:2]
    scale = np.array([w, h, w, h], dtype=np.float32)
    gt, hard = truth.gt, truth.hard
    counts["boxes"] += len(gt) - int(hard.sum())
    counts["difficult"] += int(hard.sum())
    counts["crowd"] += len(truth.crowd)
    gt_boxes = gt[:, 1:5] * scale if len(gt) else np.zeros((0, 4), np.float32)
    metric.update(pred_bboxes=[(boxes * scale)[None]], pred_labels=[ids[None].astype(np.float32)],
                  pred_scores=[scores[None]], gt_bboxes=[gt_boxes[None]],
                  gt_labels=[gt[:, 0][None]], gt_difficults=[hard[None].astype(np.float32)])
    if len(truth.crowd):
        crowd = np.concatenate([truth.crowd[:, :1], truth.crowd[:, 1:5] * scale], axis=1)
        _ignore_in_crowd(metric, ids, scores, boxes * scale, crowd, iou_thresh)


def _ignore_in_crowd(metric, ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray, crowd: np.ndarray,
                     iou_thresh: float) -> None:
    """Turn this image's false positives that lie in a crowd region of their class into ignored (-1).

    Why after ``metric.update``: its own matching has then decided which detections found a real box
    (pycocotools too matches real boxes first); the matches it just appended for class ``l`` are this
    image's detections of ``l`` in its order (score, descending), which is recomputed here the same way."""
    valid = np.asarray(ids).reshape(-1) >= 0
    labels = np.asarray(ids).reshape(-1)[valid].astype(int)
    scores, boxes = np.asarray(scores, np.float32).reshape(-1)[valid], boxes[valid]
    for label in np.unique(crowd[:, 0].astype(int)):
        mine = labels == label
        if not mine.any():
            continue
        order = scores[mine].argsort()[::-1]
        inside = crowd_cover(boxes[mine][order], crowd[crowd[:, 0].astype(int) == label, 1:5]) >= iou_thresh
        matches = metric._match[label]
        first = len(matches) - len(order)
        for k in np.flatnonzero(inside):
            if matches[first + k] == 0:
                matches[first + k] = -1


def crowd_cover(dets: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Per detection, the largest share of its own area inside one of ``regions`` (COCO's crowd "IoU")."""
    x1 = np.maximum(dets[:, None, 0], regions[None, :, 0])
    y1 = np.maximum(dets[:, None, 1], regions[None, :, 1])
    x2 = np.minimum(dets[:, None, 2], regions[None, :, 2])
    y2 = np.minimum(dets[:, None, 3], regions[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.maximum((dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1]), 1e-9)
    return (inter / area[:, None]).max(axis=1) if len(regions) else np.zeros(len(dets))


def class_index_map(data_classes: List[str], model_classes: List[str]) -> Optional[np.ndarray]:
    """Dataset class index -> model class index (-1: the model lacks it); None: compare indices as they are.

    Why: a model trained on one camera-trap set and evaluated on another lists the same species in
    another order; comparing indices would score the set's "Dog" boxes against "Woodchuck" detections.
    Names decide when the two lists share any, compared without case or surrounding spaces (one set's
    "Deer" is another's "deer"); a set whose classes were all renamed keeps its indices.
    """
    if not data_classes or list(data_classes) == list(model_classes):
        return None
    exact = {name: i for i, name in enumerate(model_classes)}
    folded: Dict[str, int] = {}
    for i, name in enumerate(model_classes):
        folded.setdefault(_class_key(name), i)
    index = [exact.get(name, folded.get(_class_key(name), -1)) for name in data_classes]
    if all(i < 0 for i in index):
        return None
    return np.array(index, dtype=np.int64)


def _crowd_index_map(dataset, model_classes: List[str], to_model: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The crowd regions' class index map: as the boxes', plus the categories that have regions but no
    box (``crowd_classes`` lists them after ``classes``), matched to the model's classes by name.

    Why: pycocotools keeps such a category (no positives: AP -1, out of the mean) and ignores its
    detections inside the regions; a model that has the class must not be charged for them. When the
    boxes are compared by index (no name shared), those categories have no index to compare: left out."""
    data = list(getattr(dataset, "classes", None) or [])
    extended = list(getattr(dataset, "crowd_classes", None) or data)
    if len(extended) <= len(data):
        return to_model
    if to_model is None and data != list(model_classes):
        return np.array(list(range(len(data))) + [-1] * (len(extended) - len(data)), dtype=np.int64)
    return class_index_map(extended, model_classes)


def _class_key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def _model_labels(label: np.ndarray, to_model: Optional[np.ndarray], n_model: int,
                  difficult: Optional[np.ndarray] = None) -> Tuple[np.ndarray, int, np.ndarray]:
    """The real boxes of ``label`` with the model's class indices, how many had no model class, and which
    of the boxes kept are difficult (``difficult``: one flag per row of ``label``; None: none are)."""
    real = label[:, 0] >= 0
    hard = np.zeros(len(label), bool) if difficult is None or len(difficult) != len(label) else difficult
    gt, hard = label[real], hard[real]
    cls = gt[:, 0].astype(np.int64)
    if to_model is not None:
        cls = np.where(cls < len(to_model), to_model[np.minimum(cls, len(to_model) - 1)], -1)
    keep = (cls >= 0) & (cls < n_model)
    out = gt[keep].copy()
    out[:, 0] = cls[keep]
    return out, int((~keep).sum()), np.asarray(hard[keep], dtype=bool)


def held_out_split(meta: Dict) -> Dict[str, float]:
    """``open_dataset`` keywords that draw the validation split the model was trained against.

    Why: a COCO Camera Traps set has no validation split of its own; it is drawn from the seed and
    the share the training used, and scoring any other draw mixes training images into "val".
    """
    args = ((meta or {}).get("training") or {}).get("args") or {}
    out: Dict[str, float] = {"seed": args.get("seed", 0) or 0}
    if args.get("val_fraction") is not None:
        out["val_fraction"] = float(args["val_fraction"])
    return out


def batch_spans(n: int, batch_size: int, adaptive: bool = False,
                quick_s: float = PROGRESS_BATCH_S) -> Iterator[Tuple[int, int]]:
    """``(start, stop)`` of each batch over ``n`` items.

    ``adaptive``: the first batch is one image, and each next one doubles while a batch takes less
    than ``quick_s`` (up to ``batch_size``) and halves when one takes over four times that. Why: a
    watched validation showed "image 0/50" for 16-28 s and then jumped, one batch of 16 large
    images at a time; this way the count advances about twice a second whatever the network.
    """
    start, size = 0, 1 if adaptive else max(1, batch_size)
    while start < n:
        stop = min(n, start + size)
        began = time.perf_counter()
        yield start, stop                      # the caller runs the batch before asking for the next
        took = time.perf_counter() - began
        if adaptive:
            size = min(batch_size, size * 2) if took < quick_s else max(1, size // 2) if took > 4 * quick_s else size
        start = stop


def _pr_curve(metric, class_index: int):
    """Precision/recall arrays of one class from the metric's accumulated matches."""
    n_pos = metric._n_pos.get(class_index, 0)
    if n_pos == 0:
        return None, None
    score = np.array(metric._score.get(class_index, []))
    match = np.array(metric._match.get(class_index, []), dtype=np.int32)
    order = score.argsort()[::-1]
    match = match[order]
    tp = np.cumsum(match == 1)
    fp = np.cumsum(match == 0)
    prec = tp / np.maximum(tp + fp, 1)
    rec = tp / n_pos
    step = max(1, len(prec) // 200)  # keep the curve small enough for JSON metadata
    return prec[::step].round(4).tolist(), rec[::step].round(4).tolist()
