"""Build and initialize GluonCV SSD networks with our class names and a preset's anchors.

Nets are built with ``gluoncv.model_zoo.ssd.get_ssd`` directly, so a saved model is rebuilt from
its metadata with no forward pass and no ``reset_class``. Nothing imports GluonCV at module level.
"""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from typing import Any, Dict, Optional, Sequence

from ssd.base.errors import ModelError, SSDError
from ssd.base.params_file import load_into
from ssd.models.gluoncv.presets import VARIANTS, spec_of


@contextmanager
def _quiet():
    """GluonCV/MXNet warn about symbol inputs and re-initialization on every build."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def layout_options(zoo: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The two departures from GluonCV's own SSD that a converted torchvision SSD300 keeps, read
    from meta.json's ``zoo`` section: anchors clipped to the image (``anchor_clip``, torchvision's
    ``DefaultBoxGenerator(clip=True)``) and box widths/heights capped before ``exp`` (``box_clip``,
    torchvision's ``BoxCoder`` cap log(1000/16)). Absent for GluonCV's own models."""
    zoo = zoo or {}
    clip = zoo.get("box_clip")
    return {"anchor_clip": bool(zoo.get("anchor_clip", False)),
            "box_clip": float(clip) if isinstance(clip, (int, float)) and not isinstance(clip, bool) else None}


def _size_clipped_generator():
    """GluonCV's anchor generator with torchvision's clipping: widths and heights capped at the
    image size, centres left alone. (GluonCV's own ``clip=True`` also moves the centres of the
    10×10 map's last column, at 304 px, to 300.)"""
    from gluoncv.model_zoo.ssd.anchor import SSDAnchorGenerator

    class SizeClippedAnchorGenerator(SSDAnchorGenerator):
        clips_sizes = True   # read by ssd.models.gluoncv.anchors

        def hybrid_forward(self, F, x, anchors):
            a = F.slice_like(anchors, x * 0, axes=(2, 3)).reshape((1, -1, 4))
            cx, cy, cw, ch = a.split(axis=-1, num_outputs=4)
            h, w = self._im_size
            return F.concat(cx, cy, cw.clip(0, w), ch.clip(0, h), dim=-1).reshape((1, -1, 4))

    return SizeClippedAnchorGenerator


def build_zoo_net(arch: str, classes: Sequence[str], variant: str = "custom", pretrained_base: bool = False,
                  anchor_clip: bool = False, box_clip: Optional[float] = None):
    """An uninitialized GluonCV SSD with ``classes`` and the anchors of ``variant``'s preset.

    Never downloads unless ``pretrained_base`` (then the backbone file must be present, see
    :func:`ensure_weights`, or GluonCV fetches it). ``anchor_clip`` / ``box_clip``: see
    :func:`layout_options`.
    """
    from gluoncv.model_zoo.ssd.ssd import get_ssd

    spec = spec_of(arch)
    if variant not in VARIANTS:
        raise SSDError(f"unknown zoo variant {variant!r}; use one of {', '.join(VARIANTS)}")
    if not classes:
        raise SSDError("a detector needs at least one class")
    features = _feature_extractor(spec.features)
    extra = {"anchor_generator": _size_clipped_generator()} if anchor_clip else {}
    with _quiet():
        net = get_ssd(spec.base_network, spec.base_size, features=features,
                      filters=list(spec.filters) if spec.filters else None,
                      sizes=list(spec.sizes[variant]), ratios=[list(r) for r in spec.ratios],
                      steps=list(spec.steps), classes=list(classes),
                      dataset=variant if variant != "custom" else "", pretrained=False,
                      pretrained_base=pretrained_base, **extra)
    if box_clip is not None:
        net.bbox_decoder._clip = float(box_clip)
    return net


def _feature_extractor(features):
    """What ``get_ssd`` takes as ``features``: backbone output names (a list), or one of GluonCV's
    VGG feature-extractor functions named by the preset (they bring their own extra layers)."""
    if isinstance(features, str):
        from gluoncv.model_zoo.ssd import vgg_atrous

        try:
            return getattr(vgg_atrous, features)
        except AttributeError:
            raise SSDError(f"GluonCV has no feature extractor {features!r} in gluoncv.model_zoo.ssd.vgg_atrous") from None
    return list(features)


def load_zoo_detector(arch: str, classes: Sequence[str], variant: str, params_path: str, what: str,
                      advice: str = "", **layout):
    """A zoo net with ``classes`` and ``variant``'s anchors, its weights loaded from ``params_path`` (CPU).

    One place for the three ways a trained detector enters: GluonCV's VOC/COCO weights, a pulled
    model, a saved model folder. ``ModelError`` ``"{params_path}: {what} (gist){advice}"`` when they
    do not fit.
    """
    import mxnet as mx

    net = build_zoo_net(arch, classes, variant, **layout)
    try:
        with _quiet():
            load_into(net, params_path, ctx=mx.cpu())
    except ModelError:
        raise
    except Exception as err:
        from ssd.base.errors import error_gist
        raise ModelError(f"{params_path}: {what} ({error_gist(err)}){advice}") from None
    return net


def initialize(net, ctxs=None, input_size: Optional[int] = None):
    """Initialize what is not loaded yet (Xavier; BatchNorm gamma/var 1, beta/mean/bias 0),
    finish deferred shapes with one forward in ``train_mode`` and return its anchors (1, N, 4).

    GluonCV's backbones are SymbolBlocks whose parameters carry no initializer of their own, so a
    plain ``net.initialize(Xavier())`` fails on BatchNorm vectors; we name their init first.
    """
    import mxnet as mx
    from mxnet import autograd

    ctxs = list(ctxs or [mx.cpu()])
    for name, p in net.collect_params().items():
        if p.init is None:
            if re.search(r"(gamma|running_var|moving_var)$", name):
                p.init = "ones"
            elif re.search(r"(beta|bias|running_mean|moving_mean)$", name):
                p.init = "zeros"
    with _quiet():
        net.initialize(init=mx.init.Xavier(), ctx=ctxs)
        net.collect_params().reset_ctx(ctxs)
    size = int(input_size or _base_size(net))
    with autograd.train_mode():
        _, _, anchors = net(mx.nd.zeros((1, 3, size, size), ctx=ctxs[0]))
    return anchors


def _base_size(net) -> int:
    return int(net.anchor_generators[0]._im_size[0])
