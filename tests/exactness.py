"""Comparing a converted detector with torchvision's own forward pass (see torchvision_reference.py).

``make_reference(model, out_dir)`` runs ``tests/torchvision_reference.py`` with Debian's
``/usr/bin/python3`` (python3-torchvision; torch never enters our venv) and returns the folder with
``checkpoint.pth`` and ``reference.npz``. ``reference_unavailable()`` is the skip reason where that
Python lacks torchvision. The assertions take our outputs in our conventions: raw class logits for
the kept class slots and box offsets per anchor; final detections as ``(ids, scores, boxes)`` with
boxes normalized to the input side, matched one to one whatever their order among equal scores.
``nearly_same_detections`` compares two engines end to end, allowing NMS-threshold flips.
"""
from __future__ import annotations

import os
import subprocess
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_reference.py")
BACKBONE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_backbone_reference.py")
RAW_ATOL = 1e-4          # raw class logits and box offsets
SCORE_ATOL = 1e-4        # final scores
BOX_ATOL = 1e-3          # final boxes, as a fraction of the image side (our unit)


def reference_unavailable() -> Optional[str]:
    """Why the torchvision reference cannot run here, or None when it can."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} does not exist (the reference is Debian's python3-torchvision)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import torch, torchvision"], capture_output=True, text=True)
    if probe.returncode != 0:
        return (f"{SYSTEM_PYTHON} cannot import torchvision (apt-get install python3-torchvision): "
                f"{probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'unknown error'}")
    return None


def make_reference(model: str, out_dir: str, seed: int = 0, images: int = 3) -> str:
    """torchvision's ``model`` with deterministic random weights: ``checkpoint.pth`` + ``reference.npz``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    subprocess.run([SYSTEM_PYTHON, SCRIPT, "--model", model, "--out", out_dir, "--seed", str(seed),
                    "--images", str(images)], check=True, env=env, capture_output=True, timeout=600)
    return out_dir


def make_backbone_reference(model: str, out_dir: str, constant: bool = False, seed: int = 0) -> str:
    """torchvision's ImageNet ``model`` (``checkpoint.pth``; with ``reference.npz`` of its feature maps, or
    a few-kB file of one value per tensor when ``constant``): tests/torchvision_backbone_reference.py."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    subprocess.run([SYSTEM_PYTHON, BACKBONE_SCRIPT, "--model", model, "--out", out_dir, "--seed", str(seed)]
                   + (["--constant"] if constant else []), check=True, env=env, capture_output=True, timeout=600)
    return out_dir


def backbone_reference_or_skip(model: str, tmp_path_factory, constant: bool = False) -> str:
    """``make_backbone_reference`` in a fresh pytest folder, or the test skipped with the reason it cannot run."""
    import pytest

    why = reference_unavailable()
    if why:
        pytest.skip(f"torchvision reference unavailable: {why}")
    return make_backbone_reference(model, str(tmp_path_factory.mktemp(f"tv-{model}")), constant=constant)


def load_reference(out_dir: str) -> Dict[str, np.ndarray]:
    with np.load(os.path.join(out_dir, "reference.npz")) as ref:
        return {k: ref[k] for k in ref.files}


def assert_raw_close(cls_logits: np.ndarray, box_offsets: np.ndarray, ref: Dict[str, np.ndarray],
                     kept_slots: Sequence[int], atol: float = RAW_ATOL) -> Dict[str, float]:
    """Our (B, N, len(kept_slots)) logits and (B, N, 4) offsets against torchvision's; returns the max errors."""
    want_cls = ref["cls_logits"][:, :, list(kept_slots)]
    assert cls_logits.shape == want_cls.shape, (cls_logits.shape, want_cls.shape)
    assert box_offsets.shape == ref["bbox_regression"].shape
    err = {"cls": float(np.abs(cls_logits - want_cls).max()),
           "box": float(np.abs(box_offsets - ref["bbox_regression"]).max())}
    assert err["cls"] <= atol and err["box"] <= atol, err
    return err


def unmatched(a: Tuple[np.ndarray, np.ndarray, np.ndarray], b: Tuple[np.ndarray, np.ndarray, np.ndarray],
              box_tol: float, score_tol: float) -> List[int]:
    """Indices of ``a``'s detections ``(classes, scores, boxes)`` with no partner in ``b`` of the same
    class, box within ``box_tol`` and score within ``score_tol``; each partner is used once.

    Two implementations of one network agree to ~1e-5, so detections whose scores tie to that
    precision may come out in either order: a comparison by position would fail a correct port."""
    (ca, sa, ba), (cb, sb, bb) = a, b
    free = np.ones(len(cb), dtype=bool)
    missing = []
    for i in range(len(ca)):
        ok = free & (cb == ca[i]) & (np.abs(sb - sa[i]) <= score_tol) & (np.abs(bb - ba[i]).max(axis=1) <= box_tol)
        hits = np.flatnonzero(ok)
        if len(hits):
            free[hits[np.argmin(np.abs(sb[hits] - sa[i]))]] = False
        else:
            missing.append(i)
    return missing


def assert_detections_match(ours: List, ref: Dict[str, np.ndarray], size: int, kept_slots: Sequence[int]) -> Dict[str, float]:
    """The same detections: one to one, same class, score within ``SCORE_ATOL``, box within
    ``BOX_ATOL`` of the side, in any order among equal scores (see ``unmatched``).

    ``ours[i]`` = ``(ids, scores, boxes normalized)``; our class id c is torchvision's slot
    ``kept_slots[c + 1]`` (slot 0 is the background). Returns the max errors of the matched pairs
    taken in order (0 where the orders agree).
    """
    slot_to_ours = {s: i - 1 for i, s in enumerate(kept_slots)}
    worst = {"score": 0.0, "box": 0.0, "detections": 0}
    for i, (ids, scores, boxes) in enumerate(ours):
        labels = np.array([slot_to_ours[int(l)] for l in ref[f"labels_{i}"]], dtype=np.int64)
        want = (labels, ref[f"scores_{i}"], ref[f"boxes_{i}"] / size)
        assert len(ids) == len(labels), f"image {i}: {len(ids)} detections, torchvision {len(labels)}"
        missing = unmatched(want, (ids, scores, boxes), BOX_ATOL, SCORE_ATOL)
        assert not missing, f"image {i}: torchvision's detections {missing[:5]} have no match in ours"
        assert (np.diff(scores) <= 0).all(), f"image {i}: not sorted by score"
        same = ids == labels
        if same.any():
            worst["score"] = max(worst["score"], float(np.abs(scores - want[1])[same].max()))
            worst["box"] = max(worst["box"], float(np.abs(boxes - want[2])[same].max()))
        worst["detections"] += len(ids)
    return worst


def nearly_same_detections(ref, got, box_tol: float = 1e-3, score_tol: float = 1e-4) -> bool:
    """All but 1% (at least 2) of each side's detections have one on the other side of the same class,
    box and score: what float noise can flip at the NMS threshold, both ways (two engines, or two
    frameworks, compared end to end; their raw outputs are compared strictly)."""
    def lost(a, b):
        return sum(not ((i2 == c) & (np.abs(s2 - s) <= score_tol) & (np.abs(b2 - bx).max(axis=1) <= box_tol)).any()
                   for (i1, s1, b1), (i2, s2, b2) in zip(a, b) for c, s, bx in zip(i1, s1, b1))
    total = sum(len(d[0]) for d in ref)
    allowed = max(2, total // 100)
    return total > 0 and lost(ref, got) <= allowed and lost(got, ref) <= allowed
