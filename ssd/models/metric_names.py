"""The training metrics' names and meanings, and reading histories written before they were split.

A history record's ``class_err`` is the d2l book's class error (arg-max over every anchor, d2l's
``cls_eval``) when the record also has ``mined_class_err``; older records have only ``class_err``
and it meant the error over the anchors the hard-negative-mined loss counts. Plots, the CLI and the
Train page read records through ``named_record`` so an old saved model's history shows under the
right name. (Lives below ``ssd.training`` so ``ssd.viz`` can read it too.)
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

# Named by its title, for the people who read the page (and can look it up).
CHAPTER = 'Dive into Deep Learning\'s "Single Shot Multibox Detection"'

# The Train page prints these under each name: one line each, what is measured.
METRIC_NOTES: Dict[str, str] = {
    "class err": f"class error as {CHAPTER} measures it (its cls_eval): arg-max class over every anchor vs "
                 "its target (background for unmatched anchors); mostly easy background, so small.",
    "bbox MAE": f"box error as {CHAPTER} measures it (its bbox_eval): mean |predicted − target offset| over "
                "all anchors' 4 offsets, zero outside positive anchors.",
    "mined class err": "class error over only the anchors the hard-negative-mined loss counts "
                       "(positives + the hardest negatives, 3 per positive): the hard cases, so much larger.",
}


def named_record(rec: Dict[str, Any]) -> Dict[str, Any]:
    """A history record with its metrics under truthful names, old records included.

    A record without ``mined_class_err`` predates the distinction: its ``class_err`` was the mined
    one, and the d2l book's class error was not recorded.
    """
    out = dict(rec)
    if "mined_class_err" not in rec:
        out["mined_class_err"] = rec.get("class_err")
        out["class_err"] = None
    return out


def named_history(history: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """``named_record`` over a whole history (what the plots and the Train page read)."""
    return [named_record(r) for r in history]
