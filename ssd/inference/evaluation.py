"""VOC07 11-point mAP with per-class AP, using GluonCV's ``VOC07MApMetric``.

Evaluation keeps every candidate above a low floor (0.01, as the SSD paper's evaluation),
because AP integrates over all thresholds; a display threshold would truncate the curve.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from ssd.inference.thresholds import DEFAULT_NMS, EVAL_FLOOR
from ssd.base.errors import ImageError
from ssd.data.preprocess import resize


@dataclass
class EvalResult:
    map: float
    per_class_ap: Dict[str, float]
    num_images: int
    num_boxes: int
    pr_curves: Dict[str, Dict[str, List[float]]] = field(default_factory=dict)
    skipped: int = 0                 # images that could not be decoded (counted, not fatal)

    def table(self) -> str:
        width = max([len("class")] + [len(c) for c in self.per_class_ap])
        lines = [f"{'class':<{width}}  AP"]
        for c, ap in self.per_class_ap.items():
            lines.append(f"{c:<{width}}  {'  n/a' if ap != ap else f'{ap:.4f}'}")
        lines.append(f"{'mAP':<{width}}  {self.map:.4f}   ({self.num_images} images, {self.num_boxes} boxes"
                     + (f"; {self.skipped} undecodable image(s) skipped" if self.skipped else "") + ")")
        return "\n".join(lines)


def evaluate(detector, dataset, batch_size: int = 16, nms: float = DEFAULT_NMS, floor: float = EVAL_FLOOR,
             iou_thresh: float = 0.5, limit: Optional[int] = None,
             progress: Optional[Callable[[int, int], None]] = None) -> EvalResult:
    """Detect on every image of ``dataset`` and score against its labels (pixels of each image).

    ``progress(done, total)`` is called after each batch (training shows validation progress)."""
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric

    classes = list(detector.classes)
    metric = VOC07MApMetric(iou_thresh=iou_thresh, class_names=classes)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    num_boxes = 0
    skipped = 0
    size = detector.input_size
    for start in range(0, n, batch_size):
        items = []
        for i in range(start, min(n, start + batch_size)):
            try:
                items.append(dataset[i])
            except ImageError:
                skipped += 1
        if not items:
            continue
        batch = np.stack([resize(img, size) for img, _ in items])
        preds = detector.predict_arrays(batch, nms=nms, floor=floor)
        for (img, lab), (ids, scores, boxes) in zip(items, preds):
            h, w = img.shape[:2]
            scale = np.array([w, h, w, h], dtype=np.float32)
            gt = lab[lab[:, 0] >= 0]
            num_boxes += len(gt)
            gt_boxes = gt[:, 1:5] * scale if len(gt) else np.zeros((0, 4), np.float32)
            metric.update(pred_bboxes=[(boxes * scale)[None]], pred_labels=[ids[None].astype(np.float32)],
                          pred_scores=[scores[None]], gt_bboxes=[gt_boxes[None]],
                          gt_labels=[gt[:, 0][None]], gt_difficults=None)
        if progress is not None:
            progress(min(n, start + batch_size), n)
    names, values = metric.get()
    per_class = {nm: float(v) for nm, v in zip(names[:-1], values[:-1])}
    curves = {}
    for ci, nm in enumerate(classes):
        prec, rec = _pr_curve(metric, ci)
        if prec is not None:
            curves[nm] = {"precision": prec, "recall": rec}
    return EvalResult(float(values[-1]) if values[-1] == values[-1] else 0.0, per_class, n - skipped, num_boxes,
                      curves, skipped)


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
