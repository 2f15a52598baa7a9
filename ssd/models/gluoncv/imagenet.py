"""``--pretrained imagenet``: a backbone's ImageNet weights from a source that is alive.

GluonCV's own backbone files come first where they can still be had (already in ``~/.mxnet/models``
or a mirror named by ``MXNET_GLUON_REPO``); otherwise a live source of the same layout, converted:

* ``vgg16_atrous`` (SSD300): torchvision's ``vgg16_features-amdegroot-88682ab5.pth``, the reduced
  VGG16 the SSD paper starts from (conv1_1…conv5_3; fc6/fc7, the L2-norm scale and the extra layers
  start fresh, as in torchvision's own SSD300). It expects ``255·x − 255·mean``, so ``init_scale`` is
  set to 1 and the run records torchvision's normalization, as a converted SSD300 does.
* ``resnet50_v1b`` (``ssd_512_resnet50_v1b``): torchvision's ``resnet50-0676ba61.pth``, ResNet-50
  v1.5, whose layout GluonCV's v1b shares (``ssd.models.gluoncv.resnet_v1b``); ImageNet's usual
  normalization, as GluonCV's own backbones.
* ``resnet50_v1`` and ``mobilenet1.0``: no live source has their layout. torchvision's ResNet-50 is
  v1.5 (stride in the 3×3 convolution; GluonCV's v1 strides in the first 1×1): its weights have the
  same shapes but would compute another function, so they are offered on ``ssd_512_resnet50_v1b``
  instead. MobileNet v1 has no torchvision counterpart, and the Hugging Face Hub's timm
  ``mobilenetv1_100`` clips its activations at 6 (ReLU6) where GluonCV's ``mobilenet1.0`` uses
  ReLU: the same convolutions, BatchNorms, strides and padding, but another function. The error
  says what to start from instead.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from ssd.base.errors import DownloadError, ModelError
from ssd.models.gluoncv.build import build_zoo_net
from ssd.models.gluoncv.from_torchvision import MEAN as TV_MEAN, STD as TV_STD
from ssd.models.gluoncv.presets import spec_of
from ssd.models.gluoncv.resnet_v1b import resnet50_v1b_params
from ssd.models.gluoncv.weights import ensure_weights

#: base network → (why no live source fits it, the nearest start that does)
_NO_LIVE_SOURCE = {
    "resnet50_v1": ("no live source publishes ImageNet weights in GluonCV's ResNet-50 v1 layout (stride in the "
                    "first 1×1 convolution): torchvision's resnet50 is v1.5 (stride in the 3×3), which would load "
                    "with the same shapes but compute a different network",
                    "--model ssd_512_resnet50_v1b --pretrained imagenet (the same SSD on GluonCV's resnet50_v1b, "
                    "which strides in the 3×3 as torchvision does, so torchvision's ResNet-50 loads exactly), "),
    "mobilenet1.0": ("no live source publishes MobileNet v1 1.0 ImageNet weights in GluonCV's mobilenet1.0 layout: "
                     "torchvision has no MobileNet v1, and the Hugging Face Hub's timm mobilenetv1_100 has the same "
                     "convolutions, BatchNorms, strides and padding but clips every activation at 6 (ReLU6) where "
                     "GluonCV's mobilenet1.0 uses ReLU, so its weights would compute a different network", ""),
}


class LiveBackbone(NamedTuple):
    """Where a GluonCV backbone's ImageNet weights come from today, and how they map."""

    entry: str                         # name of the file in ssd.models.weights.catalogue
    arrays: Callable[[Mapping[str, Any], Mapping[str, Any]], Dict[str, Any]]   # (state, net params) → arrays
    normalize: Optional[Dict[str, list]] = None   # the source's input normalization, if not ImageNet's


LIVE_BACKBONES = {
    "vgg16_atrous": LiveBackbone("VGG16_FEATURES", lambda state, params: vgg16_features_params(state, list(params)),
                                 {"mean": list(TV_MEAN), "std": list(TV_STD)}),
    "resnet50_v1b": LiveBackbone("RESNET50_IMAGENET", resnet50_v1b_params),
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
    live = LIVE_BACKBONES.get(spec.base_network)
    if live is None:
        why, alternative = _NO_LIVE_SOURCE.get(spec.base_network, ("no live source has them", ""))
        raise ModelError(f"--pretrained imagenet for {arch}: GluonCV's model store, where its {spec.base_network} "
                         f"weights live, has been unreachable since February 2024, and {why}. Start instead from "
                         f"{alternative}a live detector (python -m ssd models pull ssd300_vgg16_coco, then train --model "
                         "ssd_300_vgg16_atrous --pretrained models/ssd300_vgg16_coco), from --model "
                         "ssd_300_vgg16_atrous --pretrained imagenet, or put GluonCV's file in ~/.mxnet/models "
                         "(or set MXNET_GLUON_REPO to a mirror).")
    net = build_zoo_net(arch, classes, "custom")
    if live.normalize:
        info["normalize"] = dict(live.normalize)
    if load_weights:
        info.update(_load_live(net, live))
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


def _load_live(net, live: LiveBackbone) -> Dict[str, Any]:
    """Fetch the live file (verified), map it by ``live.arrays`` and set those parameters of ``net``."""
    import mxnet as mx

    from ssd.models.weights import catalogue, read_state_dict
    from ssd.models.weights.fetch import fetch_live

    entry = getattr(catalogue, live.entry)
    path = fetch_live(entry)
    params = net._collect_params_with_prefix()
    arrays = live.arrays(read_state_dict(path), params)
    for name, arr in arrays.items():
        params[name]._load_init(mx.nd.array(arr), [mx.cpu()])
    return {"weights": path, "loaded": len(arrays), "source": entry.url}
