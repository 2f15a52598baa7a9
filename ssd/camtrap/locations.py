"""A locations CSV: each camera folder's latitude and longitude, which Camtrap DP requires and a
results file cannot know.

One row per camera: ``deploymentID`` (or ``camera``, as summary and sort call it, or ``folder``),
``latitude``, ``longitude``. A header without those columns is refused as a header, naming what it
has: blamed on line 2 it sent people looking for a wrong row.
"""
from __future__ import annotations

import re

from typing import Dict, List, Optional, Tuple

from ssd.camtrap.csv_table import read_csv_table
from ssd.camtrap.megadetector import ResultsError

KEY_COLUMNS = ("deploymentID", "camera", "folder")
NEEDED = "deploymentID (or camera), latitude, longitude"


def _key_column(path: str, header: Optional[List[str]]) -> str:
    """The column naming the camera; ``ResultsError`` for a header without the three columns."""
    names = [str(n).strip() for n in header or []]
    key = next((k for k in KEY_COLUMNS if k in names), None)
    if key is None or "latitude" not in names or "longitude" not in names:
        shown = ",".join(names)[:200]
        raise ResultsError(f"locations file '{path}': its header is '{shown}'; the first line must name the "
                           f"columns {NEEDED} (one row per camera folder)")
    return key


_DECIMAL = re.compile(r"[-+]?[0-9]+(?:[.,][0-9]+)?|[-+]?[.,][0-9]+", re.ASCII)


def decimal(text: object) -> float:
    """A number as a spreadsheet writes it: ``52.37``, or ``52,37`` where the comma is the decimal mark
    (Excel in most of Europe); ``ValueError`` for anything else. Stricter than ``float``, which also
    takes ``1_0``, other scripts' digits, ``inf``, ``nan`` and exponents: none is a position."""
    value = str(text or "").strip()
    if not _DECIMAL.fullmatch(value):
        raise ValueError(value)
    return float(value.replace(",", "."))


def read_locations(path: str) -> Dict[str, Tuple[float, float]]:
    """A locations CSV → camera folder → ``(latitude, longitude)``."""
    header, rows = read_csv_table(path, "locations file")
    key_column = _key_column(path, header)
    out: Dict[str, Tuple[float, float]] = {}
    for k, row in rows:
        key = (row.get(key_column) or "").strip()
        try:
            lat, lon = decimal(row.get("latitude")), decimal(row.get("longitude"))
        except ValueError:
            raise ResultsError(f"{path}, line {k}: latitude and longitude must be numbers") from None
        if not key or not -90 <= lat <= 90 or not -180 <= lon <= 180:
            raise ResultsError(f"{path}, line {k}: needs a {key_column} (the camera folder), latitude within "
                               "±90 and longitude within ±180")
        out[key] = (lat, lon)
    return out
