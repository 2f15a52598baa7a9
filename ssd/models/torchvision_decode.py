"""torchvision's SSD decoding from a network's raw outputs, in numpy: box coder, then per class.

For networks whose graph ends at the heads (SSDlite): anchors ``(1, N, 4)`` normalized corners, class
logits ``(B, N, C+1)`` (0 = background), box offsets ``(B, N·4)``. Per image: softmax over the
classes; boxes decoded from the offsets with torchvision's ``BoxCoder`` (weights, log-sizes clamped)
and clipped to the image; then ``ssd.models.per_class_nms.per_class`` (the scores above the floor per
class, the ``topk`` best, NMS among them, the ``detections`` best of all). Unlike
``MultiBoxDetection`` (one class per anchor), an anchor can yield boxes for several classes.

The arithmetic follows torch's float32 steps in the input's pixels (anchors × input size, the box
coder, ``clip_boxes_to_image``, then torchvision's NMS kernel's IoU), so the same raw outputs give the
same boxes and the same suppressions; boxes are returned normalized. The numbers come from the
model's ``postprocess`` section (``kind: torchvision`` with ``box_weights`` and ``box_clamp``). No
MXNet here: the MXNet Detector and the ONNX engine (``ssd.models.array_decode``) both call it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np

from ssd.base.errors import ModelError
from ssd.models.per_class_nms import KIND, per_class
from ssd.models.recipe import Detections


@dataclass(frozen=True)
class PostProcess:
    """The numbers of the decoding (NMS and the floor come per call)."""

    input_size: int
    box_weights: Tuple[float, float, float, float]
    box_clamp: float
    topk: int
    detections: int

    @classmethod
    def from_meta(cls, meta: Dict[str, Any]) -> "PostProcess":
        post = meta.get("postprocess") or {}
        if post.get("kind") != KIND or "box_weights" not in post:
            post = _from_saved_spec(meta)
        return cls(int(meta["input_size"]), tuple(float(w) for w in post["box_weights"]), float(post["box_clamp"]),
                   int(post["topk_per_class"]), int(post["detections"]))


def _from_saved_spec(meta: Dict[str, Any]) -> Dict[str, Any]:
    """The same numbers from the ``ssdlite`` section (the spec's fields) of an SSDlite folder saved
    before meta.json had a ``postprocess`` section, so old folders decode alike on both engines."""
    spec = meta.get("ssdlite")
    need = ("box_weights", "box_clamp", "topk_candidates", "detections_per_img")
    if not isinstance(spec, dict) or any(k not in spec for k in need):
        raise ModelError("meta.json has no torchvision box-coder post-processing section (postprocess: kind "
                         f"{(meta.get('postprocess') or {}).get('kind')!r}); re-save the model with this version")
    return {"kind": KIND, "box_weights": spec["box_weights"], "box_clamp": spec["box_clamp"],
            "topk_per_class": spec["topk_candidates"], "detections": spec["detections_per_img"]}


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


def decode_arrays(anchors: np.ndarray, cls_preds: np.ndarray, box_preds: np.ndarray, pp: PostProcess,
                  nms: float, floor: float) -> List[Detections]:
    """The graph's outputs as numpy → one ``(ids, scores, boxes normalized)`` per image."""
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
    logits = np.asarray(cls_preds, dtype=np.float32)
    offsets = np.asarray(box_preds, dtype=np.float32).reshape(logits.shape[0], -1, 4)
    return [postprocess(logits[i], offsets[i], anchors, pp, nms, floor) for i in range(logits.shape[0])]


def decoder(meta: Dict[str, Any]):
    """The ``Decoder`` of such a network, live or exported: run it, then ``decode_arrays``."""
    pp = PostProcess.from_meta(meta)

    def decode(net, x, nms: float, floor: float) -> List[Detections]:
        anchors, cls_preds, box_preds = net(x)
        return decode_arrays(anchors.asnumpy(), cls_preds.asnumpy(), box_preds.asnumpy(), pp, nms, floor)

    return decode
