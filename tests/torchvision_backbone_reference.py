"""torchvision's ImageNet backbones as the reference for ``--pretrained imagenet`` (run by /usr/bin/python3).

Never imported by the app or by pytest's interpreter: ``tests/exactness.py`` runs it in a
subprocess with Debian's ``python3-torchvision`` (torch stays out of our venv)::

    /usr/bin/python3 tests/torchvision_backbone_reference.py --model resnet50 --out DIR [--seed 0]
    /usr/bin/python3 tests/torchvision_backbone_reference.py --model resnet50 --out DIR --constant
    /usr/bin/python3 tests/torchvision_backbone_reference.py --model mobilenet_v3_large --out DIR

Default: ``torchvision.models.resnet50(weights=None)`` with deterministic random weights and
non-trivial BatchNorm statistics (first set from the test images' own batch statistics, as a
trained network's are, then perturbed; gammas and betas randomized too, so that a statistic
or an affine parameter mapped to the wrong layer changes the outputs), saved with
``torch.save(model.state_dict())`` as ``DIR/checkpoint.pth`` (the keys and shapes of torchvision's
``resnet50-0676ba61.pth``, ``fc`` included), and ``DIR/reference.npz``: the normalized input
images ``x`` (B, 3, H, W; H ≠ W so that a transposition shows) and the eval-mode outputs of
``layer3`` and ``layer4``, the two maps an SSD-512 takes from ResNet-50.

``mobilenet_v3_large``: ``torchvision.models.mobilenet_v3_large(weights=None)`` (the full tail, the keys
and shapes of ``mobilenet_v3_large-8738ca79.pth``), calibrated and perturbed the same way, the
squeeze-excitation biases randomized too; the reference maps are those of torchvision's own SSDlite
feature extractor (``ssdlite._mobilenet_extractor``, as ``ssdlite320_mobilenet_v3_large`` builds it
around an ImageNet backbone): ``c4`` (stage 0: up to the C4 block's expansion) and ``last`` (stage 1:
up to the backbone's last convolution).

``--constant``: the same keys and shapes, each tensor one value broadcast (a stride-0 view of a
one-element storage, so the file is a few kB): value ``(i + 1) / 1000`` for the i-th key in the
state dict's order (running variances ``1 + (i + 1) / 1000``), which names every tensor by its
value. For download-and-load tests, not for exactness.
"""
from __future__ import annotations

import argparse
import collections
import os

import numpy as np
import torch
import torchvision

SHAPE = (2, 3, 96, 128)   # (B, C, H, W) of the normalized test input


def inputs(seed: int) -> torch.Tensor:
    """Deterministic ImageNet-normalized pictures: smooth gradients with a few flat blocks, plus noise."""
    rng = np.random.RandomState(seed)
    b, c, h, w = SHAPE
    yy, xx = np.mgrid[0:h, 0:w] / float(max(h, w))
    imgs = []
    for _ in range(b):
        img = np.stack([yy * rng.uniform(0.3, 0.9), xx * rng.uniform(0.3, 0.9), (1 - yy) * rng.uniform(0.3, 0.9)])
        for _ in range(3):
            y0, x0 = rng.randint(0, h - 24), rng.randint(0, w - 24)
            img[:, y0:y0 + rng.randint(12, 48), x0:x0 + rng.randint(12, 48)] = rng.uniform(0, 1, (3, 1, 1))
        imgs.append(np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1))
    mean = np.array([0.485, 0.456, 0.406]).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225]).reshape(3, 1, 1)
    return torch.from_numpy(((np.stack(imgs) - mean) / std).astype(np.float32))


def calibrate(model: torch.nn.Module, x: torch.Tensor, seed: int) -> None:
    """BatchNorm statistics of ``x`` (cumulative, as a trained network holds its data's), then perturbed."""
    gen = torch.Generator().manual_seed(seed + 1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    with torch.no_grad():
        model.train()(x)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.bias is not None:      # squeeze-excitation's 1×1s
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    for m in bns:
        m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.05)
        m.running_var.mul_(torch.rand(m.running_var.shape, generator=gen) * 0.4 + 0.8)
        m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5 + 0.5)
        m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    model.eval()


def constant_state(model: torch.nn.Module) -> "collections.OrderedDict[str, torch.Tensor]":
    out = collections.OrderedDict()
    for i, (k, v) in enumerate(model.state_dict().items()):
        if v.dtype != torch.float32:          # num_batches_tracked (int64): kept as it is
            out[k] = v.clone()
            continue
        value = (i + 1) / 1000.0 + (1.0 if k.endswith("running_var") else 0.0)
        out[k] = torch.full((1,), value).expand(v.shape)
    return out


def run(model_name: str, out: str, seed: int, constant: bool) -> None:
    torch.manual_seed(seed)
    model = getattr(torchvision.models, model_name)(weights=None)
    os.makedirs(out, exist_ok=True)
    if constant:
        torch.save(constant_state(model), os.path.join(out, "checkpoint.pth"))
        return
    x = inputs(seed)
    calibrate(model, x, seed)
    torch.save(model.state_dict(), os.path.join(out, "checkpoint.pth"))
    maps = mobilenet_maps(model, x) if model_name == "mobilenet_v3_large" else resnet_maps(model, x)
    np.savez(os.path.join(out, "reference.npz"), x=x.numpy(), **maps,
             versions=np.array([torch.__version__, torchvision.__version__]))


def mobilenet_maps(model: torch.nn.Module, x: torch.Tensor) -> dict:
    """The two maps torchvision's SSDlite takes from an ImageNet MobileNetV3-Large, by its own extractor."""
    from functools import partial

    from torchvision.models.detection import ssdlite

    extractor = ssdlite._mobilenet_extractor(model, 6, partial(torch.nn.BatchNorm2d, eps=0.001, momentum=0.03))
    with torch.no_grad():
        c4 = extractor.features[0](x)
        last = extractor.features[1](c4)
        assert torch.equal(last, model.features(x)), "the extractor's stages differ from the backbone"
    return {"c4": c4.numpy(), "last": last.numpy()}


def resnet_maps(model: torch.nn.Module, x: torch.Tensor) -> dict:
    with torch.no_grad():
        h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        layer3 = model.layer3(model.layer2(model.layer1(h)))
        layer4 = model.layer4(layer3)
        logits = model(x)
        assert torch.equal(model.fc(torch.flatten(model.avgpool(layer4), 1)), logits), "step-by-step differs"
    return {"layer3": layer3.numpy(), "layer4": layer4.numpy()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["resnet50", "mobilenet_v3_large"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--constant", action="store_true", help="a few-kB file of the same keys and shapes")
    a = p.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    run(a.model, a.out, a.seed, a.constant)


if __name__ == "__main__":
    main()
