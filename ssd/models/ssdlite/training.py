"""The SSDlite half of a training run: the shared multibox plan, with SSDlite's start and inputs.

SSDlite's outputs are the multibox contract, and torchvision trains it with what the shared plan
(``ssd.models.multibox.MultiBoxPlan``) computes: IoU ≥ 0.5 matching with every box's best anchor,
box targets encoded with weights 10, 10, 5, 5 (variances 0.1, 0.1, 0.2, 0.2), softmax cross
entropy with 3:1 hard negatives and smooth L1, both divided by the positives. What is SSDlite's
own: inputs normalized to [-1, 1], torchvision's initialization (normal, std 0.03) from scratch,
the start from torchvision's ImageNet MobileNetV3-Large (full tail, ``ssd.models.ssdlite.imagenet``)
and the start from a saved SSDlite (e.g. the converted COCO detector) with its class head re-made
for the new classes, keeping the weights of the classes it already knew.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

from ssd.base.errors import ModelError, SSDError, error_gist
from ssd.base.params_file import load_into
from ssd.models.multibox import MultiBoxPlan
from ssd.models.ssdlite.anchors import anchors_meta
from ssd.models.ssdlite.imagenet import imagenet_origin, is_imagenet, load_imagenet_backbone
from ssd.models.ssdlite.network import SSDlite
from ssd.models.ssdlite.spec import ARCH, SSDliteSpec, ssdlite_spec
from ssd.models.starting_point import (FOLDER_PARAMS, SCRATCH, copy_class_slots, model_folder_meta, recorded_start,
                                       run_record, slot_sources)

INIT_STD = 0.03              # torchvision's ``_normal_init`` for every SSDlite convolution
CLASS_HEAD = "head.classification_head.module_list."


def start_folder(pretrained: Optional[str]) -> Optional[Dict[str, Any]]:
    """The meta.json of the SSDlite folder ``pretrained`` names, None for a start from scratch or
    from ImageNet; ``SSDError`` for anything else (with what to do instead)."""
    p = (pretrained or "").strip()
    if p.lower() in SCRATCH or is_imagenet(p):
        return None
    meta = model_folder_meta(p, ARCH)
    if meta is None:
        raise SSDError(f"--pretrained {p!r}: {ARCH} starts from scratch, from imagenet (torchvision's "
                       f"MobileNetV3-Large ImageNet weights) or from a saved {ARCH} model folder (such as the "
                       "converted COCO detector: python -m ssd models pull ssdlite320_mobilenet_v3_large_coco)")
    return meta


def reduced_tail(pretrained: Optional[str], folder: Optional[Dict[str, Any]]) -> bool:
    """Whether the network to train has the reduced tail: not from ImageNet (torchvision's ImageNet
    weights have the full tail, and its builder then keeps it), as the folder's when from a folder."""
    if folder is not None:
        return SSDliteSpec.from_meta(folder).reduced_tail
    return not is_imagenet(pretrained)


def transfer(net: SSDlite, old_net: SSDlite, sources: Sequence[int]) -> int:
    """Copy ``old_net``'s weights into the initialized ``net``; returns how many parameters came over."""
    import mxnet as mx

    old = old_net._collect_params_with_prefix()
    copied = 0
    for name, p in net._collect_params_with_prefix().items():
        if name == "anchors" or name not in old:
            continue
        value = old[name].data().asnumpy()
        parts = name[len(CLASS_HEAD):].split(".") if name.startswith(CLASS_HEAD) else []
        if len(parts) == 3 and parts[1] == "1":
            value = copy_class_slots(p.data().asnumpy(), value, net.spec.anchors_per_cell()[int(parts[0])], sources)
        if value.shape != p.shape:
            continue
        p.set_data(mx.nd.array(value, dtype="float32"))
        copied += 1
    return copied


def load_folder_net(path: str, meta: Dict[str, Any]) -> SSDlite:
    """The saved SSDlite of a model folder, on the CPU."""
    import mxnet as mx

    net = SSDlite(SSDliteSpec.from_meta(meta))
    try:
        load_into(net, os.path.join(path, FOLDER_PARAMS), ctx=mx.cpu())
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(f"--pretrained {path}: its weights do not load into {ARCH} ({error_gist(err)})") from None
    return net


def _recorded_spec(run_dir: str) -> Optional[Dict[str, Any]]:
    """The run's own meta.json when it records its SSDlite network (what a resume rebuilds), else None."""
    run = run_record(run_dir)
    return (run if run.get("arch") == ARCH and isinstance(run.get("ssdlite"), dict)
            and isinstance(run.get("classes"), list) else None)


class SSDliteTraining(MultiBoxPlan):
    """``MultiBoxPlan`` with SSDlite's network, normalization, initialization and starting point."""

    def __init__(self, cfg, classes: Sequence[str], train_ds, ctxs, resuming: bool = False) -> None:
        # resuming: the checkpoint brings the weights; the start and the tail are the run's own record
        # (its starting folder may be gone or changed), never read from the folder again
        self._load = not resuming
        self._folder = start_folder(cfg.pretrained) if self._load else None
        tail = reduced_tail(cfg.pretrained, self._folder if self._load else _recorded_spec(cfg.out))
        self.spec = ssdlite_spec(len(classes), cfg.input_size, reduced_tail=tail)
        self.classes = list(classes)
        self.start: Dict[str, Any] = {"pretrained": None}
        if resuming:
            self.start = recorded_start(cfg.out, cfg.pretrained,
                                        imagenet_origin() if is_imagenet(cfg.pretrained) else None)
        super().__init__(cfg, train_ds, ctxs, lambda: SSDlite(self.spec), lambda net: anchors_meta(self.spec),
                         initialize=self._initialize, normalize=(self.spec.mean, self.spec.std))

    def _initialize(self, net: SSDlite, ctxs: List[Any]) -> None:
        import mxnet as mx

        net.initialize(init=mx.init.Normal(INIT_STD), ctx=ctxs)
        if not self._load:
            return                      # resuming: the checkpoint brings the weights
        if is_imagenet(self.cfg.pretrained):
            self.start = load_imagenet_backbone(net)
            return
        if self._folder is None:
            return
        path = os.path.abspath(self.cfg.pretrained)
        self.start = {"pretrained": path}
        sources = slot_sources(self.classes, [str(c) for c in self._folder["classes"]])
        copied = transfer(net, load_folder_net(path, self._folder), sources)
        self.start.update(weights=os.path.join(path, FOLDER_PARAMS), loaded=copied,
                          reused_classes={c: self._folder["classes"][s - 1]
                                          for c, s in zip(self.classes, sources[1:]) if s > 0})

    def meta_fields(self) -> Dict[str, Any]:
        return {"anchors": anchors_meta(self.spec), "ssdlite": self.spec.to_meta(), "start": dict(self.start),
                "normalize": {"mean": list(self.spec.mean), "std": list(self.spec.std)},
                "postprocess": self.spec.postprocess()}
