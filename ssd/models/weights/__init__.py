"""Weights from outside MXNet: reading ``.pth`` / ``.safetensors`` files, live sources, fetching.

``read_state_dict(path)`` is the one entry for a checkpoint of another framework: name → numpy
array, nothing executed. Converters (``ssd.models.gluoncv.from_torchvision`` for SSD300, one per
architecture) turn such a dict into a network of ours; ``catalogue`` lists where the files live.
"""
from __future__ import annotations

import zipfile
from typing import Dict

import numpy as np

from ssd.base.errors import ModelError


def read_state_dict(path: str) -> Dict[str, np.ndarray]:
    """A checkpoint's tensors by name, from a ``.pth`` (zip) or ``.safetensors`` file.

    A ``.pth`` holding a dict with a ``state_dict`` or ``model`` entry (a training checkpoint) is
    unwrapped. ``ModelError`` for any other content.
    """
    from ssd.models.weights.pth import read_pth
    from ssd.models.weights.safetensors import is_safetensors, read_safetensors

    if is_safetensors(path):
        return read_safetensors(path)
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: neither a PyTorch .pth (zip) nor a .safetensors file")
    obj = read_pth(path)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise ModelError(f"{path}: holds no state dict (a mapping of names to tensors)")
    return {str(k): v for k, v in obj.items()}
