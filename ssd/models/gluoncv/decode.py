"""Decoding GluonCV SSD outputs into per-image ``(ids, scores, boxes normalized)``.

Live GluonCV nets decode and apply their own NMS (``set_nms`` when the setting changes); boxes
come back in input pixels and are normalized here. A hybridized graph is cached regardless of
train/predict mode, so the cache is cleared whenever the mode or the NMS setting changes.
Exported graphs are saved without NMS so that it stays adjustable, and get the same ``box_nms``
(in numpy, ``ssd.models.array_decode.box_nms_detection``, when ONNX Runtime runs them).
"""
from __future__ import annotations

import numpy as np

from ssd.models.array_decode import BOX_NMS_FLOOR as SCORE_FLOOR
from ssd.models.array_decode import BOX_NMS_KEEP as POST_NMS
from ssd.models.array_decode import BOX_NMS_TOPK as NMS_TOPK


def prepare_inference(net, nms: float) -> None:
    """Make the next call of ``net`` a prediction with NMS ``nms`` (clears stale cached graphs)."""
    mode = getattr(net, "_ssd_mode", None)
    if mode == "train" and getattr(net, "_active", False):
        net.hybridize(static_alloc=True)  # training's graph was static_shape and train-mode
    if mode != ("infer", float(nms)):
        net.set_nms(nms_thresh=float(nms), nms_topk=NMS_TOPK, post_nms=POST_NMS)
        net._ssd_mode = ("infer", float(nms))


def decode_live(net, x, nms: float, floor: float):
    prepare_inference(net, nms)
    ids, scores, bboxes = net(x)
    return _collect(ids, scores, bboxes, x.shape[3], x.shape[2], floor)


def decode_exported(net, x, nms: float, floor: float):
    from mxnet import nd

    ids, scores, bboxes = net(x)
    res = nd.concat(ids, scores, bboxes, dim=-1)
    if 0 < nms < 1:
        res = nd.contrib.box_nms(res, overlap_thresh=float(nms), topk=NMS_TOPK, valid_thresh=SCORE_FLOOR,
                                 id_index=0, score_index=1, coord_start=2, force_suppress=False)
        res = res.slice_axis(axis=1, begin=0, end=POST_NMS)
    return _collect(res.slice_axis(axis=2, begin=0, end=1), res.slice_axis(axis=2, begin=1, end=2),
                    res.slice_axis(axis=2, begin=2, end=6), x.shape[3], x.shape[2], floor)


def _collect(ids, scores, bboxes, width: int, height: int, floor: float):
    ids, scores, bboxes = ids.asnumpy(), scores.asnumpy(), bboxes.asnumpy()
    scale = np.array([width, height, width, height], dtype=np.float32)
    out = []
    for i in range(ids.shape[0]):
        c, s, b = ids[i, :, 0], scores[i, :, 0], bboxes[i]
        keep = (c >= 0) & (s >= floor)
        c, s, b = c[keep], s[keep], np.clip(b[keep] / scale, 0.0, 1.0)
        order = np.argsort(-s, kind="stable")
        out.append((c[order].astype(np.int64), s[order].astype(np.float32), b[order].astype(np.float32)))
    return out


def torchvision_decoder(meta):
    """Decoder of a detector converted from torchvision (``ssd.models.per_class_nms``): the graph's
    per-class scores and boxes for every anchor, NMS'd per class as torchvision does."""
    from ssd.models.per_class_nms import per_class_detections

    post = dict(meta.get("postprocess") or {})
    num_classes = len(meta["classes"])
    live = meta.get("format") != "symbol"

    def decode(net, x, nms: float, floor: float):
        if live:
            prepare_inference(net, -1.0)   # NMS off in the graph: it happens below, per class
        _, scores, bboxes = net(x)
        batch, size = int(x.shape[0]), float(x.shape[2])
        anchors = int(scores.shape[1]) // num_classes
        s = scores.asnumpy().reshape(batch, num_classes, anchors).transpose(0, 2, 1)
        b = bboxes.slice_axis(axis=1, begin=0, end=anchors).asnumpy() / size
        return per_class_detections(s, b, nms, floor, post)

    return decode
