"""Spreadsheet cells from untrusted text: no formula ever starts in a CSV or XLSX file we write.

Why: file names, class names and folder names come from outside (a results file, a camera card).
A cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheet programs strip before looking) is run as a formula when the file is opened in Excel or
LibreOffice: ``=HYPERLINK(...)`` can leak data, ``=cmd|...`` has run programs. OWASP's advice (CSV
injection) is to make such a cell plain text by putting an apostrophe in front of it, which is
what ``safe_cell`` does. Numbers are left as numbers: only text can carry a formula.
"""
from __future__ import annotations

import csv
import io
import re
from typing import IO, Any, Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell that never runs: text that could start a formula gets a leading ``'``.

    Non-text values (numbers, booleans, None) pass unchanged, so a negative number stays a number.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


#: What XML 1.0 (so XLSX) cannot hold: the C0 controls other than tab, line feed and carriage return.
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def xlsx_cell(value: Any) -> Any:
    """``safe_cell``, with the control characters a workbook cannot hold written as ``\\xHH``.

    Why: openpyxl refuses them with an exception, so one odd file name stopped the whole export.
    """
    value = safe_cell(value)
    if isinstance(value, str):
        return _NOT_IN_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return value


class CsvWriter:
    """``csv.writer`` with ``\n`` line ends that also quotes a cell holding a carriage return.

    Why: Python's writer quotes only the characters of its own line terminator, so with ``\n`` a
    name with a CR (a camera card copied from an old Mac) was written bare, and every reader
    (frictionless, spreadsheets) split the row there: a Camtrap DP package that no longer validated.
    """

    def __init__(self, fh: IO[str]) -> None:
        self._fh, self._plain = fh, csv.writer(fh, lineterminator="\n")
        self._buf = io.StringIO()
        self._crlf = csv.writer(self._buf, lineterminator="\r\n")     # quotes cells with \r or \n

    def writerow(self, row: Sequence[Any]) -> None:
        if not any(isinstance(c, str) and "\r" in c for c in row):
            self._plain.writerow(row)
            return
        self._buf.seek(0)
        self._buf.truncate()
        self._crlf.writerow(row)
        self._fh.write(self._buf.getvalue()[:-2] + "\n")

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(row)
