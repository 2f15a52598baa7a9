"""A small CSV a user made (locations, taxa): read the same way wherever one is given.

Why one reader: a spreadsheet saves CSV with a byte-order mark (Excel's "CSV UTF-8"), and where
the decimal separator is a comma (most of Europe) with ``;`` between cells; a FIFO or a huge file
given by mistake must be refused unread, not hang or fill memory. Header names are stripped, so
``deploymentID , latitude`` still names its columns.
"""
from __future__ import annotations

import csv
import io
import os
import stat
from typing import Dict, List, Tuple

from ssd.camtrap.megadetector import ResultsError

MAX_TABLE_BYTES = 2 << 20      # a row per camera or per class: a few kB; 2 MB is far beyond any real one


def _delimiter(first_line: str) -> str:
    """``;`` when the header is separated by semicolons and holds no comma (Excel where ``,`` is the
    decimal separator), else ``,``."""
    return ";" if ";" in first_line and "," not in first_line else ","


Rows = List[Tuple[int, Dict[str, str]]]


def read_csv_table(path: str, what: str, max_bytes: int = MAX_TABLE_BYTES) -> Tuple[List[str], Rows]:
    """(header names, ``(line number, row as a dict keyed by those names)`` per row, blank lines
    left out); ``ResultsError`` naming ``what`` and ``path``
    for a file that is missing, not a regular file, over ``max_bytes``, not UTF-8, or not CSV."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ResultsError(f"{what} '{path}' is not a file")
        if info.st_size > max_bytes:
            raise ResultsError(f"{what} '{path}' is {info.st_size / 1e6:.1f} MB: more than the "
                               f"{max_bytes / 1e6:.0f} MB such a table could need (refused unread)")
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read(max_bytes + 1)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text.split("\n", 1)[0]))
        header = [str(n).strip() for n in next(reader, [])]
        rows = [(reader.line_num, dict(zip(header, row))) for row in reader if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ResultsError(f"{what} '{path}' cannot be read ({err})") from None
    return header, rows
