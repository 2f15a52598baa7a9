"""One lock around matplotlib text layout and rendering.

Why: matplotlib's mathtext parser (tick labels such as ``$10^{-2}$``) keeps parser state in module
globals; two Streamlit sessions drawing at once raised ``ParseException`` in about a third of page
loads. Builders (``tight_layout`` lays out text) and renderers (``savefig``, ``st.pyplot``) hold
``FIGURE_LOCK``; it is re-entrant, so a builder may call another.
"""
from __future__ import annotations

import functools
import threading
from typing import Callable, TypeVar

FIGURE_LOCK = threading.RLock()

F = TypeVar("F", bound=Callable)


def under_figure_lock(fn: F) -> F:
    """Run ``fn`` (a figure builder or renderer) while holding ``FIGURE_LOCK``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with FIGURE_LOCK:
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
