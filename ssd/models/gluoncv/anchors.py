"""A GluonCV SSD's anchors and their layout, read from its anchor generators (no forward pass).

Feature shapes come from symbolic shape inference, anchors from the generators' constant maps
(what the forward pass slices). Layouts are cached per (arch, variant, size) on a private
network, so concurrent callers (Streamlit threads) never share a block.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ssd.base.errors import SSDError
from ssd.models.anchor_set import AnchorSet
from ssd.models.anchors import format_groups
from ssd.models.gluoncv.build import _base_size, _quiet, build_zoo_net, layout_options
from ssd.models.gluoncv.presets import is_zoo_arch, spec_of


def _meta_key(meta_or_net) -> Optional[Tuple[str, str, bool]]:
    """``(arch, variant, anchor_clip)`` of a meta dict, or None for a network object."""
    if hasattr(meta_or_net, "anchor_generators"):
        return None
    meta = meta_or_net
    if not isinstance(meta, dict) or not is_zoo_arch(meta.get("arch")):
        raise SSDError(f"not a model-zoo SSD: arch {meta.get('arch') if isinstance(meta, dict) else meta!r}")
    zoo = meta.get("zoo") or {}
    return meta["arch"], zoo.get("variant", "custom"), layout_options(zoo)["anchor_clip"]


def _size_of(meta_or_net, net, input_size: Optional[int]) -> int:
    if input_size:
        return int(input_size)
    if isinstance(meta_or_net, dict) and meta_or_net.get("input_size"):
        return int(meta_or_net["input_size"])
    return _base_size(net) if net is not None else spec_of(meta_or_net["arch"]).base_size


@functools.lru_cache(maxsize=32)
def _cached_layout(arch: str, variant: str, clip: bool, size: int):
    """Anchor layout of a saved model's architecture (no classes involved); built once per key,
    on a private network, so concurrent callers (Streamlit threads) never share a block."""
    net = build_zoo_net(arch, ["object"], variant, anchor_clip=clip)
    return _layout(net, size)


def _layout(net, size: int):
    info, parts = [], []
    for (h, w), ag in zip(_feature_shapes(net, size), net.anchor_generators):
        amap = _anchor_map(ag)
        d = int(ag.num_depth)
        cell = amap[0, 0, 0, 0].reshape(d, 4)
        step = float(amap[0, 0, 0, 1].reshape(d, 4)[0, 0] - cell[0, 0]) if amap.shape[3] > 1 else float(size)
        info.append({"feature_hw": (h, w), "sizes_px": [float(v) for v in ag._sizes],
                     "ratios": [float(r) for r in ag._ratios], "steps": step, "anchors_per_cell": d,
                     "count": int(h * w * d), "cell_wh_px": cell[:, 2:4].round(3).tolist()})
        a = amap[0, 0, :h, :w].reshape(-1, 4).astype(np.float64)
        if getattr(ag, "_clip", False):
            ih, iw = ag._im_size
            a = np.stack([a[:, 0].clip(0, iw), a[:, 1].clip(0, ih), a[:, 2].clip(0, iw), a[:, 3].clip(0, ih)], 1)
        elif getattr(ag, "clips_sizes", False):
            ih, iw = ag._im_size
            a = np.stack([a[:, 0], a[:, 1], a[:, 2].clip(0, iw), a[:, 3].clip(0, ih)], 1)
        parts.append(a)
    a = np.concatenate(parts)
    corners = np.stack([a[:, 0] - a[:, 2] / 2, a[:, 1] - a[:, 3] / 2,
                        a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2], 1) / float(size)
    return info, corners.astype(np.float32)


def _layout_of(meta_or_net, input_size: Optional[int]):
    key = _meta_key(meta_or_net)
    if key is None:
        return _layout(meta_or_net, _size_of(meta_or_net, meta_or_net, input_size))
    return _cached_layout(key[0], key[1], key[2], _size_of(meta_or_net, None, input_size))


def _feature_shapes(net, size: int) -> List[Tuple[int, int]]:
    import mxnet as mx

    with _quiet():
        feats = net.features(mx.sym.var("data"))
        group = mx.sym.Group(list(feats)) if isinstance(feats, (list, tuple)) else feats
        try:
            _, outs, _ = group.infer_shape(data=(1, 3, size, size))
        except Exception as err:
            from ssd.base.errors import error_gist
            raise SSDError(f"input size {size} is too small for this network ({error_gist(err)})") from None
    return [(int(o[2]), int(o[3])) for o in outs]


def _anchor_map(ag) -> np.ndarray:
    """The generator's precomputed (1, 1, A, A, 4·d) centre-format pixel anchors."""
    p = ag.anchors
    if p._data is not None:
        return p.data().asnumpy()  # loaded weights win over the build-time value
    v = p.value
    return v.asnumpy() if hasattr(v, "asnumpy") else np.asarray(v)


def zoo_anchor_info(meta_or_net, input_size: Optional[int] = None) -> List[Dict[str, Any]]:
    """Per output layer: ``feature_hw``, ``sizes_px`` (GluonCV's two square sizes: s_k and
    √(s_k·s_k+1)), ``ratios`` (extra shapes at s_k), ``steps`` (px between cell centres),
    ``anchors_per_cell``, ``count``; plus ``cell_wh_px``, the (w, h) of one cell's anchors.

    ``meta_or_net``: a model's meta dict (``arch``, optional ``zoo.variant`` and ``input_size``)
    or a GluonCV SSD network. No forward pass: feature shapes come from symbolic shape
    inference, anchors from the generators' constant maps (what the forward pass slices).
    """
    info, _ = _layout_of(meta_or_net, input_size)
    return [dict(layer) for layer in info]


def zoo_anchors(meta_or_net, input_size: Optional[int] = None) -> np.ndarray:
    """All anchors ``(N, 4)`` as normalized corners, in the order of the network's outputs
    (GluonCV does not clip them: corners may fall outside [0, 1])."""
    _, corners = _layout_of(meta_or_net, input_size)
    return corners.copy()


def zoo_anchor_set(meta: Dict[str, Any]) -> AnchorSet:
    """A GluonCV zoo SSD's anchors (from its anchor generators, no forward pass)."""
    size = int(meta.get("input_size") or 0) or None
    info = zoo_anchor_info(meta, size)
    size = int(size or round(info[0]["steps"] * info[0]["feature_hw"][0]))
    anchors = zoo_anchors(meta, size)
    labels, rows = [], []
    for i, layer in enumerate(info):
        sz, rt, d = layer["sizes_px"], layer["ratios"], int(layer["anchors_per_cell"])
        if len(sz) == 2 and len(rt) + 1 == d:   # GluonCV's order: s_k, sqrt(s_k s_k+1), then s_k at each other ratio
            lab = [f"{sz[0]:.0f}px, r=1", f"{sz[1]:.0f}px, r=1"] + [f"{sz[0]:.0f}px, r={r:.3g}" for r in rt[1:]]
        else:
            lab = [f"{w:.0f}×{h:.0f}px" for w, h in layer["cell_wh_px"]]
        labels.append(lab)
        h, w = layer["feature_hw"]
        rows.append({"scale": i, "feature map": f"{h}×{w}", "cell (px)": round(float(layer["steps"]), 1),
                     "sizes": ", ".join(f"{v:.1f}px" for v in sz), "ratios": format_groups([rt]),
                     "anchors per cell": d, "anchors": int(layer["count"])})
    return AnchorSet([tuple(l["feature_hw"]) for l in info], [int(l["anchors_per_cell"]) for l in info], labels,
                     np.asarray(anchors, dtype=np.float64), size, rows, "gluoncv")
