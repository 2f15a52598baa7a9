"""The Losses page's anchor-roles figure with mining off draws every negative (5,000+ boxes):
one collection per role, not a matplotlib patch per box (a patch each took ~2.5 s a rerun here).
scripts/bench_roles_figure.py times it."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def _roles(n: int, positives: int):
    return SimpleNamespace(positives=np.arange(positives), negatives=np.arange(positives, n),
                           ignored=np.array([], dtype=int), total=n)


def _boxes(n: int) -> np.ndarray:
    xy = np.random.default_rng(0).uniform(0, 0.8, (n, 2))
    return np.hstack([xy, xy + 0.1])


def test_every_negative_and_positive_is_drawn_as_one_collection_each():
    from matplotlib.collections import PolyCollection

    from ssd.viz.learn import anchor_roles_figure

    boxes, roles = _boxes(5444), _roles(5444, 9)
    gt = np.array([[0.1, 0.1, 0.4, 0.5]])
    ax = anchor_roles_figure(np.zeros((256, 256, 3), np.uint8), boxes, roles, gt).axes[0]
    assert len(ax.patches) == len(gt)                          # the ground truth alone is a patch
    drawn = {len(c.get_paths()) for c in ax.collections if isinstance(c, PolyCollection)}
    assert drawn == {5435, 9}
    neg = next(c for c in ax.collections if isinstance(c, PolyCollection) and len(c.get_paths()) == 5435)
    first = neg.get_paths()[0].vertices[:4]                     # the first negative, in pixels of the 256-px image
    x0, y0, x1, y1 = boxes[9] * 256
    assert np.allclose(sorted({tuple(v) for v in first}), sorted({(x0, y0), (x1, y0), (x1, y1), (x0, y1)}))
