"""Decoding raw SSD outputs in numpy: MXNet's two decoders, rewritten operation for operation.

Why: an exported graph run by ONNX Runtime has no MXNet behind it, and a process that only
detects should not pay MXNet's ~3 s import. The numbers must still be the MXNet Detector's, so
each function here reproduces one MXNet operator's CPU code in float32, quirks included:

* ``multibox_detection`` — ``contrib.MultiBoxDetection`` after a softmax (TinySSD and any
  network with d2l's multibox heads): per anchor the best non-background class, a score floor,
  box decoding with variances (0.1, 0.1, 0.2, 0.2) and clipping, a stable sort by score, and
  greedy per-class NMS (IoU ≥ threshold suppresses) over the best ``nms_topk`` (400); MXNet
  1.9.1 drops the candidates past those, whatever their score, and so does this.
* ``box_nms_detection`` — ``contrib.box_nms`` as GluonCV's SSDs use it after their in-graph
  decoder: candidates with id ≥ 0 and score > 0.01, the best 400, greedy per-class NMS
  (IoU > threshold suppresses), the first 100 kept.

Which one a graph needs is named by its recipe's ``export_outputs`` ("array_decode"), so the
ONNX engine picks it without knowing the architecture. ``tests/test_onnx.py`` checks both
against MXNet on thousands of candidates.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence

import numpy as np

from ssd.models.recipe import Detections

MULTIBOX_TOPK = 400          # MultiBoxDetection's nms_topk: candidates sorted before NMS
MULTIBOX_VARIANCES = (0.1, 0.1, 0.2, 0.2)
BOX_NMS_TOPK = 400           # box_nms candidates entering NMS (GluonCV's default)
BOX_NMS_KEEP = 100           # detections kept per image after NMS (GluonCV's default)
BOX_NMS_FLOOR = 0.01         # GluonCV's decoders drop class scores below this, whatever we ask

_F = np.float32


SMALL_SOFTMAX = 7            # up to this many columns, softmax goes column by column (below)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """float32 softmax (the max subtracted first, as MXNet does).

    With a few classes on the last axis (TinySSD has two columns), numpy's reductions along that
    short axis cost more than the rest of the decoder (0.3 ms per 5,444 anchors here); a running
    maximum and sum over the columns, as whole-array operations, give the same numbers (the sum
    adds left to right, as numpy does for fewer than eight terms) several times faster.
    """
    if axis in (-1, x.ndim - 1) and 1 < x.shape[-1] <= SMALL_SOFTMAX:
        cols = [x[..., k] for k in range(x.shape[-1])]
        top = cols[0]
        for c in cols[1:]:
            top = np.maximum(top, c)
        e = np.exp(x - top[..., None])
        total = e[..., 0].copy()
        for k in range(1, x.shape[-1]):
            total += e[..., k]
        return e / total[..., None]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray, areas: np.ndarray, area: np.float32) -> np.ndarray:
    """IoU of one corner box with many, in float32, with MXNet's arithmetic (``CalculateOverlap``: the
    same operations in the same order), so ties at an NMS threshold fall the same way."""
    w = np.maximum(_F(0), np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]))
    h = np.maximum(_F(0), np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]))
    inter = w * h
    union = area + areas - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union <= 0, _F(0), inter / union)
    return iou.astype(_F, copy=False)


NMS_BLOCK = 128             # rows of the IoU matrix computed at once: its temporaries stay in cache


def greedy_nms(ids: np.ndarray, boxes: np.ndarray, threshold: float, strict: bool,
               areas: np.ndarray = None) -> np.ndarray:
    """Keep-mask of greedy per-class NMS over rows already in their processing order.

    A row suppresses the later rows of its class whose IoU with it is ≥ ``threshold``
    (``strict``: > ``threshold``), unless it was suppressed itself. The IoUs of all later pairs
    are computed first, in blocks of ``NMS_BLOCK`` rows (400 rows at once made 640 kB temporaries
    that left the cache: 2.1 ms, blocked 0.4 ms), then one pass keeps and suppresses
    (``suppress``): a row-by-row loop computing its IoUs cost ~10 ms per image at the results floor.
    """
    n = len(ids)
    if areas is None:
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if n < 2:
        return np.ones(n, dtype=bool)
    corners = [np.ascontiguousarray(boxes[:, k], dtype=_F) for k in range(4)]
    areas = np.asarray(areas, dtype=_F)
    several = bool((ids != ids[0]).any())     # several classes: only a row's own class is suppressed
    hit = np.zeros((n, n), dtype=bool)
    for top in range(0, n, NMS_BLOCK):
        rows, cols = slice(top, min(n, top + NMS_BLOCK)), slice(top, n)
        hit[rows, cols] = _over_threshold(corners, areas, rows, cols, _F(threshold), strict)
        if several:
            hit[rows, cols] &= np.equal.outer(ids[rows], ids[cols])
    return suppress(np.triu(hit, 1))


def _over_threshold(corners: List[np.ndarray], areas: np.ndarray, rows: slice, cols: slice, thr: np.float32,
                    strict: bool) -> np.ndarray:
    """IoU of each row box with each column box against ``thr``, in float32 with MXNet's
    arithmetic (``CalculateOverlap``: the same operations in the same order), so ties at an NMS
    threshold fall the same way."""
    x1, y1, x2, y2 = corners
    w = np.minimum.outer(x2[rows], x2[cols])
    w -= np.maximum.outer(x1[rows], x1[cols])
    np.maximum(w, _F(0), out=w)
    h = np.minimum.outer(y2[rows], y2[cols])
    h -= np.maximum.outer(y1[rows], y1[cols])
    np.maximum(h, _F(0), out=h)
    w *= h                                           # the intersections
    union = np.add.outer(areas[rows], areas[cols])
    union -= w
    iou = np.zeros_like(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(w, union, out=iou, where=~(union <= 0))
    return (iou > thr) if strict else (iou >= thr)


def suppress(hit: np.ndarray) -> np.ndarray:
    """The greedy pass: ``hit[i, j]`` (j > i) says row i suppresses row j if i is alive itself.

    Each row is a bit set (a Python int), so a step is one integer ``&`` instead of a numpy call
    on a boolean row: at the results floor a few hundred rows take ~0.1 ms instead of ~0.6 ms.
    """
    n = len(hit)
    rows = np.flatnonzero(hit.any(axis=1))
    if not len(rows):
        return np.ones(n, dtype=bool)
    packed = np.packbits(hit[rows], axis=1, bitorder="little")
    alive = (1 << n) - 1
    for i, bits in zip(rows.tolist(), packed):
        if alive >> i & 1:
            alive &= ~int.from_bytes(bits.tobytes(), "little")
    octets = np.frombuffer(alive.to_bytes(packed.shape[1], "little"), dtype=np.uint8)
    return np.unpackbits(octets, count=n, bitorder="little").astype(bool)


def _by_score(ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray) -> Detections:
    order = np.argsort(-scores, kind="stable")
    return ids[order].astype(np.int64), scores[order].astype(np.float32), boxes[order].astype(np.float32)


def _decode_boxes(anchors: np.ndarray, loc: np.ndarray) -> np.ndarray:
    """MultiBoxDetection's TransformLocations with clipping, float32."""
    vx, vy, vw, vh = (_F(v) for v in MULTIBOX_VARIANCES)
    al, at, ar, ab = anchors[:, 0], anchors[:, 1], anchors[:, 2], anchors[:, 3]
    aw, ah = ar - al, ab - at
    ax, ay = (al + ar) / _F(2), (at + ab) / _F(2)
    ox, oy = loc[:, 0] * vx * aw + ax, loc[:, 1] * vy * ah + ay
    ow, oh = np.exp(loc[:, 2] * vw) * aw / _F(2), np.exp(loc[:, 3] * vh) * ah / _F(2)
    out = np.stack([ox - ow, oy - oh, ox + ow, oy + oh], axis=1)
    return np.clip(out, _F(0), _F(1)).astype(_F, copy=False)


def multibox_detection(anchors: np.ndarray, cls_preds: np.ndarray, box_preds: np.ndarray,
                       floor: float, nms: float) -> List[Detections]:
    """``(1, N, 4)`` anchors, ``(B, N, C+1)`` class logits, ``(B, N*4)`` offsets → detections per image."""
    anchors = np.asarray(anchors, dtype=_F).reshape(-1, 4)
    probs = softmax(np.asarray(cls_preds, dtype=_F))
    locs = np.asarray(box_preds, dtype=_F).reshape(probs.shape[0], -1, 4)
    out = []
    for p, loc in zip(probs, locs):
        fg = p[:, 1:]
        best = fg.argmax(axis=1)                 # first maximum, as the strict ">" of MXNet's loop
        score = fg[np.arange(len(fg)), best]
        keep = np.flatnonzero(score >= _F(floor))
        ids, scores = best[keep], score[keep]
        boxes = _decode_boxes(anchors[keep], loc[keep])
        if len(keep) and 0 < nms <= 1:
            order = np.argsort(-scores, kind="stable")[:MULTIBOX_TOPK]
            ids, scores, boxes = ids[order], scores[order], boxes[order]
            alive = greedy_nms(ids, boxes, nms, strict=False)
            ids, scores, boxes = ids[alive], scores[alive], boxes[alive]
        out.append(_by_score(ids, scores, boxes))
    return out


def _box_areas(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.where((w < 0) | (h < 0), _F(0), w * h).astype(_F, copy=False)


def box_nms_detection(ids: np.ndarray, scores: np.ndarray, boxes_px: np.ndarray, width: int, height: int,
                      floor: float, nms: float) -> List[Detections]:
    """GluonCV graph outputs ``(B, M, 1)`` ids, ``(B, M, 1)`` scores, ``(B, M, 4)`` boxes in input
    pixels → detections per image, boxes normalized and clipped, sorted by score."""
    scale = np.array([width, height, width, height], dtype=_F)
    out = []
    for c, s, b in zip(np.asarray(ids, _F)[..., 0], np.asarray(scores, _F)[..., 0], np.asarray(boxes_px, _F)):
        if 0 < nms < 1:
            valid = np.flatnonzero((s > _F(BOX_NMS_FLOOR)) & (c >= 0))
            order = valid[np.argsort(-s[valid], kind="stable")][:BOX_NMS_TOPK]
            alive = greedy_nms(c[order], b[order], nms, strict=True, areas=_box_areas(b[order]))
            rows = order[alive][:BOX_NMS_KEEP]
            c, s, b = c[rows], s[rows], b[rows]
        keep = (c >= 0) & (s >= _F(floor))
        out.append(_by_score(c[keep], s[keep], np.clip(b[keep] / scale, 0.0, 1.0)))
    return out


def _multibox(outputs: Sequence[np.ndarray], meta: Dict[str, Any], floor: float, nms: float) -> List[Detections]:
    anchors, cls_preds, box_preds = outputs
    return multibox_detection(anchors, cls_preds, box_preds, floor, nms)


def _box_nms(outputs: Sequence[np.ndarray], meta: Dict[str, Any], floor: float, nms: float) -> List[Detections]:
    ids, scores, boxes = outputs
    size = int(meta["input_size"])
    return box_nms_detection(ids, scores, boxes, size, size, floor, nms)


def _torchvision(outputs: Sequence[np.ndarray], meta: Dict[str, Any], floor: float, nms: float) -> List[Detections]:
    """A converted torchvision detector: its graph's per-class scores and boxes for every anchor
    (GluonCV's layout), NMS'd per class as ``gluoncv.decode.torchvision_decoder`` does."""
    from ssd.models.per_class_nms import per_class_detections

    _, scores, boxes = (np.asarray(o, dtype=_F) for o in outputs)
    classes, batch = len(meta["classes"]), scores.shape[0]
    anchors = scores.shape[1] // classes
    s = scores.reshape(batch, classes, anchors).transpose(0, 2, 1)
    b = boxes[:, :anchors] / _F(meta["input_size"])
    return per_class_detections(s, b, nms, floor, dict(meta.get("postprocess") or {}))


def _torchvision_box_coder(outputs: Sequence[np.ndarray], meta: Dict[str, Any], floor: float,
                           nms: float) -> List[Detections]:
    """A graph ending at the heads (SSDlite: anchors, class logits, box offsets): torchvision's box
    coder and per-class NMS with the model's ``postprocess`` numbers (``ssd.models.torchvision_decode``)."""
    from ssd.models.torchvision_decode import PostProcess, decode_arrays

    anchors, cls_preds, box_preds = outputs
    return decode_arrays(anchors, cls_preds, box_preds, PostProcess.from_meta(meta), nms, floor)


# scheme name (a recipe's export_outputs()["array_decode"], or its array_decode(meta)) →
# (graph outputs, model meta, floor, nms) → detections
ArrayDecoder = Callable[[Sequence[np.ndarray], Dict[str, Any], float, float], List[Detections]]
ARRAY_DECODERS: Dict[str, ArrayDecoder] = {"multibox": _multibox, "box_nms": _box_nms, "torchvision": _torchvision,
                                           "torchvision_box_coder": _torchvision_box_coder}


def array_decoder(scheme: str) -> ArrayDecoder:
    """The numpy decoder of a decoding scheme; ``KeyError`` message names the known ones."""
    try:
        return ARRAY_DECODERS[scheme]
    except KeyError:
        raise KeyError(f"no numpy decoder for {scheme!r}; known: {', '.join(ARRAY_DECODERS)}") from None
