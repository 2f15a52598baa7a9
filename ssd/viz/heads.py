"""A detector's raw head outputs on one image: anchors, class logits and box offsets.

The Learn pages show what happens between the network and the detections (hard negative mining,
NMS step by step), so they need what the decoder receives. Only networks with d2l-style multibox
heads expose it (TinySSD and its kin); GluonCV zoo nets decode inside their graph and are refused
with a clear message.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssd.base.errors import SSDError
from ssd.data.preprocess import resize


@dataclass
class HeadOutputs:
    """One image's multibox outputs: ``anchors`` (N, 4), ``cls_preds`` (N, C+1) logits,
    ``box_preds`` (N*4,) encoded offsets, and ``image`` the (S, S, 3) uint8 network input."""

    anchors: np.ndarray
    cls_preds: np.ndarray
    box_preds: np.ndarray
    image: np.ndarray


def network_image(detector, image) -> np.ndarray:
    """The ``(S, S, 3)`` uint8 input the detector feeds its network for ``image``.

    A numpy array (a dataset image) is resized as ``evaluate`` does; anything else (path, bytes,
    upload, PIL) is loaded and resized as ``Detector.detect`` does.
    """
    if isinstance(image, np.ndarray):
        return resize(image, detector.input_size)
    from ssd.data.images import from_pil, load_image, resize_for_network

    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL image
        return resize_for_network(from_pil(image).image, detector.input_size)
    return resize_for_network(load_image(image, draft_to=detector.input_size).image, detector.input_size)


def check_multibox_outputs(outs, arch: str) -> None:
    """``SSDError`` unless ``outs`` are multibox heads: anchors (1, N, 4), cls (B, N, C+1), box (B, 4N)."""
    if (len(outs) != 3 or outs[0].ndim != 3 or outs[0].shape[-1] != 4 or outs[1].ndim != 3
            or outs[1].shape[1] != outs[0].shape[1] or outs[2].shape[-1] != 4 * outs[0].shape[1]):
        raise SSDError(f"{arch} does not expose its anchors and head outputs (it decodes inside its graph); "
                       "the step-by-step views need a TinySSD model: pick one, or train one on the Train page.")


def multibox_heads(detector, image) -> HeadOutputs:
    """Run ``detector``'s network once on ``image`` and return its multibox head outputs."""
    x = network_image(detector, image)
    outs = detector.forward_raw(x[None])
    check_multibox_outputs(outs, detector.meta.get("arch", "?"))
    return HeadOutputs(outs[0][0], outs[1][0], outs[2][0], x)
