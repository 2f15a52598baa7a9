"""torchvision's SSDlite state_dict → our SSDlite's parameters, exactly, or a loud refusal.

Our Gluon network mirrors torchvision's module tree (``ssd.models.ssdlite.mobilenet_v3``), so each
parameter's structural name is its torchvision key, with BatchNorm's ``gamma``/``beta`` for
``weight``/``bias``. The conversion is therefore a rename plus one real change: the classification
head's slots. torchvision's COCO detector predicts 91 (background + COCO ids, ten of them "N/A");
we keep the slots ``class_slots`` names (``ssd.models.coco_slots.kept_slots``: background + the 80
classes) and drop the rest, anchor by anchor.

Any key our network needs and the file lacks, any key of the file that nothing reads (other than
BatchNorm's ``num_batches_tracked`` counters, which inference never uses), any shape that differs,
any non-finite value: all are listed in one ``ModelError`` and nothing is loaded.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import numpy as np

from ssd.base.errors import ModelError
from ssd.models.ssdlite.network import SSDlite
from ssd.models.ssdlite.spec import SSDliteSpec

IGNORED_SUFFIX = ".num_batches_tracked"
CLASS_HEAD = "head.classification_head.module_list."
OUR_ONLY = ("anchors",)      # computed from the spec, not learnt
SHOWN = 5                    # keys named per problem in the error message


def torchvision_key(name: str) -> str:
    """Our structural parameter name → torchvision's state_dict key."""
    for ours, theirs in ((".gamma", ".weight"), (".beta", ".bias")):
        if name.endswith(ours):
            return name[: -len(ours)] + theirs
    return name


def select_slots(array: np.ndarray, anchors: int, class_slots: Sequence[int]) -> np.ndarray:
    """Keep ``class_slots`` of each anchor's block of a class head's output channels (axis 0)."""
    per_anchor = array.shape[0] // anchors
    if per_anchor * anchors != array.shape[0] or max(class_slots) >= per_anchor:
        return array                   # left as it is: the shape check reports it
    blocks = array.reshape((anchors, per_anchor) + array.shape[1:])
    return blocks[:, list(class_slots)].reshape((-1,) + array.shape[1:])


def _class_head_anchors(name: str, spec: SSDliteSpec) -> int:
    """Anchors per cell of the feature map a classification-head key belongs to, or 0."""
    parts = name[len(CLASS_HEAD):].split(".") if name.startswith(CLASS_HEAD) else []
    if len(parts) != 3 or parts[1] != "1":        # the 1×1 convolution after the depthwise block
        return 0
    return spec.anchors_per_cell()[int(parts[0])]


def convert_state_dict(state: Mapping[str, np.ndarray], spec: SSDliteSpec,
                       class_slots: Sequence[int]) -> Dict[str, np.ndarray]:
    """``{our structural name: float32 array}`` for every learnt parameter of ``SSDlite(spec)``.

    ``class_slots``: the source's class-slot index for each of our ``spec.num_classes + 1``
    outputs (0 = background first). ``ModelError`` listing every problem when the file does not fit.
    """
    if len(class_slots) != spec.num_classes + 1:
        raise ModelError(f"{len(class_slots)} class slots chosen for {spec.num_classes} classes + background")
    wanted = {k: tuple(p.shape) for k, p in SSDlite(spec)._collect_params_with_prefix().items() if k not in OUR_ONLY}
    out: Dict[str, np.ndarray] = {}
    missing: List[str] = []
    misshaped: List[str] = []
    for name, shape in wanted.items():
        key = torchvision_key(name)
        if key not in state:
            missing.append(key)
            continue
        arr = np.asarray(state[key])
        anchors = _class_head_anchors(key, spec)
        if anchors:
            arr = select_slots(arr, anchors, class_slots)
        if tuple(arr.shape) != shape:
            misshaped.append(f"{key} {tuple(np.shape(state[key]))} (network: {shape})")
            continue
        out[name] = arr.astype(np.float32)
    used = {torchvision_key(n) for n in wanted}
    unused = sorted(k for k in state if k not in used and not k.endswith(IGNORED_SUFFIX))
    bad = sorted(torchvision_key(n) for n, a in out.items() if not np.isfinite(a).all())
    raise_problems(missing, unused, misshaped, bad, len(state))
    return out


def raise_problems(missing: List[str], unused: List[str], misshaped: List[str], bad: List[str], total: int,
                   expected: str = "torchvision's SSDlite320-MobileNetV3-Large with these classes") -> None:
    """One ``ModelError`` naming every key of each kind of problem (nothing when there is none)."""
    parts = []
    for label, keys in (("missing", missing), ("not used by SSDlite", unused), ("of another shape", misshaped),
                        ("with non-finite values", bad)):
        if keys:
            more = f", … ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
            parts.append(f"{len(keys)} {label}: {', '.join(keys[:SHOWN])}{more}")
    if parts:
        raise ModelError(f"the checkpoint ({total} entries) is not {expected} — " + "; ".join(parts))


def load_converted(net: SSDlite, arrays: Mapping[str, np.ndarray], ctx=None) -> SSDlite:
    """Initialize ``net`` on ``ctx`` (CPU by default) with ``arrays`` (``convert_state_dict``'s)."""
    import mxnet as mx

    ctx = ctx or mx.cpu()
    net.initialize(ctx=ctx)
    for name, p in net._collect_params_with_prefix().items():
        if name in arrays:
            p.set_data(mx.nd.array(arrays[name], ctx=ctx, dtype="float32"))
    return net


def net_from_state_dict(state: Mapping[str, np.ndarray], spec: SSDliteSpec, class_slots: Sequence[int],
                        ctx=None) -> SSDlite:
    """An SSDlite with ``state``'s weights (see ``convert_state_dict``)."""
    arrays = convert_state_dict(state, spec, class_slots)
    return load_converted(SSDlite(spec), arrays, ctx)
