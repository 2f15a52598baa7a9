#!/usr/bin/python3
"""torchvision's own forward pass on deterministic random weights: the reference converted SSDs must equal.

Run with the system Python that has Debian's python3-torchvision (never the app's venv, which must
not hold torch):

    /usr/bin/python3 scripts/torchvision_reference.py --model ssdlite320_mobilenet_v3_large --out DIR

It builds the detector offline (``weights=None, weights_backbone=None``), gives every parameter and
every BatchNorm statistic a deterministic random value, puts it in eval mode, and writes into DIR:

* ``checkpoint.pth`` — the state_dict as ``torch.save`` writes it (what a downloaded checkpoint is);
* ``state_dict.npz`` — the same arrays for numpy, keyed by torchvision's names;
* ``images.npy`` — uint8 ``(N, S, S, 3)`` test pictures at the model's input size (so torchvision's
  resize is the identity and both sides see the same pixels);
* ``reference.npz`` — per image the raw head outputs ``cls_logits`` ``(N, A, K)`` and
  ``bbox_regression`` ``(N, A, 4)``, the pixel anchors ``anchors`` ``(A, 4)``, and the final
  detections after NMS: ``boxes_i``, ``scores_i``, ``labels_i`` for image i (original pixels);
* ``info.json`` — versions, seed, the category slots and the post-processing settings used.

The weights are drawn so that the outputs look like a trained detector's (He-scaled convolutions,
background favoured by the classifier's bias, so that most class scores are small) and the N/A
class slots of COCO's 91 carry no softmax mass (their bias is -30): a trained checkpoint never
scores them, and the conversion drops them.
"""
from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

MODELS = ("ssdlite320_mobilenet_v3_large", "ssd300_vgg16")
BACKGROUND_BIAS = 8.0     # classifier bias of slot 0: most anchors are background, as after training
NA_BIAS = -30.0           # classifier bias of the N/A slots: no softmax mass
BIAS_SPREAD = 0.1
HEAD_GAIN = 2          # the predicting convolutions' weight scale: logits and offsets of a few units
CONV_GAIN = 1.3           # the other convolutions: activations stay of order one through the backbone


def _build(name: str):
    from torchvision.models import detection

    return getattr(detection, name)(weights=None, weights_backbone=None)


def _randomize(model, seed: int, categories) -> None:
    """Deterministic weights and BatchNorm statistics (see the module docstring)."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    na = [i for i, c in enumerate(categories) if c == "N/A"]
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                gain = HEAD_GAIN if name.startswith("head") and m.bias is not None else CONV_GAIN
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * gain / math.sqrt(fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * BIAS_SPREAD)
                    if "classification_head" in name and m.out_channels % len(categories) == 0:
                        bias = m.bias.view(-1, len(categories))
                        bias[:, 0] += BACKGROUND_BIAS
                        bias[:, na] = NA_BIAS
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * BIAS_SPREAD)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * BIAS_SPREAD)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 0.5 + 0.75)
                m.num_batches_tracked.fill_(1000)
            elif isinstance(getattr(m, "scale_weight", None), nn.Parameter):   # SSD300's L2Norm
                m.scale_weight.copy_(torch.rand(m.scale_weight.shape, generator=gen) * 10 + 15)


def _images(count: int, size: int, seed: int) -> np.ndarray:
    """Smooth random pictures with a few bright rectangles (something for boxes to find)."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        base = np.stack([np.sin(xx * rng.uniform(2, 9) + rng.uniform(0, 6)) * np.cos(yy * rng.uniform(2, 9))
                         for _ in range(3)], axis=-1)
        img = (base * 60 + 110 + rng.normal(0, 12, (size, size, 3)))
        for _ in range(4):
            x0, y0 = rng.integers(0, size - 40, 2)
            w, h = rng.integers(30, size // 2, 2)
            img[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 255, 3)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _reference(model, images: np.ndarray):
    import torch

    xs = [torch.from_numpy(im).permute(2, 0, 1).float() / 255.0 for im in images]
    with torch.no_grad():
        batch, _ = model.transform(xs)
        feats = list(model.backbone(batch.tensors).values())
        head = model.head(feats)
        anchors = model.anchor_generator(batch, feats)[0]
        dets = model(xs)
    ref = {"cls_logits": head["cls_logits"].numpy(), "bbox_regression": head["bbox_regression"].numpy(),
           "anchors": anchors.numpy()}
    for i, d in enumerate(dets):
        ref[f"boxes_{i}"], ref[f"scores_{i}"], ref[f"labels_{i}"] = (d["boxes"].numpy(), d["scores"].numpy(),
                                                                     d["labels"].numpy())
    return ref


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=MODELS, required=True)
    p.add_argument("--out", required=True, help="folder to write into (created)")
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch
    import torchvision
    from torchvision.models._meta import _COCO_CATEGORIES as categories

    torch.manual_seed(args.seed)
    model = _build(args.model)
    _randomize(model, args.seed, categories)
    model.eval()
    size = int(model.transform.fixed_size[0]) if model.transform.fixed_size else int(model.transform.min_size[0])
    images = _images(args.images, size, args.seed)
    os.makedirs(args.out, exist_ok=True)
    state = model.state_dict()
    torch.save(state, os.path.join(args.out, "checkpoint.pth"))
    np.savez(os.path.join(args.out, "state_dict.npz"), **{k: v.numpy() for k, v in state.items()})
    np.save(os.path.join(args.out, "images.npy"), images)
    np.savez(os.path.join(args.out, "reference.npz"), **_reference(model, images))
    info = {"model": args.model, "seed": args.seed, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "categories": list(categories), "input_size": size,
            "score_thresh": model.score_thresh, "nms_thresh": model.nms_thresh,
            "topk_candidates": model.topk_candidates, "detections_per_img": model.detections_per_img,
            "image_mean": list(model.transform.image_mean), "image_std": list(model.transform.image_std)}
    with open(os.path.join(args.out, "info.json"), "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
