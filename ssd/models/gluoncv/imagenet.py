"""``--pretrained imagenet``: a backbone's ImageNet weights from a source that is alive.

GluonCV's own backbone files come first where they can still be had (already in ``~/.mxnet/models``
or a mirror named by ``MXNET_GLUON_REPO``); otherwise a live source of the same layout, converted:

* ``vgg16_atrous`` (SSD300): torchvision's ``vgg16_features-amdegroot-88682ab5.pth``, the reduced
  VGG16 the SSD paper starts from (conv1_1…conv5_3; fc6/fc7, the L2-norm scale and the extra layers
  start fresh, as in torchvision's own SSD300). It expects ``255·x − 255·mean``, so ``init_scale`` is
  set to 1 and the run records torchvision's normalization, as a converted SSD300 does.
* ``resnet50_v1`` and ``mobilenet1.0``: no live source has their layout. torchvision's ResNet-50 is
  v1.5 (stride in the 3×3 convolution; GluonCV's v1 strides in the first 1×1): its weights have the
  same shapes but would compute another function, so they are not offered. MobileNet v1 has no
  torchvision counterpart. The error says what to start from instead.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Sequence

import numpy as np

from ssd.base.errors import DownloadError, ModelError
from ssd.models.gluoncv.build import build_zoo_net
from ssd.models.gluoncv.from_torchvision import MEAN as TV_MEAN, STD as TV_STD
from ssd.models.gluoncv.presets import spec_of
from ssd.models.gluoncv.weights import ensure_weights

_NO_LIVE_SOURCE = {
    "resnet50_v1": ("no live source publishes ImageNet weights in GluonCV's ResNet-50 v1 layout (stride in the "
                    "first 1×1 convolution): torchvision's resnet50 is v1.5 (stride in the 3×3), which would load "
                    "with the same shapes but compute a different network"),
    "mobilenet1.0": ("no live source publishes MobileNet v1 1.0 ImageNet weights that are verified to match "
                     "GluonCV's mobilenet1.0 (torchvision has no MobileNet v1)"),
}


def _gluoncv_base_available(name: str) -> bool:
    """GluonCV's file is usable: already in its store folder, or a mirror is configured."""
    if os.environ.get("MXNET_GLUON_REPO"):
        return True
    try:
        ensure_weights(name, download=False)
        return True
    except (DownloadError, ModelError):
        return False


def imagenet_start(arch: str, classes: Sequence[str], load_weights: bool, info: Dict[str, Any]):
    """The network of ``arch`` with ImageNet backbone weights (GluonCV's, else a live source's)."""
    spec = spec_of(arch)
    if _gluoncv_base_available(spec.base_network):
        if load_weights:
            info["weights"] = ensure_weights(spec.base_network)
        return build_zoo_net(arch, classes, "custom", pretrained_base=load_weights)
    if spec.base_network != "vgg16_atrous":
        raise ModelError(f"--pretrained imagenet for {arch}: GluonCV's model store, where its {spec.base_network} "
                         f"weights live, has been unreachable since February 2024, and "
                         f"{_NO_LIVE_SOURCE.get(spec.base_network, 'no live source has them')}. Start instead from a "
                         "live detector (python -m ssd models pull ssd300_vgg16_coco, then train --model "
                         "ssd_300_vgg16_atrous --pretrained models/ssd300_vgg16_coco), from --model "
                         "ssd_300_vgg16_atrous --pretrained imagenet, or put GluonCV's file in ~/.mxnet/models "
                         "(or set MXNET_GLUON_REPO to a mirror).")
    net = build_zoo_net(arch, classes, "custom")
    info["normalize"] = {"mean": list(TV_MEAN), "std": list(TV_STD)}
    if load_weights:
        info.update(_load_vgg16_features(net))
    return net


def vgg16_features_params(state: Dict[str, np.ndarray], names: Sequence[str]) -> Dict[str, np.ndarray]:
    """torchvision's VGG16 ``features.N`` convolutions → GluonCV's conv1_1…conv5_3 parameter names."""
    convs = [k[:-len(".weight")] for k in state if k.startswith("features.") and k.endswith(".weight")]
    ours = [n[:-len(".weight")] for n in names if n.startswith("features.stages.") and n.endswith(".weight")][:13]
    if len(convs) != 13 or len(ours) != 13:
        raise ModelError(f"expected VGG16's 13 convolutions, the file has {len(convs)}")
    out = {"features.init_scale": np.ones((1, 3, 1, 1), np.float32)}
    for theirs, mine in zip(convs, ours):
        out[mine + ".weight"] = state[theirs + ".weight"].astype(np.float32)
        out[mine + ".bias"] = state[theirs + ".bias"].astype(np.float32)
    return out


def _load_vgg16_features(net) -> Dict[str, Any]:
    import mxnet as mx

    from ssd.models.weights import read_state_dict
    from ssd.models.weights.catalogue import VGG16_FEATURES
    from ssd.models.weights.fetch import fetch_live

    path = fetch_live(VGG16_FEATURES)
    params = net._collect_params_with_prefix()
    arrays = vgg16_features_params(read_state_dict(path), list(params))
    for name, arr in arrays.items():
        params[name]._load_init(mx.nd.array(arr), [mx.cpu()])
    return {"weights": path, "loaded": len(arrays), "source": VGG16_FEATURES.url}
