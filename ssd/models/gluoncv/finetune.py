"""Starting points for training a GluonCV SSD: scratch, ImageNet base, a zoo detector, a file.

``None`` (from scratch), ``"imagenet"`` (pretrained base network), ``"voc"``/``"coco"`` (the zoo
detector, its class predictors reset to our classes with ``reset_class``, reusing the weights of
classes whose names match, e.g. COCO's bird/cat/dog/horse/bear for ENA24), or a local
``.params`` file (every parameter whose name and shape match is loaded).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from ssd.base.errors import ModelError, SSDError
from ssd.base.params_file import load_arrays
from ssd.models.gluoncv.build import _quiet, build_zoo_net, initialize, layout_options, load_zoo_detector
from ssd.models.gluoncv.imagenet import imagenet_start
from ssd.models.gluoncv.presets import dataset_classes, gluoncv_name, require_published, spec_of, variant_of
from ssd.models.gluoncv.weights import ensure_weights
from ssd.models.starting_point import class_reuse_map, model_folder_meta, run_record


def load_matching_params(net, path: str, ctx=None, skip: Callable[[str], bool] = lambda k: False) -> Dict[str, Any]:
    """Load every parameter of ``path`` whose structural name and shape match ``net``'s.

    Returns ``{"loaded": n, "skipped": [names…], "total": n_net}``; ``ModelError`` if none match.
    Uses MXNet's own loader (no pickle).
    """
    import mxnet as mx

    try:
        saved = load_arrays(path)
    except ModelError:
        raise
    except Exception as err:
        from ssd.base.errors import error_gist
        raise ModelError(f"{path}: not an MXNet parameter file ({error_gist(err)})") from None
    if not isinstance(saved, dict):
        raise ModelError(f"{path}: holds a list of arrays, not named parameters")
    saved = {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v for k, v in saved.items()}
    params = net._collect_params_with_prefix()
    loaded, skipped = 0, []
    for name, p in params.items():
        if skip(name):
            continue
        arr = saved.get(name)
        shape = tuple(p.shape or ())
        if arr is None or (shape and (len(shape) != arr.ndim
                                      or any(s not in (0, a) for s, a in zip(shape, arr.shape)))):
            skipped.append(name)
            continue
        p._load_init(arr.astype(p.dtype or arr.dtype, copy=False), ctx or [mx.cpu()])
        loaded += 1
    if loaded == 0:
        raise ModelError(f"{path}: none of its parameters fit this network ({len(saved)} in the file, "
                         f"{len(params)} in the network); is it a model of another architecture?")
    return {"loaded": loaded, "skipped": skipped, "total": len(params)}


def _from_model_folder(arch: str, classes: Sequence[str], path: str, meta: Dict[str, Any], load_weights: bool,
                       info: Dict[str, Any]):
    """A saved zoo model (e.g. ``models/ssd300_vgg16_coco`` from ``models pull``) re-headed to
    ``classes``: same anchors preset, anchor layout and input normalization as the folder, weights of
    classes with matching names reused."""

    zoo = meta.get("zoo") or {}
    variant = str(zoo.get("variant") or "custom")
    layout = layout_options(zoo)
    info["variant"] = variant
    info["layout"] = {k: v for k, v in layout.items() if v}
    if isinstance(meta.get("normalize"), dict):
        info["normalize"] = meta["normalize"]
    if not load_weights:
        return build_zoo_net(arch, classes, variant, **layout)
    params = os.path.join(path, "model.params")
    old = [str(c) for c in meta["classes"]]
    net = load_zoo_detector(arch, old, variant, params,
                            f"does not load into {arch} with the folder's {len(old)} classes", **layout)
    info.update(weights=os.path.abspath(params), reused_classes=rehead(net, classes, old))
    return net


def rehead(net, classes: Sequence[str], old: Sequence[str]) -> Dict[str, str]:
    """Reset the class predictors to ``classes``, keeping the weights of the ones ``old`` already
    knew (``class_reuse_map``); returns that map."""
    reuse = class_reuse_map(classes, old)
    if list(classes) != list(old):
        with _quiet():
            net.reset_class(list(classes), reuse_weights=dict(reuse) if reuse else None)
    return reuse


def create_for_training(arch: str, classes: Sequence[str], pretrained: Optional[str], ctxs=None,
                        input_size: Optional[int] = None, load_weights: bool = True):
    """Network ready to train and what was loaded: ``(net, anchors (1,N,4) on CPU, info dict)``.

    ``load_weights=False`` (resuming) builds the same variant without fetching any weights.
    """
    import mxnet as mx

    ctxs = list(ctxs or [mx.cpu()])
    spec_of(arch)  # an unknown architecture fails here, by name
    p = (pretrained or "").strip()
    kind = p.lower()
    variant = variant_of(p)
    info: Dict[str, Any] = {"pretrained": pretrained or None, "variant": variant}
    if kind in ("", "none", "scratch"):
        info["pretrained"] = None
        net = build_zoo_net(arch, classes, "custom")
    elif kind == "imagenet":
        net = imagenet_start(arch, classes, load_weights, info)
    elif kind in ("voc", "coco"):
        require_published(arch, variant)
        name = gluoncv_name(arch, variant)
        if load_weights:
            path = ensure_weights(name)
            old = dataset_classes(variant)
            net = load_zoo_detector(arch, old, variant, path, f"GluonCV weights do not load into {name}",
                                    "; delete the file so that it is fetched again")
            info.update(weights=path, reused_classes=rehead(net, classes, old))
        else:
            net = build_zoo_net(arch, classes, variant)
    elif model_folder_meta(p, arch) is not None:
        net = _from_model_folder(arch, classes, p, model_folder_meta(p, arch), load_weights, info)
    else:
        path = p
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "model.params")):
            path = os.path.join(path, "model.params")
        if not os.path.isfile(path):
            raise SSDError(f"--pretrained {pretrained!r}: not imagenet, voc, coco or an existing .params file")
        net = build_zoo_net(arch, classes, "custom")
        if load_weights:
            # keep our own anchors: they follow this build's preset, not the file's
            info.update(weights=os.path.abspath(path),
                        **load_matching_params(net, path, skip=lambda k: k.startswith("anchor_generators.")))
    anchors = initialize(net, ctxs, input_size)
    return net, anchors.as_in_context(mx.cpu()), info


def resumed_for_training(arch: str, classes: Sequence[str], pretrained: Optional[str], run_dir: str, ctxs=None,
                         input_size: Optional[int] = None):
    """``create_for_training``'s ``(net, anchors, info)`` for a resume of the run whose meta.json is
    in ``run_dir``: the network as it recorded it (variant, anchor layout, normalization) and its start as a
    record. No weights and no starting folder are read (the checkpoint brings the weights; the folder
    may be gone or changed); a run without that record is built as ``create_for_training`` would."""
    import mxnet as mx

    run = run_record(run_dir)
    zoo = run.get("zoo")
    if run.get("arch") != arch or not isinstance(zoo, dict) or not isinstance(zoo.get("variant"), str):
        return create_for_training(arch, classes, pretrained, ctxs, input_size, load_weights=False)
    layout = layout_options(zoo)
    info: Dict[str, Any] = {k: zoo[k] for k in ("pretrained", "weights", "source", "reused_classes", "loaded",
                                                "skipped") if k in zoo}
    info.update(variant=zoo["variant"], layout={k: v for k, v in layout.items() if v})
    if isinstance(run.get("normalize"), dict):
        info["normalize"] = run["normalize"]
    net = build_zoo_net(arch, classes, zoo["variant"], **layout)
    anchors = initialize(net, list(ctxs or [mx.cpu()]), input_size)
    return net, anchors.as_in_context(mx.cpu()), info
