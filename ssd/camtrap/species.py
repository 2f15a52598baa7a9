"""Species classifications in a MegaDetector results file: what a classifier (SpeciesNet, AddaxAI,
MegaDetector's own classification pipeline) adds, read without trusting it.

The format (MegaDetector's batch format 1.6): top-level ``classification_categories`` (id -> name),
optionally ``classification_category_descriptions`` (id -> a taxonomy string; SpeciesNet writes
``uuid;class;order;family;genus;species;common name``), and per detection ``classifications``,
``[[id, score], ...]``, highest first by custom but not by rule (MegaDetector's own postprocessing
sorts them again before reading the first).

Why a module: the checker (``results_check``) checks the names but keeps a detection's other fields
as a classifier wrote them; every reader here asks the same questions (which classifier keys to
carry, what a detection's top species is) and answers a malformed entry with "none", never a
traceback, since a file that was accepted before must still be.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

#: The top-level keys a classifier adds: carried, exactly, by every command that rewrites a file.
CLASSIFICATION_KEYS = ("classification_categories", "classification_category_descriptions")


def classification_head(doc: Dict[str, Any]) -> Dict[str, Any]:
    """The classifier's top-level keys ``doc`` holds (in ``CLASSIFICATION_KEYS``' order), to write
    beside ``detection_categories`` in a file made from it."""
    return {k: doc[k] for k in CLASSIFICATION_KEYS if doc.get(k) is not None}


def has_classifications(doc: Dict[str, Any]) -> bool:
    """Whether ``doc`` names any species class (its tables then gain the species columns)."""
    cats = doc.get("classification_categories")
    return isinstance(cats, dict) and bool(cats)


#: The classification score at which a detection counts for its top species (``results summary
#: --species-threshold``): MegaDetector's own postprocessing leaves classifications below 0.5 alone
#: (``ClassificationSmoothingOptions.classification_confidence_threshold`` in
#: ``megadetector/postprocessing/classification_postprocessing.py``, also what it counts by in
#: ``count_detections_by_classification_category``).
SPECIES_THRESHOLD = 0.5


def top_classification(det: Any, names: Dict[str, str]) -> Optional[Tuple[str, float]]:
    """The detection's highest-scoring classification as (class name, score); None where it has
    none, or none that is a listed id with a finite score within 0-1 (such pairs are passed over)."""
    top = top_pair(det, names)
    return None if top is None else (names[top[0]], top[1])


def top_pair(det: Any, names: Dict[str, str]) -> Optional[Tuple[str, float]]:
    """``top_classification`` as (class id, score): what a reader that keeps little of each
    detection keeps (``summary.summary_entry``)."""
    pairs = det.get("classifications") if isinstance(det, dict) else None
    if not isinstance(pairs, list):
        return None
    best: Optional[Tuple[str, float]] = None
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) < 2:
            continue
        cid, score = pair[0], pair[1]
        if not isinstance(cid, str) or cid not in names or isinstance(score, bool) \
                or not isinstance(score, (int, float)) or not math.isfinite(score) or not 0 <= score <= 1:
            continue
        if best is None or score > best[1]:
            best = (cid, float(score))
    return best


#: The columns the tables (CSV, XLSX) gain where a file is classified: last, so that the columns
#: before them keep their places for readers that count them, and absent from files without species.
SPECIES_COLUMNS = ["species", "species_score"]


def species_names(doc: Dict[str, Any]) -> Optional[Dict[str, str]]:
    """The file's species classes where it has any (its tables then gain ``SPECIES_COLUMNS``), else None."""
    return doc["classification_categories"] if has_classifications(doc) else None


def species_cells(det: Any, names: Dict[str, str], score_text: bool = True) -> List[Any]:
    """A detection's ``SPECIES_COLUMNS``: its top class and score (the score as the CSV writes a
    confidence, ``0.920``, or a number with ``score_text=False``), blank where it has none."""
    top = top_classification(det, names)
    if top is None:
        return ["", ""] if score_text else ["", None]
    return [top[0], f"{top[1]:.3f}" if score_text else top[1]]


#: SpeciesNet's taxonomy string: ``uuid;class;order;family;genus;species;common name``.
TAXONOMY_FIELDS = 7
#: The longest scientific name taken from a description (the taxa file's own cell limit).
MAX_NAME = 200


def taxonomy_name(description: Any) -> Optional[str]:
    """The scientific name a SpeciesNet-style taxonomy string gives: ``Genus species`` where both
    are there, else the lowest rank named (genus, family, order, class), capitalised as GBIF writes
    them; None for anything else (a blank, a plain name, a control character, too long).

    Why: GBIF and Agouti use a Camtrap DP observation only through its scientific name, and a
    SpeciesNet file carries one for each class; a common name ("red deer") is not one."""
    if not isinstance(description, str) or len(description) > MAX_NAME * 2:
        return None
    parts = [p.strip() for p in description.split(";")]
    if len(parts) != TAXONOMY_FIELDS or any(not p.isprintable() for p in parts):
        return None
    _, cls, order, family, genus, species, _common = parts
    if genus and species:
        name = f"{genus.capitalize()} {species.lower()}"
    else:
        name = next((rank.capitalize() for rank in (genus, family, order, cls) if rank), "")
    return name if name and len(name) <= MAX_NAME and name[0].isalpha() else None


def classifier_name(doc: Dict[str, Any]) -> Optional[str]:
    """Which classifier named the species (``info.classifier``, as MegaDetector's tools write it), else None."""
    name = (doc.get("info") or {}).get("classifier")
    return name.strip() if isinstance(name, str) and name.strip() and name.isprintable() else None
