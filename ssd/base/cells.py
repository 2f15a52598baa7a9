"""Spreadsheet cells from untrusted text: no formula ever starts in a CSV or XLSX file we write.

Why: file names, class names and folder names come from outside (a results file, a camera card).
A cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheet programs strip before looking) is run as a formula when the file is opened in Excel or
LibreOffice: ``=HYPERLINK(...)`` can leak data, ``=cmd|...`` has run programs. OWASP's advice (CSV
injection) is to make such a cell plain text by putting an apostrophe in front of it, which is
what ``safe_cell`` does. Numbers are left as numbers: only text can carry a formula.
"""
from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell that never runs: text that could start a formula gets a leading ``'``.

    Non-text values (numbers, booleans, None) pass unchanged, so a negative number stays a number.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
