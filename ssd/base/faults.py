"""Fault injection for the savers: tests stop a save between two of its steps.

Why: "a kill at any point leaves a consistent model" is only a claim until every point has been
tried. Savers call ``step("name")`` between their writes; a test sets ``HOOK`` to a function that
raises (standing in for ``kill -9``) at the step it is probing. In production ``HOOK`` is None and
``step`` costs one attribute lookup.
"""
from __future__ import annotations

from typing import Callable, Optional

HOOK: Optional[Callable[[str], None]] = None


class SimulatedKill(BaseException):
    """Raised by test hooks; a BaseException so no ``except Exception`` in a saver swallows it."""


def step(name: str) -> None:
    """Mark a point between two writes of a save (a place where a real kill could land)."""
    if HOOK is not None:
        HOOK(name)
