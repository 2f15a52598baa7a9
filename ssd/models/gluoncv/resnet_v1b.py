"""torchvision's ResNet-50 ImageNet weights on GluonCV's ``resnet50_v1b``, mapped by name.

torchvision's ``resnet50`` (``resnet50-0676ba61.pth``) is ResNet v1.5: a stage's first bottleneck
strides in its 3×3 convolution. GluonCV's ``resnet50_v1b`` is the same network: the same module
tree (``layer3.5.conv2``, ``layer2.0.downsample.0``), 7×7/2 stem, 3×3/2 max-pool with padding 1,
stride in the 3×3, bias-free convolutions, BatchNorm ε 1e-5. So every weight has a name there;
only BatchNorm's affine parameters are named differently (``weight``/``bias`` → ``gamma``/``beta``).
(GluonCV's ``resnet50_v1`` strides in the first 1×1 instead: the same shapes, another function.)

Inside an SSD the backbone is a SymbolBlock whose parameters carry GluonCV's flat names
(``features.resnetv1b_layers3_conv0_weight``); GluonCV's own block says which flat name each
structural name gets, and its symbol gives every full shape. Nothing relies on order: GluonCV
lists the BatchNorm running statistics after all the weights, torchvision beside them.
The ImageNet classifier (``fc``) and torch's ``num_batches_tracked`` counters are not used; any
other key without a place, any backbone parameter the file lacks and any shape that differs is
a ``ModelError`` naming them.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from ssd.base.errors import ModelError

BASE = "resnet50_v1b"
NOT_USED = re.compile(r"^fc\.(weight|bias)$|\.num_batches_tracked$")
_BN_LEAF = {"weight": "gamma", "bias": "beta"}


def structural_name(key: str) -> str:
    """torchvision's key → GluonCV resnet50_v1b's structural name (``layer1.0.bn2.weight`` → ``…bn2.gamma``)."""
    module, _, leaf = key.rpartition(".")
    owner = module.rpartition(".")[2]
    if owner.startswith("bn") or module.endswith("downsample.1"):
        return f"{module}.{_BN_LEAF.get(leaf, leaf)}"
    return key


@lru_cache(maxsize=1)
def backbone_layout() -> Dict[str, Tuple[str, Tuple[int, ...]]]:
    """GluonCV's structural name → (flat name inside an SSD, full shape), classifier excluded."""
    import mxnet as mx
    from gluoncv.model_zoo import get_model

    from ssd.models.gluoncv.build import _quiet

    with _quiet():
        block = get_model(BASE, pretrained=False)
        sym = block(mx.sym.var("data"))
        args, _, aux = sym.infer_shape(data=(1, 3, 224, 224))
    shapes = dict(zip(sym.list_arguments(), args))
    shapes.update(zip(sym.list_auxiliary_states(), aux))
    return {k: (p.name, tuple(shapes[p.name])) for k, p in block._collect_params_with_prefix().items()
            if not k.startswith("fc.")}


def _fits(shape: Tuple[int, ...], net_shape: Tuple[int, ...]) -> bool:
    """``net_shape`` may hold 0 for a dimension MXNet infers later (a convolution's input channels)."""
    return len(shape) == len(net_shape) and all(n in (0, s) for s, n in zip(shape, net_shape))


def resnet50_v1b_params(state: Mapping[str, np.ndarray], net_params: Mapping[str, Any],
                        prefix: str = "features.") -> Dict[str, np.ndarray]:
    """The SSD's backbone parameter name → array, for all 265 of them, from torchvision's state dict."""
    layout = backbone_layout()
    out: Dict[str, np.ndarray] = {}
    unplaced, misshaped, placed = [], [], set()
    for key, arr in state.items():
        if NOT_USED.search(key):
            continue
        place = layout.get(structural_name(key))
        if place is None:
            unplaced.append(key)
            continue
        name, shape = prefix + place[0], place[1]
        placed.add(name)
        p = net_params.get(name)
        if tuple(arr.shape) != shape or p is None or not _fits(shape, tuple(p.shape or ())):
            misshaped.append(f"{key} {tuple(arr.shape)} → {name} {shape}")
            continue
        out[name] = np.ascontiguousarray(arr, dtype=np.float32)
    missing = sorted(prefix + n for n, _ in layout.values() if prefix + n not in placed)
    if unplaced or misshaped or missing:
        raise ModelError("not torchvision's ResNet-50 in the layout of GluonCV's resnet50_v1b: "
                         + "; ".join(f"{what} ({len(keys)}): {', '.join(keys[:4])}{' …' if len(keys) > 4 else ''}"
                                     for what, keys in (("keys with no place", unplaced),
                                                        ("shapes that differ", misshaped),
                                                        ("backbone parameters missing", missing)) if keys))
    return out
