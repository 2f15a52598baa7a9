"""SSDlite's post-processing, as torchvision's ``SSD.postprocess_detections`` does it, in numpy.

Per image: softmax over the classes; boxes decoded from the offsets with the box coder (weights
10, 10, 5, 5, log-sizes clamped at log(1000/16)) and clipped to the image; then *per class*: the
scores above the floor, the ``topk`` best of them, NMS among them; finally every class's survivors
sorted by score, the first ``detections`` kept (``ssd.models.per_class_nms.per_class``, shared with
the converted SSD300). Unlike ``MultiBoxDetection`` (one class per anchor), an anchor can yield
boxes for several classes, as in torchvision.

The arithmetic follows torch's float32 steps in the input's pixels (anchors × input size, then the
box coder, then ``clip_boxes_to_image``, then torchvision's NMS kernel's IoU), so the same raw
outputs give the same boxes and the same suppressions; boxes are returned normalized.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from ssd.models.per_class_nms import per_class
from ssd.models.recipe import Detections
from ssd.models.ssdlite.spec import SSDliteSpec


@dataclass(frozen=True)
class PostProcess:
    """The numbers of the post-processing (``SSDliteSpec``'s; NMS and the floor come per call)."""

    input_size: int
    box_weights: Tuple[float, float, float, float]
    box_clamp: float
    topk: int
    detections: int

    @classmethod
    def of(cls, spec: SSDliteSpec) -> "PostProcess":
        return cls(spec.input_size, tuple(spec.box_weights), spec.box_clamp, spec.topk_candidates,
                   spec.detections_per_img)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float32."""
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def decode_boxes(offsets: np.ndarray, anchors_px: np.ndarray, pp: PostProcess) -> np.ndarray:
    """torchvision's ``BoxCoder.decode_single`` then ``clip_boxes_to_image``: ``(N, 4)`` pixel corners."""
    f32 = np.float32
    wx, wy, ww, wh = (f32(w) for w in pp.box_weights)
    widths = anchors_px[:, 2] - anchors_px[:, 0]
    heights = anchors_px[:, 3] - anchors_px[:, 1]
    ctr_x = anchors_px[:, 0] + f32(0.5) * widths
    ctr_y = anchors_px[:, 1] + f32(0.5) * heights
    dx, dy = offsets[:, 0] / wx, offsets[:, 1] / wy
    dw = np.minimum(offsets[:, 2] / ww, f32(pp.box_clamp))
    dh = np.minimum(offsets[:, 3] / wh, f32(pp.box_clamp))
    pred_ctr_x, pred_ctr_y = dx * widths + ctr_x, dy * heights + ctr_y
    half_w, half_h = f32(0.5) * (np.exp(dw) * widths), f32(0.5) * (np.exp(dh) * heights)
    boxes = np.stack([pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h], axis=1)
    return np.clip(boxes, f32(0), f32(pp.input_size))


def postprocess(logits: np.ndarray, offsets: np.ndarray, anchors: np.ndarray, pp: PostProcess,
                nms: float, floor: float) -> Detections:
    """One image: ``logits`` (N, C+1), ``offsets`` (N, 4), ``anchors`` (N, 4) normalized corners →
    ``(class ids (0-based), scores, boxes normalized)``, best first."""
    size = np.float32(pp.input_size)
    boxes = decode_boxes(offsets.astype(np.float32), anchors.astype(np.float32) * size, pp)
    scores = softmax(logits.astype(np.float32))[:, 1:]
    ids, kept, px = per_class(scores, boxes, floor, pp.topk, nms, pp.detections)
    return ids, kept, (px / size).astype(np.float32)


def decoder_for(spec: SSDliteSpec):
    """The ``Decoder`` of an SSDlite net, live or exported (both return anchors, logits, offsets)."""
    pp = PostProcess.of(spec)

    def decode(net, x, nms: float, floor: float) -> List[Detections]:
        anchors, cls_preds, box_preds = net(x)
        anchors = anchors.asnumpy().reshape(-1, 4)
        logits = cls_preds.asnumpy()
        offsets = box_preds.asnumpy().reshape(logits.shape[0], -1, 4)
        return [postprocess(logits[i], offsets[i], anchors, pp, nms, floor) for i in range(logits.shape[0])]

    return decode
