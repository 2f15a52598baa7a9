"""torchvision's SSD300-VGG16 converted exactly onto GluonCV's VGG16-atrous SSD.

The two networks are the same SSD paper network: VGG16 to conv4_3 (L2-normalized, learned scale),
conv5 with a 3×3 stride-1 pool, atrous fc6 and fc7, four extra blocks, a 3×3 class and box head
on each of the six maps, anchors laid out cell by cell in the same order (sizes 21…315 px = scales
0.07…1.05 of 300; ratios 1, 2, ½, 3, ⅓; steps 8…300) and box offsets with GluonCV's stds
(0.1, 0.1, 0.2, 0.2) = torchvision's weights (10, 10, 5, 5). The parameters map one to one in order.
What differs is settled here, and recorded in meta.json so the model rebuilds the same way:

* input: torchvision feeds ``255·x − 255·mean`` (mean 0.48235, 0.45882, 0.40784); GluonCV multiplies
  an ImageNet-normalized input by its constant ``init_scale``. We set ``init_scale`` to 1 and put
  torchvision's mean and std (1/255) in ``normalize``;
* anchors clipped to the image and box sizes capped at log(1000/16) before ``exp``, as torchvision
  does (``zoo.anchor_clip``, ``zoo.box_clip``);
* classes: torchvision's head has 91 slots (background + COCO ids 1…90); the ten ids COCO never
  uses (its "N/A" slots) are dropped, leaving GluonCV's 80 COCO classes in the same order. Their
  logits take part in torchvision's softmax: a trained checkpoint gives them a vanishing share
  (no image ever has them), so the scores agree to that share;
* post-processing: torchvision's per-class top-400 and NMS (``ssd.models.per_class_nms``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np

from ssd.base.errors import ModelError
from ssd.models.coco_slots import TORCHVISION_COCO_SLOTS, kept_slots

ARCH = "ssd_300_vgg16_atrous"
INPUT_SIZE = 300
MEAN = (0.48235, 0.45882, 0.40784)      # torchvision's SSD300 transform (×255 by its std of 1/255)
STD = (1.0 / 255.0,) * 3
BOX_CLIP = math.log(1000.0 / 16)        # torchvision's BoxCoder.bbox_xform_clip
COCO_SLOTS = len(TORCHVISION_COCO_SLOTS)                   # 91: background + COCO ids 1…90


def _conv_pairs(state: Dict[str, np.ndarray]) -> List[Tuple[str, str]]:
    """(weight, bias) key pairs of torchvision's backbone convolutions, in network order."""
    keys = [k for k in state if k.startswith("backbone.") and k.endswith(".weight") and state[k].ndim == 4]
    return [(k, k[:-len("weight")] + "bias") for k in keys]


def _need(state: Dict[str, np.ndarray], key: str) -> np.ndarray:
    try:
        return state[key]
    except KeyError:
        raise ModelError(f"the checkpoint lacks {key!r}: not torchvision's ssd300_vgg16") from None


def _head(state: Dict[str, np.ndarray], kind: str, i: int, per_anchor: int, keep=None):
    w, b = _need(state, f"head.{kind}.module_list.{i}.weight"), _need(state, f"head.{kind}.module_list.{i}.bias")
    anchors = w.shape[0] // per_anchor if w.ndim == 4 else 0
    if not anchors or w.shape[0] != anchors * per_anchor or b.shape != (w.shape[0],):
        raise ModelError(f"head.{kind}.module_list.{i}: weight {tuple(w.shape)} and bias {tuple(b.shape)} are not "
                         f"{per_anchor} outputs per anchor: not torchvision's ssd300_vgg16")
    if keep is None:
        return w, b
    w = w.reshape(anchors, per_anchor, *w.shape[1:])[:, keep].reshape(-1, *w.shape[1:])
    b = b.reshape(anchors, per_anchor)[:, keep].reshape(-1)
    return w, b


def torchvision_to_gluoncv(state: Dict[str, np.ndarray], net_params: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """GluonCV parameter name → array, for every learnable parameter of ``net_params`` (its
    ``_collect_params_with_prefix()``); ``ModelError`` naming the first mismatch."""
    ours = [k for k in net_params if k.startswith("features.") and k.endswith(".weight")]
    pairs = _conv_pairs(state)
    if len(pairs) != len(ours):
        raise ModelError(f"the checkpoint has {len(pairs)} backbone convolutions, SSD300-VGG16 has {len(ours)}: "
                         "not torchvision's ssd300_vgg16")
    out: Dict[str, np.ndarray] = {"features.init_scale": np.ones((1, 3, 1, 1), np.float32),
                                  "features.norm4.scale": _need(state, "backbone.scale_weight").reshape(1, -1, 1, 1)}
    for name, (wk, bk) in zip(ours, pairs):
        out[name], out[name[:-len("weight")] + "bias"] = state[wk], _need(state, bk)
    keep = kept_slots()
    for i in range(6):
        out[f"class_predictors.{i}.predictor.weight"], out[f"class_predictors.{i}.predictor.bias"] = \
            _head(state, "classification_head", i, COCO_SLOTS, keep)
        out[f"box_predictors.{i}.predictor.weight"], out[f"box_predictors.{i}.predictor.bias"] = \
            _head(state, "regression_head", i, 4)
    for name, arr in out.items():
        p = net_params.get(name)
        if p is None or tuple(p.shape) != tuple(arr.shape):
            raise ModelError(f"{name}: the checkpoint gives shape {tuple(arr.shape)}, the network wants "
                             f"{None if p is None else tuple(p.shape)}: not torchvision's ssd300_vgg16")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def convert_ssd300_vgg16(state: Dict[str, np.ndarray]) -> Tuple[Any, Dict[str, Any]]:
    """torchvision ``ssd300_vgg16`` state dict → (GluonCV network with every weight set, meta.json fields).

    The converter interface every live detector follows (``ssd.models.pretrained``): the meta holds
    what ``recipe_for(meta["arch"]).build(meta)`` needs to rebuild the same network, and the
    network's own parameters are what a model folder saves.
    """
    import mxnet as mx

    from ssd.models.gluoncv.build import _quiet

    net, meta = new_converted_net()
    params = net._collect_params_with_prefix()
    with _quiet():
        for name, arr in torchvision_to_gluoncv(state, params).items():
            params[name].set_data(mx.nd.array(arr))
    return net, meta


def new_converted_net() -> Tuple[Any, Dict[str, Any]]:
    """An initialized (random) network of a converted SSD300 and its meta.json fields: the
    conversion's target, and what benchmarks time (speed does not depend on the weights)."""
    import mxnet as mx

    from ssd.models.gluoncv.build import build_zoo_net, initialize
    from ssd.models.gluoncv.metadata import zoo_meta_fields
    from ssd.models.gluoncv.pretrained import dataset_classes
    from ssd.models.per_class_nms import torchvision_postprocess

    classes = dataset_classes("coco")
    layout = {"anchor_clip": True, "box_clip": BOX_CLIP}
    net = build_zoo_net(ARCH, classes, "coco", **layout)
    initialize(net, [mx.cpu()], INPUT_SIZE)
    meta: Dict[str, Any] = {"arch": ARCH, "classes": classes, "input_size": INPUT_SIZE,
                            "normalize": {"mean": list(MEAN), "std": list(STD)},
                            "postprocess": torchvision_postprocess()}
    meta.update(zoo_meta_fields(net, ARCH, INPUT_SIZE, {"variant": "coco", "pretrained": "torchvision"},
                                extra=layout))
    return net, meta
