"""Non-maximum suppression step by step, exactly as ``MultiBoxDetection`` runs it.

The Detector's decoder (``ssd.models.multibox.decode_outputs``) calls MXNet's ``MultiBoxDetection``,
which does, per image:

1. for every anchor, the best non-background class and its probability; anchors below the floor
   (``threshold``) drop out; the rest are decoded to boxes and clipped to [0, 1] — the candidates;
2. a stable sort of the candidates by descending score; only the first ``nms_topk`` (400 here)
   enter NMS, the rest are dropped (ties at the cut keep anchor order);
3. greedy NMS over all rows: a row not yet suppressed keeps itself and suppresses every later
   row of the same class whose IoU with it is ≥ the NMS threshold.

Step 1 runs in MXNet itself (``MultiBoxDetection`` with NMS off); steps 2–3 are written out here
so each kept box and the boxes it suppresses can be shown. ``tests/test_learn.py`` proves the kept
set equals the Detector's output for the same image, NMS threshold and floor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

from ssd.models.array_decode import MULTIBOX_TOPK as NMS_TOPK
from ssd.models.array_decode import iou_one_to_many


@dataclass
class NMSStep:
    """One step: row ``kept`` survives and suppresses ``suppressed`` (row, IoU with ``kept``)."""

    kept: int
    suppressed: List[Tuple[int, float]] = field(default_factory=list)


@dataclass
class NMSTrace:
    """Candidates in processing order (class id, score, normalized box) and the steps over them."""

    class_ids: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    steps: List[NMSStep]
    num_candidates: int          # candidates above the floor
    num_entering: int            # of those, the ones entering NMS (at most ``nms_topk``)
    nms_threshold: float
    floor: float

    def kept_rows(self) -> np.ndarray:
        return np.array([s.kept for s in self.steps], dtype=np.int64)

    def final(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept boxes as the Detector returns them: ``(ids, scores, boxes)``, sorted by score."""
        rows = self.kept_rows()
        order = np.argsort(-self.scores[rows], kind="stable")
        rows = rows[order]
        return self.class_ids[rows], self.scores[rows], self.boxes[rows]

    def steps_of_class(self, class_id: int) -> List[NMSStep]:
        return [s for s in self.steps if int(self.class_ids[s.kept]) == int(class_id)]


def same_detections(a: Tuple[np.ndarray, np.ndarray, np.ndarray],
                    b: Tuple[np.ndarray, np.ndarray, np.ndarray]) -> bool:
    """Whether two ``(ids, scores, boxes)`` results are identical, element for element: how the NMS
    page shows that its trace ends exactly in the Detector's own output."""
    return len(a[0]) == len(b[0]) and all(np.array_equal(x, y) for x, y in zip(a, b))


def candidates(anchors: np.ndarray, cls_preds: np.ndarray, box_preds: np.ndarray,
               floor: float) -> np.ndarray:
    """``MultiBoxDetection`` with NMS off: candidate rows ``[id, score, x1, y1, x2, y2]`` in anchor order."""
    from mxnet import nd

    probs = nd.softmax(nd.array(cls_preds[None]), axis=-1).transpose((0, 2, 1))
    out = nd.contrib.MultiBoxDetection(probs, nd.array(box_preds.reshape(1, -1)), nd.array(anchors.reshape(1, -1, 4)),
                                       threshold=float(floor), nms_threshold=0.0, force_suppress=False,
                                       nms_topk=-1, clip=True).asnumpy()[0]
    return out[out[:, 0] >= 0]


def overlaps(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of ``box`` with each of ``others`` in float32, with MultiBoxDetection's arithmetic
    (``array_decode.iou_one_to_many``: the operations the ONNX engine's NMS does on whole blocks)."""
    a, b = box.astype(np.float32), others.astype(np.float32).reshape(-1, 4)
    return iou_one_to_many(a, b, (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), (a[2] - a[0]) * (a[3] - a[1]))


def processing_order(rows: np.ndarray, topk: int = NMS_TOPK) -> np.ndarray:
    """The candidate rows NMS visits, in its order: stable sort by score, the first ``topk`` (step 2)."""
    order = np.argsort(-rows[:, 1], kind="stable")
    keep = len(rows) if topk <= 0 or topk >= len(rows) else topk
    return rows[order[:keep]]


def nms_trace(anchors: np.ndarray, cls_preds: np.ndarray, box_preds: np.ndarray, nms: float, floor: float,
              topk: int = NMS_TOPK) -> NMSTrace:
    """Every NMS step for one image's head outputs (per-class NMS, clip, ``topk`` as the Detector)."""
    suppressing = 0 < nms <= 1          # MultiBoxDetection neither sorts nor suppresses otherwise
    rows = candidates(anchors, cls_preds, box_preds, floor)
    above_floor = len(rows)
    if suppressing:
        rows = processing_order(rows, topk)
    ids, scores, boxes = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.float32), rows[:, 2:6].astype(np.float32)
    alive = np.ones(len(rows), dtype=bool)
    steps: List[NMSStep] = []
    for i in range(len(rows)):
        if not alive[i]:
            continue
        step = NMSStep(i)
        if suppressing:
            later = i + 1 + np.flatnonzero(alive[i + 1:] & (ids[i + 1:] == ids[i]))
            ious = overlaps(boxes[i], boxes[later])
            hit = ious >= np.float32(nms)
            alive[later[hit]] = False
            step.suppressed = [(int(j), float(v)) for j, v in zip(later[hit], ious[hit])]
        steps.append(step)
    return NMSTrace(ids, scores, boxes, steps, above_floor, len(rows), float(nms), float(floor))
