"""torchvision's own SSDs as the reference for our conversions (run by Debian's /usr/bin/python3).

Never imported by the app or by pytest's interpreter: ``tests/exactness.py`` runs it in a
subprocess with the system Python that has ``python3-torchvision`` (torch stays out of our venv)::

    /usr/bin/python3 tests/torchvision_reference.py --model ssd300_vgg16 --out DIR [--seed 0]

It builds ``torchvision.models.detection.<model>(weights=None, weights_backbone=None)`` with
deterministic random weights, saves them with ``torch.save`` as ``DIR/checkpoint.pth`` (the
layout of torchvision's published files), and writes ``DIR/reference.npz``: the test images
(uint8 at the model's input size, so torchvision's resize is the identity), the raw head outputs
(``cls_logits`` (B, N, 91), ``bbox_regression`` (B, N, 4)), the anchors (N, 4, input pixels) and
each image's final detections (``boxes_I``, ``scores_I``, ``labels_I``) from the model's own
forward pass.

Random weights are shaped like a trained checkpoint's in these ways, all stated in the npz:
BatchNorm statistics and affine parameters are randomized (zero mean / unit variance would hide a
wrong mapping); where a model's own initialization would let activations fade through its depth
(SSDlite's normal(0, 0.03) everywhere: every anchor then scores the same, and the comparison would
be of ties), its convolutions are redrawn at ``CONV_GAINS`` / √fan-in; the heads' last convolutions
are scaled by ``HEAD_GAINS`` where their initial scores would be near-uniform, and the background
slot gets ``BACKGROUND_BIAS`` (most anchors are background, as after training); the class slots
that COCO leaves unused (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 — named "N/A" by torchvision)
get a bias of ``NA_BIAS``: a trained detector never sees them as targets, so they keep a vanishing
share of the softmax; our conversions drop them.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
import torchvision
from torchvision.models import detection

NA_BIAS = -30.0
SIZES = {"ssd300_vgg16": 300, "ssdlite320_mobilenet_v3_large": 320}
#: every convolution redrawn at this gain / √fan-in (None: the model's own initialization). SSDlite's
#: normal(0, 0.03) leaves activations too faint for the picture to matter: all anchors would tie.
CONV_GAINS = {"ssd300_vgg16": None, "ssdlite320_mobilenet_v3_large": 1.2}
#: (class head, box head) gains on the heads' last convolutions, and the background slot's bias:
#: scores that differ from anchor to anchor, a few confident, most anchors background.
HEAD_GAINS = {"ssd300_vgg16": (1.0, 1.0), "ssdlite320_mobilenet_v3_large": (1.5, 1.5)}
BACKGROUND_BIAS = {"ssd300_vgg16": 0.0, "ssdlite320_mobilenet_v3_large": 8.0}


def images(count: int, size: int, seed: int) -> np.ndarray:
    """Deterministic pictures: a few flat rectangles on a smooth gradient, plus mild noise."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size] / float(size)
    out = []
    for _ in range(count):
        img = np.stack([yy * rng.uniform(60, 200), xx * rng.uniform(60, 200),
                        (1 - yy) * rng.uniform(60, 200)], -1)
        for _ in range(rng.randint(2, 6)):
            x0, y0 = rng.randint(0, size - 40, 2)
            w, h = rng.randint(30, size // 2, 2)
            img[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 6, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def na_slots() -> list:
    names = detection.SSD300_VGG16_Weights.COCO_V1.meta["categories"]
    return [i for i, n in enumerate(names) if n == "N/A"]


def _last_convs(head) -> list:
    return [conv if isinstance(conv, torch.nn.Conv2d) else [c for c in conv.modules()
                                                            if isinstance(c, torch.nn.Conv2d)][-1]
            for conv in head.module_list]


def _redraw_convolutions(model: torch.nn.Module, gen: torch.Generator, gain: float) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=gen) * gain / fan_in ** 0.5)
            if m.bias is not None:
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def randomize(model: torch.nn.Module, seed: int, gains=(1.0, 1.0), conv_gain=None, background=0.0) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    if conv_gain is not None:
        _redraw_convolutions(model, gen, conv_gain)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    for head, gain in zip((model.head.classification_head, model.head.regression_head), gains):
        for last in _last_convs(head):
            last.weight.data *= gain
            last.bias.data *= gain
    slots = na_slots()
    for last in _last_convs(model.head.classification_head):
        last.bias.data.view(-1, 91)[:, 0] += background
        last.bias.data.view(-1, 91)[:, slots] = NA_BIAS


def run(model_name: str, out: str, seed: int, count: int) -> None:
    torch.manual_seed(seed)
    model = getattr(detection, model_name)(weights=None, weights_backbone=None).eval()
    randomize(model, seed, HEAD_GAINS[model_name], CONV_GAINS[model_name], BACKGROUND_BIAS[model_name])
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "checkpoint.pth"))
    size = SIZES[model_name]
    imgs = images(count, size, seed)
    x = [torch.from_numpy(i).permute(2, 0, 1).float() / 255.0 for i in imgs]
    with torch.no_grad():
        image_list, _ = model.transform(x)
        feats = model.backbone(image_list.tensors)
        feats = list(feats.values())
        head = model.head(feats)
        anchors = model.anchor_generator(image_list, feats)
        dets = model.postprocess_detections(head, anchors, image_list.image_sizes)
        dets = model.transform.postprocess(dets, image_list.image_sizes, [(size, size)] * count)
        whole = model(x)
    arrays = {"images": imgs, "cls_logits": head["cls_logits"].numpy(),
              "bbox_regression": head["bbox_regression"].numpy(), "anchors": anchors[0].numpy(),
              "na_slots": np.array(na_slots()), "na_bias": np.float32(NA_BIAS),
              "head_gains": np.array(HEAD_GAINS[model_name], np.float32),
              "conv_gain": np.float32(CONV_GAINS[model_name] or 0.0),
              "background_bias": np.float32(BACKGROUND_BIAS[model_name]),
              "versions": np.array([torch.__version__, torchvision.__version__])}
    for i, (d, w) in enumerate(zip(dets, whole)):
        assert torch.equal(d["boxes"], w["boxes"]), "step-by-step and whole forward differ"
        arrays.update({f"boxes_{i}": d["boxes"].numpy(), f"scores_{i}": d["scores"].numpy(),
                       f"labels_{i}": d["labels"].numpy()})
    np.savez(os.path.join(out, "reference.npz"), **arrays)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(SIZES), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    run(a.model, a.out, a.seed, a.images)


if __name__ == "__main__":
    main()
