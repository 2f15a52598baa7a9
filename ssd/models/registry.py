"""The registry of SSD architectures: name → recipe. The one place that knows which exist.

Everything else asks ``recipe_for(meta["arch"])`` and calls the ``Recipe`` interface. TinySSD
is one entry; every GluonCV preset in ``ssd.models.gluoncv.presets.ZOO_SPECS`` is one entry;
torchvision's SSDlite320-MobileNetV3-Large (``ssd.models.ssdlite``) is one entry; ``register``
adds more (a toy architecture in the tests, say).
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple

from ssd.base.errors import SSDError
from ssd.models.recipe import Recipe

_RECIPES: Dict[str, Recipe] = {}
_LOCK = threading.Lock()


def _builtin() -> Dict[str, Recipe]:
    """TinySSD, the GluonCV presets and SSDlite, imported on first use (they import MXNet)."""
    if not _RECIPES:
        with _LOCK:
            if not _RECIPES:
                from ssd.models.gluoncv.presets import ZOO_SPECS
                from ssd.models.gluoncv.recipe import GluonCVRecipe
                from ssd.models.ssdlite.recipe import SSDliteRecipe
                from ssd.models.tiny import TinyRecipe

                recipes = ([TinyRecipe()] + [GluonCVRecipe(spec) for spec in ZOO_SPECS.values()]
                           + [SSDliteRecipe()])
                _RECIPES.update({r.name: r for r in recipes})
    return _RECIPES


def register(recipe: Recipe) -> None:
    """Add an architecture (or replace one of the same name)."""
    if not recipe.name:
        raise ValueError("a recipe needs a name")
    _builtin()[recipe.name] = recipe


def unregister(name: str) -> None:
    _builtin().pop(name, None)


def architectures() -> Tuple[str, ...]:
    """Every registered architecture name, TinySSD first."""
    return tuple(_builtin())


def recipe_for(arch: Optional[str]) -> Recipe:
    """The recipe of an architecture; ``SSDError`` naming the known ones otherwise."""
    recipes = _builtin()
    try:
        return recipes[str(arch)]
    except KeyError:
        raise SSDError(f"unknown architecture {arch!r}; known: {', '.join(recipes)}") from None


def anchors_for_meta(meta: Dict[str, Any]):
    """The anchors of a saved model (an ``AnchorSet``), whatever its architecture."""
    return recipe_for(meta.get("arch", "tiny")).anchor_set(meta)


def build_from_meta(meta: Dict[str, Any]):
    """An uninitialized network of a saved model's architecture and configuration."""
    return recipe_for(meta["arch"]).build(meta)
