"""The fast paths of the numpy decoders and the results writer give the plain formulas' numbers.

``greedy_nms`` keeps its greedy pass as integer bit sets, ``softmax`` goes column by column for a
few classes, ``detections_list`` works on whole arrays: each is checked here against the
straightforward version (row by row, numpy's reductions, Python per value), on inputs built to
hit the edges: IoUs exactly at the threshold, several classes, NaN, -0.0, tied scores, limits.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from ssd.camtrap.megadetector import COORD_DIGITS, CONF_DIGITS, detections_list
from ssd.models.array_decode import greedy_nms, softmax, suppress


def _nms_reference(ids, boxes, threshold, strict):
    """Greedy NMS as the textbook loop: each kept row suppresses the later rows of its class."""
    f = np.float32
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    alive = np.ones(len(ids), bool)
    for i in range(len(ids)):
        if not alive[i]:
            continue
        for j in range(i + 1, len(ids)):
            if ids[j] != ids[i]:
                continue
            w = max(f(0), min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(f(0), min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = f(w * h)
            union = f(areas[i] + areas[j] - inter)
            iou = f(0) if union <= 0 else f(inter / union)
            if (iou > f(threshold)) if strict else (iou >= f(threshold)):
                alive[j] = False
    return alive


def _grid_boxes(rng, n):
    """Boxes on a coarse grid: many identical IoUs, and some exactly at 0.5 or 1/3."""
    corner = rng.integers(0, 8, (n, 2)) / 8
    size = rng.integers(1, 4, (n, 2)) / 8
    return np.concatenate([corner, corner + size], axis=1).astype(np.float32)


@pytest.mark.parametrize("strict", [False, True])
def test_greedy_nms_keeps_what_the_textbook_loop_keeps(strict):
    rng = np.random.default_rng(7)
    differing, suppressed = 0, 0
    for trial in range(150):
        n = int(rng.integers(0, 90))
        ids = rng.integers(0, 1 + trial % 3, n).astype(np.float32)
        boxes = _grid_boxes(rng, n)
        for threshold in (0.5, 1 / 3, 0.45):
            want = _nms_reference(ids, boxes, threshold, strict)
            got = greedy_nms(ids, boxes, threshold, strict)
            differing += not np.array_equal(got, want)
            suppressed += int((~want).sum())
    for n in (129, 300):              # more rows than one block of the IoU matrix
        ids = rng.integers(0, 2, n).astype(np.float32)
        boxes = _grid_boxes(rng, n)
        want = _nms_reference(ids, boxes, 0.5, strict)
        differing += not np.array_equal(greedy_nms(ids, boxes, 0.5, strict), want)
        suppressed += int((~want).sum())
    assert differing == 0
    assert suppressed > 1000          # the inputs did make NMS work


def test_suppress_follows_chains_of_suppression():
    # 0 suppresses 1; 1 (dead) would suppress 2, so 2 lives; 2 suppresses 3; 4 is alone
    hit = np.zeros((5, 5), bool)
    hit[0, 1] = hit[1, 2] = hit[2, 3] = True
    assert suppress(hit).tolist() == [True, False, True, False, True]
    # more than 64 rows: the bit sets span several machine words
    n = 200
    chain = np.zeros((n, n), bool)
    chain[np.arange(n - 1), np.arange(1, n)] = True
    assert suppress(chain).tolist() == [i % 2 == 0 for i in range(n)]
    assert suppress(np.zeros((3, 3), bool)).all()


@pytest.mark.parametrize("columns", [1, 2, 3, 5, 7, 8, 21])
def test_softmax_gives_numpys_numbers(columns):
    x = (np.random.default_rng(columns).standard_normal((3, 700, columns)) * 6).astype(np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    want = e / e.sum(axis=-1, keepdims=True)
    got = softmax(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.array_equal(got, want)               # bit for bit, the few-column path included


def _entries_reference(class_ids, scores, boxes_px, size, floor, limit):
    """MegaDetector entries per value in Python floats, best score first (stable)."""
    w, h = float(size[0]), float(size[1])
    out = []
    for i in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        s, b = float(scores[i]), [float(v) for v in boxes_px[i]]
        if s < floor or len(out) >= limit:
            break
        x1, y1 = min(max(b[0] / w, 0.0), 1.0), min(max(b[1] / h, 0.0), 1.0)
        x2, y2 = min(max(b[2] / w, 0.0), 1.0), min(max(b[3] / h, 0.0), 1.0)
        out.append({"category": str(int(class_ids[i]) + 1), "conf": round(s, CONF_DIGITS),
                    "bbox": [round(v, COORD_DIGITS) for v in (x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1))]})
    return out


def test_detections_list_writes_what_the_per_value_version_writes():
    rng = np.random.default_rng(11)
    written = 0
    for trial in range(400):
        n = int(rng.integers(0, 160))
        ids = rng.integers(0, 4, n).astype(np.float32 if trial % 2 else np.int64)
        scores = rng.random(n).astype(np.float32)
        boxes = (rng.random((n, 4)) * 2300 - 150).astype(np.float32)
        if n:
            scores[: n // 3] = np.float32(0.5)                  # ties keep their order
            boxes[0] = [-0.0, 0.0, np.nan, 1920.0]              # Python's min/max on NaN and -0.0
            if trial % 4 == 0:
                scores[-1] = np.nan
        floor, limit = (0.0, 0.005, 0.4, 0.9)[trial % 4], (0, 1, 25, 100)[trial % 4 - 1]
        want = _entries_reference(ids, scores, boxes, (1920, 1080), floor, limit)
        got = detections_list(ids, scores, boxes, (1920, 1080), floor, limit)
        assert json.dumps(got) == json.dumps(want)
        written += len(got)
    assert written > 2000
