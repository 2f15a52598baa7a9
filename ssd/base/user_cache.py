"""The user's own cache folder, named once: downloaded weights and verdicts on model folders' files.

Why one place: what a model folder may not vouch for itself (is its ``model.onnx`` the export of its
weights?) is remembered here, beside the weights we downloaded; a test session or a second user
points ``$SSD_CACHE_DIR`` elsewhere and gets a cache of its own.
"""
from __future__ import annotations

import os

CACHE_ENV = "SSD_CACHE_DIR"
DEFAULT_CACHE = os.path.join("~", ".cache", "ssd-studio")


def user_cache_dir() -> str:
    """``$SSD_CACHE_DIR``, else ``~/.cache/ssd-studio`` (not created here)."""
    return os.path.expanduser(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
