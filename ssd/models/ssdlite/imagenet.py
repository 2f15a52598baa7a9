"""``--pretrained imagenet`` for SSDlite: torchvision's MobileNetV3-Large ImageNet weights, exactly.

torchvision builds ``ssdlite320_mobilenet_v3_large(weights_backbone=IMAGENET1K_V1)`` with the *full*
tail (its builder sets ``reduce_tail = weights_backbone is None``): the halved tail of the COCO
detector exists only for a start without ImageNet weights. So a start from ImageNet builds our
SSDlite with ``reduced_tail=False`` (recorded in meta.json, so the saved folder rebuilds the same
network), loads ``mobilenet_v3_large-8738ca79.pth``'s ``features.*`` into the backbone, and starts
the extra layers and heads as torchvision does (normal, std 0.03: ``ssd.models.ssdlite.training``).
The input keeps SSDlite's normalization to [-1, 1], which torchvision's detector also feeds this
backbone.

Keys. torchvision's detector cuts ``features`` at the C4 block (``features.13``): its stage 0 is
``features.0`` … ``features.12`` plus that block's expansion (``block.0``), its stage 1 the rest of the
block (``block.1`` …) and ``features.14`` … ``features.16``. Our network carries the detector's key
names (``ssd.models.ssdlite.convert.torchvision_key``), so ``imagenet_key`` is that cut read
backwards. The ImageNet classifier (``classifier.*``) and ``num_batches_tracked`` are not used; a
missing, unplaced, mis-shaped or non-finite key is one ``ModelError`` naming them all.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Mapping

import numpy as np

from ssd.models.ssdlite.convert import raise_problems, torchvision_key
from ssd.models.ssdlite.spec import C4_BLOCK

IMAGENET = "imagenet"
C4_FEATURE = C4_BLOCK + 1        # features.0 is the first convolution: the C4 block is features.13
BACKBONE = "backbone.features."
NOT_USED = re.compile(r"^classifier\.|\.num_batches_tracked$")
EXPECTED = "torchvision's MobileNetV3-Large (ImageNet, full tail)"


def is_imagenet(pretrained) -> bool:
    """``--pretrained imagenet`` (any case)."""
    return (pretrained or "").strip().lower() == IMAGENET


def imagenet_key(name: str) -> str:
    """Our backbone parameter's name → its key in torchvision's ``mobilenet_v3_large`` state_dict
    (``backbone.features.0.13.1.gamma`` → ``features.13.block.0.1.weight``)."""
    stage, index, rest = torchvision_key(name)[len(BACKBONE):].split(".", 2)
    i = int(index)
    if stage == "0":
        return f"features.{C4_FEATURE}.block.0.{rest}" if i == C4_FEATURE else f"features.{i}.{rest}"
    return f"features.{C4_FEATURE}.block.{rest}" if i == 0 else f"features.{C4_FEATURE + i}.{rest}"


def backbone_arrays(state: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """``{our backbone parameter name: float32 array}`` for every backbone parameter in ``params``
    (an SSDlite's ``_collect_params_with_prefix()``, full tail), from the ImageNet state dict."""
    names = [n for n in params if n.startswith(BACKBONE)]
    out: Dict[str, np.ndarray] = {}
    missing, misshaped = [], []
    for name in names:
        key = imagenet_key(name)
        if key not in state:
            missing.append(key)
            continue
        arr = np.asarray(state[key])
        if tuple(arr.shape) != tuple(params[name].shape):
            misshaped.append(f"{key} {tuple(arr.shape)} (network: {tuple(params[name].shape)})")
            continue
        out[name] = np.ascontiguousarray(arr, dtype=np.float32)
    used = {imagenet_key(n) for n in names}
    unused = sorted(k for k in state if k not in used and not NOT_USED.search(k))
    bad = sorted(imagenet_key(n) for n, a in out.items() if not np.isfinite(a).all())
    raise_problems(missing, unused, misshaped, bad, len(state), EXPECTED)
    return out


def imagenet_origin() -> Dict[str, Any]:
    """Where an ImageNet start's backbone comes from (meta.json's ``start``; also on a resumed run)."""
    from ssd.models.weights import catalogue

    entry = catalogue.MOBILENET_V3_LARGE_IMAGENET
    return {"pretrained": IMAGENET, "backbone": "torchvision mobilenet_v3_large (IMAGENET1K_V1)",
            "source": entry.url, "file": entry.file, "sha256": entry.sha256 or entry.sha256_prefix,
            "hash_note": entry.hash_note}


def load_imagenet_backbone(net) -> Dict[str, Any]:
    """Fetch torchvision's file (verified), set ``net``'s backbone from it (``net`` initialized, full
    tail); returns ``imagenet_origin()`` with the local file and how many parameters it set."""
    import mxnet as mx

    from ssd.models.weights import catalogue, read_state_dict
    from ssd.models.weights.fetch import fetch_live

    path = fetch_live(catalogue.MOBILENET_V3_LARGE_IMAGENET)
    params = net._collect_params_with_prefix()
    arrays = backbone_arrays(read_state_dict(path), params)
    for name, arr in arrays.items():
        params[name].set_data(mx.nd.array(arr, dtype="float32"))
    return {**imagenet_origin(), "weights": path, "loaded": len(arrays)}
