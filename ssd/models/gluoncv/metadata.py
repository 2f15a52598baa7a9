"""What a GluonCV SSD records in meta.json: its preset, its starting point and its anchor layout.

Enough to rebuild the network (``arch`` + ``zoo.variant``) and to show its anchors without
building it (``anchors``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ssd.models.gluoncv.anchors import zoo_anchor_info
from ssd.models.gluoncv.presets import gluoncv_name, spec_of


def zoo_meta_fields(net, arch: str, input_size: int, info: Optional[Dict[str, Any]] = None,
                    extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The ``anchors`` and ``zoo`` sections of meta.json: preset, starting point, anchor layout."""
    spec = spec_of(arch)
    info = dict(info or {})
    variant = info.get("variant", "custom")
    layers = zoo_anchor_info(net, input_size)
    zoo = {"variant": variant, "gluoncv_name": gluoncv_name(arch, variant), "base_network": spec.base_network,
           "base_size": spec.base_size, "sizes": list(spec.sizes[variant]),
           "ratios": [list(r) for r in spec.ratios], "steps": list(spec.steps),
           "pretrained": info.get("pretrained"), "published": dict(spec.published)}
    for k in ("weights", "source", "reused_classes", "loaded", "skipped"):
        if k in info:
            zoo[k] = len(info[k]) if k == "skipped" and isinstance(info[k], list) else info[k]   # a count when resumed
    zoo.update(extra or {})
    anchors = {"kind": "gluoncv", "per_scale": [l["count"] for l in layers],
               "total": int(sum(l["count"] for l in layers)),
               "feature_maps": [list(l["feature_hw"]) for l in layers],
               "anchors_per_cell": [l["anchors_per_cell"] for l in layers],
               "sizes_px": [l["sizes_px"] for l in layers], "ratios": [l["ratios"] for l in layers],
               "steps": [l["steps"] for l in layers]}
    return {"anchors": anchors, "zoo": zoo}
