"""Reading other frameworks' weights with numpy only: .pth (torch's zip + pickle) and .safetensors.

Files written by torch itself come from /usr/bin/python3 (Debian's python3-torch) where available;
the refusal of a planted pickle needs no torch at all.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np
import pytest

from ssd.base.errors import ModelError
from ssd.models.weights import read_state_dict


class _Planted:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pth(path, payload: bytes, root: str = "archive") -> str:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{root}/data.pkl", payload)
        zf.writestr(f"{root}/version", "3\n")
    return str(path)


def test_planted_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    path = _pth(tmp_path / "evil.pth", pickle.dumps({"w": _Planted(str(marker))}, protocol=2))
    with pytest.raises(ModelError, match=r"refused to load: its pickle asks for (posix|os)\.system"):
        read_state_dict(path)
    assert not marker.exists()


def test_other_globals_are_refused(tmp_path):
    path = _pth(tmp_path / "eval.pth", pickle.dumps({"w": eval}, protocol=2))
    with pytest.raises(ModelError, match=r"(__builtin__|builtins)\.eval"):
        read_state_dict(path)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pth").write_bytes(b"\x80\x02}q\x00.")        # a bare pickle: the pre-1.6 format
    with pytest.raises(ModelError, match="not a zip-format PyTorch checkpoint|neither"):
        read_state_dict(str(tmp_path / "x.pth"))
    path = _pth(tmp_path / "list.pth", pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ModelError, match="no state dict"):
        read_state_dict(path)


TORCH_WRITER = """
import collections, sys, torch
torch.manual_seed(0)
a = torch.randn(3, 4)
sd = collections.OrderedDict(a=a, at=a.t(), part=a[1:, 2:], n=torch.tensor(7), h=torch.randn(5).half(),
                             b=torch.randn(4).bfloat16(), i=torch.arange(6, dtype=torch.int32).view(2, 3),
                             p=torch.nn.Parameter(torch.randn(2, 2)))
torch.save(sd, sys.argv[1])
torch.save({"state_dict": sd, "epoch": 3}, sys.argv[2])
for k, v in sd.items():
    print(k, v.detach().float().reshape(-1).tolist())
"""


def test_torch_saved_tensors_read_exactly(tmp_path):
    from exactness import SYSTEM_PYTHON, reference_unavailable

    if reference_unavailable():
        pytest.skip(f"no torch to write a file: {reference_unavailable()}")
    plain, wrapped = str(tmp_path / "sd.pth"), str(tmp_path / "ckpt.pth")
    out = subprocess.run([SYSTEM_PYTHON, "-c", TORCH_WRITER, plain, wrapped], check=True, capture_output=True,
                         text=True).stdout
    want = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in out.strip().splitlines()}
    got = read_state_dict(plain)
    assert list(got) == list(want)
    for k, v in want.items():
        assert np.allclose(got[k].astype(np.float32).reshape(-1), v, atol=0), k
    assert got["at"].shape == (4, 3) and got["part"].shape == (2, 2) and got["n"].shape == ()
    assert got["h"].dtype == np.float16 and got["b"].dtype == np.float32 and got["i"].dtype == np.int32
    assert list(read_state_dict(wrapped)) == list(want)       # a training checkpoint is unwrapped


def _safetensors(path, tensors, bad_range: bool = False) -> str:
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors.items():
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        dtype = {"float32": "F32", "float16": "F16", "int64": "I64"}[arr.dtype.name]
        end = offset + len(raw) + (8 if bad_range else 0)
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, end]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))
    return str(path)


def test_safetensors_read(tmp_path):
    rng = np.random.RandomState(0)
    tensors = {"conv.weight": rng.randn(4, 3, 3, 3).astype(np.float32), "bn.num": np.array(5, np.int64),
               "h": rng.randn(7).astype(np.float16)}
    got = read_state_dict(_safetensors(tmp_path / "m.safetensors", tensors))
    assert set(got) == set(tensors)
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v)


def test_safetensors_with_a_range_outside_the_file_is_refused(tmp_path):
    path = _safetensors(tmp_path / "bad.safetensors", {"w": np.ones(3, np.float32)}, bad_range=True)
    with pytest.raises(ModelError, match="byte range"):
        read_state_dict(path)
