"""The flags that say what counts as a detection, shared by ``results summary|sort|export``.

Why one place: a threshold, per-class thresholds and whether suspect repeats count mean the same in
every command; each command adds them with ``shown_args`` and reads them with ``shown_filter``.
"""
from __future__ import annotations

import argparse

from ssd.base.argtypes import class_thresholds, probability

#: The positional every ``results`` action reads, said once.
RESULTS_HELP = "a results file in MegaDetector's batch format (detect --json, or MegaDetector's own)"


def shown_args(p: argparse.ArgumentParser, suspect_help: str = "count detections flagged as repeats") -> None:
    """--threshold, --thresholds and --show-suspect: what counts as a detection (one set of flags)."""
    p.add_argument("--threshold", type=probability, default=None,
                   help="score at which a detection counts (default: the file's typical threshold)")
    p.add_argument("--thresholds", type=class_thresholds, default=None, metavar="CLASS=T,...",
                   help="a threshold of their own for some classes, e.g. animal=0.2,person=0.5 (others: --threshold)")
    p.add_argument("--show-suspect", action="store_true", help=suspect_help)


def _threshold(doc, given):
    if given is not None:
        return float(given)
    from ssd.camtrap.megadetector import typical_threshold
    return typical_threshold(doc)


def shown_filter(doc, args: argparse.Namespace, check: bool = True):
    """The ``ShownFilter`` the flags describe (per-class names checked against the file's classes;
    ``check=False``: not yet, for a reader that needs the filter before it has read both files and
    checks them after, so that a refusal of the files comes first, as it always has)."""
    from ssd.camtrap.megadetector import check_class_names
    from ssd.inference.filtering import ShownFilter

    per_class = args.thresholds or {}
    if check:
        check_class_names(per_class, doc["detection_categories"])
    return ShownFilter.of(_threshold(doc, args.threshold), hide_suspect=not args.show_suspect, per_class=per_class)


def species_threshold_arg(parser: argparse.ArgumentParser) -> None:
    """``--species-threshold``: where a file is classified into species (SpeciesNet, AddaxAI), the
    classification score at which a detection counts for its top species."""
    from ssd.base.argtypes import probability
    from ssd.camtrap.species import SPECIES_THRESHOLD

    parser.add_argument("--species-threshold", type=probability, default=SPECIES_THRESHOLD, metavar="SCORE",
                        help="files classified into species: the classification score at which a detection "
                             f"counts for its top species (default: {SPECIES_THRESHOLD:g}, as MegaDetector's "
                             "postprocessing)")
