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


def _text(t: str) -> bytes:
    raw = t.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


# {"w": a float32 tensor of 4 values in storage "0"}, pickled as torch.save does (written by hand: no torch)
_FOUR_FLOATS = (b"\x80\x02ccollections\nOrderedDict\n)R" + _text("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(("
                + _text("storage") + b"ctorch\nFloatStorage\n" + _text("0") + _text("cpu")
                + b"K\x04tQK\x00K\x04\x85K\x01\x85\x89tRs.")


def test_a_pth_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    """A storage that claims 4 floats but inflates to 64 MB (64 kB on disk), or to 4 MB: a zip bomb's
    way to fill the memory of whoever imports it. Refused from the sizes in the zip's directory."""
    def pth(name, payload):
        with zipfile.ZipFile(tmp_path / name, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("archive/data.pkl", _FOUR_FLOATS)
            zf.writestr("archive/data/0", payload)
        return str(tmp_path / name)

    assert np.array_equal(read_state_dict(pth("good.pth", b"\0" * 16))["w"], np.zeros(4, np.float32))
    bomb = pth("bomb.pth", b"\0" * (64 << 20))
    assert os.path.getsize(bomb) < 1 << 20
    with pytest.raises(ModelError, match="expand to 67 MB, [0-9]+ times the file .a zip bomb"):
        read_state_dict(bomb)
    with pytest.raises(ModelError, match="data/0 expands to 4194304 bytes, more than its 4 values need"):
        read_state_dict(pth("small-bomb.pth", b"\0" * (4 << 20)))


def test_a_safetensors_shape_whose_size_overflows_is_refused(tmp_path):
    """2**32 × 2**32 values wrap to 0 in 64-bit arithmetic: an empty byte range must not pass for it."""
    head = json.dumps({"w": {"dtype": "F32", "shape": [2 ** 32, 2 ** 32], "data_offsets": [0, 0]}}).encode()
    path = tmp_path / "overflow.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head)
    with pytest.raises(ModelError, match="'w' has a byte range that does not fit"):
        read_state_dict(str(path))


@pytest.mark.parametrize("entry", [
    {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]},       # offsets as text
    {"dtype": "F32", "shape": [1], "data_offsets": [0.0, 4.0]},       # offsets as floats
    {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]},         # a dtype that is a list
    {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]},        # three offsets
    "w",                                                              # not an object at all
])
def test_a_safetensors_header_entry_of_the_wrong_type_is_one_clear_error(tmp_path, entry):
    head = json.dumps({"w": entry}).encode()
    path = tmp_path / "typed.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"\0" * 4)
    with pytest.raises(ModelError, match="bad header entry for 'w'"):
        read_state_dict(str(path))


def test_a_safetensors_header_nested_too_deeply_is_one_clear_error(tmp_path):
    head = b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head)
    with pytest.raises(ModelError, match="header is not JSON"):
        read_state_dict(str(path))


def _pth_zip(path, pickled: bytes, storage: bytes) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pickled)
        zf.writestr("archive/data/0", storage)
    return str(path)


def test_a_pth_tensor_larger_than_its_storage_is_refused(tmp_path):
    """Stride 0 repeats one value: 4 floats on disk "expanded" to 50000 × 50000 (10 GB in memory), or
    to terabytes. Refused before anything is allocated; a constant tensor within the floor reads."""
    expanded = _FOUR_FLOATS.replace(b"K\x04\x85K\x01\x85", b"M\x50\xc3M\x50\xc3\x86K\x00K\x00\x86")
    assert expanded != _FOUR_FLOATS
    with pytest.raises(ModelError, match="more values than the file holds"):
        read_state_dict(_pth_zip(tmp_path / "expanded.pth", expanded, b"\0" * 16))
    constant = _FOUR_FLOATS.replace(b"K\x04\x85K\x01\x85", b"M\xe8\x03M\xe8\x03\x86K\x00K\x00\x86")
    got = read_state_dict(_pth_zip(tmp_path / "constant.pth", constant, b"\0" * 16))
    assert [a.shape for a in got.values()] == [(1000, 1000)] and all(a.flags.c_contiguous for a in got.values())


def test_a_pth_storage_used_by_many_tensors_cannot_multiply_memory(tmp_path):
    """One 1 MB storage named by 600 tensors (a few bytes of pickle each) would be 600 MB of copies,
    and a million of them terabytes: what the file's tensors add up to is held to what the file could
    hold (at least ``MIN_EXPANDED_BYTES``), counted before any copy is made."""
    n = 1 << 18                                                  # 1 MB of float32
    count = n.to_bytes(4, "little")
    storage = b"(" + _text("storage") + b"ctorch\nFloatStorage\n" + _text("0") + _text("cpu") + b"J" + count + b"tQq\x01"
    tensor = b"K\x00J" + count + b"\x85K\x01\x85\x89tRs"
    pickled = (b"\x80\x02ccollections\nOrderedDict\n)R" + _text("w0") + b"ctorch._utils\n_rebuild_tensor_v2\nq\x02("
               + storage + tensor
               + b"".join(_text(f"w{i}") + b"h\x02(h\x01" + tensor for i in range(1, 600)) + b".")
    with pytest.raises(ModelError, match="more values than the file holds"):
        read_state_dict(_pth_zip(tmp_path / "many.pth", pickled, b"\0" * (4 * n)))
    one = pickled.split(_text("w1"))[0] + b"."                  # the same file with one tensor reads
    assert read_state_dict(_pth_zip(tmp_path / "one.pth", one, b"\0" * (4 * n)))["w0"].shape == (n,)
