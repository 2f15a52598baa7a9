"""Reading ``.safetensors`` files with numpy: an 8-byte header length, a JSON header, raw data.

The format holds no code at all (the reason the Hugging Face Hub prefers it); the header gives
each tensor's dtype, shape and byte range. Every range is checked against the file before use.
"""
from __future__ import annotations

import json
import math
import os
import struct
from typing import Any, Dict, List, Tuple

import numpy as np

from ssd.base.errors import ModelError

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "bfloat16", "I64": "<i8", "I32": "<i4",
           "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
_MAX_HEADER = 100 << 20


def is_safetensors(path: str) -> bool:
    """True when the file starts like a safetensors file (length, then a JSON object)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < _MAX_HEADER


def _header(fh, path: str, size: int) -> Dict:
    raw = fh.read(8)
    if len(raw) != 8:
        raise ModelError(f"{path}: too short to be a safetensors file")
    n = struct.unpack("<Q", raw)[0]
    if n > min(_MAX_HEADER, size - 8):
        raise ModelError(f"{path}: not a safetensors file (header length {n})")
    try:
        header = json.loads(fh.read(n).decode("utf-8"))
    except RecursionError:       # [[[[… 100,000 deep: the parser's own recursion, not a ValueError
        raise ModelError(f"{path}: the safetensors header is not JSON (nested too deeply)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: the safetensors header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: the safetensors header is not an object")
    return header


def _entry(info: Any) -> Tuple[str, List[int], int, int]:
    """``(dtype, shape, begin, end)`` of a header entry; ``ValueError`` unless each has the type the
    format gives it (a stranger's header may hold text, floats or lists anywhere)."""
    if not isinstance(info, dict):
        raise ValueError("not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    numbers = [*(shape if isinstance(shape, list) else [None]), *(offsets if isinstance(offsets, list) else [])]
    if not isinstance(dtype, str) or not isinstance(offsets, list) or len(offsets) != 2 \
            or not all(type(v) is int for v in numbers):
        raise ValueError("wrong types")
    return dtype, list(shape), offsets[0], offsets[1]


def _tensor(buf: bytes, name: str, info: Any, path: str) -> np.ndarray:
    try:
        dtype, shape, begin, end = _entry(info)
    except ValueError:
        raise ModelError(f"{path}: bad header entry for {name!r}") from None
    if dtype not in _DTYPES:
        raise ModelError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
    count = math.prod(shape)     # Python integers: numpy's int64 product wraps round to a small number
    width = 2 if dtype == "BF16" else np.dtype(_DTYPES[dtype]).itemsize
    if not (0 <= begin <= end <= len(buf)) or end - begin != count * width or min(shape, default=0) < 0:
        raise ModelError(f"{path}: tensor {name!r} has a byte range that does not fit its shape or the file")
    chunk = buf[begin:end]
    if dtype == "BF16":
        arr = (np.frombuffer(chunk, "<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        arr = np.frombuffer(chunk, _DTYPES[dtype]).astype(np.dtype(_DTYPES[dtype]).newbyteorder("="))
    return arr.reshape(shape)


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    """name → numpy array for every tensor of ``path`` (bfloat16 widened to float32)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            header = _header(fh, path, size)
            buf = fh.read()
    except OSError as err:
        raise ModelError(f"{path}: cannot be read ({err})") from None
    return {name: _tensor(buf, name, info, path) for name, info in header.items() if name != "__metadata__"}
