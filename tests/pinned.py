"""Outputs pinned byte for byte: each run's outputs held to the file made from the code before a rewrite.

Why: the results commands were rewritten to read files as they go; a pinned file, generated once
from the old code, is what makes "the same outputs" a test rather than a claim. A change meant to
alter outputs re-pins with ``SSD_REPIN=1`` (only the plain variant writes the file).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict


def held_to_pin(got: Dict[str, Any], pinned_path: str, may_repin: bool = True) -> None:
    """Assert ``got`` (run name → outputs) equals the pinned file, run by run (the failing name shown)."""
    if may_repin and os.environ.get("SSD_REPIN"):
        with open(pinned_path, "w", encoding="utf-8") as fh:
            json.dump(got, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
    with open(pinned_path, encoding="utf-8") as fh:
        pinned = json.load(fh)
    assert set(got) == set(pinned)
    for name in got:
        assert got[name] == pinned[name], name


def reading_in_pieces(monkeypatch: Any, read_chars: Any) -> None:
    """Results files read ``read_chars`` characters at a time (None: as shipped), so values are cut at
    every place a buffer can end: the stream reader's concern, held for each command that uses it."""
    if read_chars is not None:
        from ssd.camtrap import results_stream
        monkeypatch.setattr(results_stream, "READ_CHARS", read_chars)
