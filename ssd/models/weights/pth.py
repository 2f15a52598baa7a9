"""Reading PyTorch ``.pth`` files with numpy alone, executing nothing from the file.

A ``.pth`` written by ``torch.save`` (PyTorch ≥ 1.6) is a zip: ``ROOT/data.pkl`` is a pickle of
the state dict whose tensors point at raw storages ``ROOT/data/KEY``. A pickle can name any
Python callable and have it run on load, so a downloaded checkpoint is untrusted code unless the
unpickler refuses every name but the few that rebuild tensors. This one allows exactly:

* ``collections.OrderedDict`` (the state dict itself);
* ``torch._utils._rebuild_tensor_v2`` and ``torch._utils._rebuild_parameter`` (tensors and
  ``nn.Parameter``), replaced by numpy functions of ours;
* ``torch.<Type>Storage`` (``FloatStorage``, ``HalfStorage``, ``LongStorage``…), which only say
  which numpy dtype a storage holds.

Anything else (``os.system``, ``builtins.eval``, a class of the writer's) raises ``ModelError``
before it is looked up: nothing from the file is imported or called. torch is not needed.
"""
from __future__ import annotations

import collections
import io
import math
import os
import pickle
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

from ssd.base.errors import ModelError

#: How much larger than the file itself its entries may inflate. torch.save stores them uncompressed
#: (1×) and re-zipped weights shrink little; a zip bomb inflates a thousandfold.
MAX_INFLATION = 8
#: What a file's tensors may always expand to, however small the file: torch.save keeps an
#: ``expand``-ed tensor as one value with stride 0, so a constant-valued ResNet-50 (100 MB of
#: values) is a file of a few kB. Larger than the largest network this project imports (136 MB).
MIN_EXPANDED_BYTES = 512 << 20

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_, "BFloat16Storage": "bfloat16",
}


class _Storage:
    """A raw storage read from the zip: a flat numpy array of its dtype."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: Tuple[int, ...], stride: Tuple[int, ...],
                       requires_grad: bool = False, hooks: Any = None, metadata: Any = None) -> np.ndarray:
    """torch's tensor rebuild, in numpy: a read-only strided view of the storage (``read_pth``
    copies the views that are not contiguous once the whole file is known to fit)."""
    flat = storage.array
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if not size:
        return np.array(flat[int(offset)])
    if any(s == 0 for s in size):
        return np.zeros(size, dtype=flat.dtype)
    last = int(offset) + sum((n - 1) * st for n, st in zip(size, stride))
    if offset < 0 or any(st < 0 for st in stride) or last >= flat.size:
        raise ModelError(f"a tensor of shape {size} reaches past its storage of {flat.size} values "
                         "(a damaged or hostile file)")
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat[int(offset):], shape=size,
                                           strides=tuple(st * item for st in stride), writeable=False)


def _rebuild_parameter(data: np.ndarray, requires_grad: bool = False, hooks: Any = None) -> np.ndarray:
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    # ("torch._utils", "_rebuild_tensor_v2"): _Unpickler._rebuild, which keeps count of what tensors expand to
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    """Resolves only the names above; storages come from the zip through ``persistent_load``."""

    def __init__(self, data: bytes, zf: zipfile.ZipFile, root: str, path: str) -> None:
        super().__init__(io.BytesIO(data))
        self.zf, self.root, self.path = zf, root, path
        self.storages: Dict[str, _Storage] = {}
        self.budget = tensor_budget(path)

    def _rebuild(self, storage: _Storage, offset: int, size: Tuple[int, ...], *rest: Any) -> np.ndarray:
        """``_rebuild_tensor_v2`` within what the file may expand to. Why: a stride of 0, or one storage
        named by a million tensors, turns a few bytes of pickle into terabytes of copies."""
        wanted = math.prod(int(s) for s in size) * storage.array.itemsize if isinstance(size, tuple) else 0
        self.budget -= max(wanted, 0)
        if self.budget < 0:
            raise ModelError(f"{self.path}: its tensors hold more values than the file holds (views that "
                             "repeat their storage: a hostile file, not a checkpoint); refused")
        return _rebuild_tensor_v2(storage, offset, size, *rest)

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise ModelError(f"{self.path}: refused to load: its pickle asks for {module}.{name}, which a "
                         "weights file never needs (only tensors and dictionaries are read; nothing in "
                         "the file is run)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ModelError(f"{self.path}: unexpected persistent id {str(pid)[:80]!r}")
        dtype, key, numel = pid[1], str(pid[2]), int(pid[4])
        if key not in self.storages:
            self.storages[key] = _Storage(self._read_storage(dtype, key, numel))
        return self.storages[key]

    def _read_storage(self, dtype, key: str, numel: int) -> np.ndarray:
        if not key.isalnum():
            raise ModelError(f"{self.path}: bad storage name {key!r}")
        try:
            info = self.zf.getinfo(f"{self.root}/data/{key}")
        except KeyError:
            raise ModelError(f"{self.path}: storage data/{key} is missing from the archive") from None
        width = 2 if isinstance(dtype, str) and dtype == "bfloat16" else np.dtype(dtype).itemsize
        if info.file_size > numel * width:     # checked before reading: the zip's directory says it
            raise ModelError(f"{self.path}: storage data/{key} expands to {info.file_size} bytes, more than "
                             f"its {numel} values need (a damaged or hostile file)")
        raw = self.zf.read(info)
        if isinstance(dtype, str) and dtype == "bfloat16":
            bits = np.frombuffer(raw, dtype="<u2", count=numel)
            return (bits.astype(np.uint32) << 16).view(np.float32)
        dt = np.dtype(dtype).newbyteorder("<")
        if len(raw) < numel * dt.itemsize:
            raise ModelError(f"{self.path}: storage data/{key} holds {len(raw)} bytes, fewer than "
                             f"{numel} values of {dt.name}")
        return np.frombuffer(raw, dtype=dt, count=numel).astype(dt.newbyteorder("="), copy=False)


def _root_of(zf: zipfile.ZipFile, path: str) -> str:
    pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ModelError(f"{path}: not a PyTorch checkpoint (no single ROOT/data.pkl in the zip)")
    return pickles[0].split("/")[0]


def allowed_bytes(path: str) -> int:
    """The most a checkpoint's zip entries may inflate to: ``MAX_INFLATION`` times its file (at least 1 MB)."""
    return MAX_INFLATION * max(os.path.getsize(path), 1 << 20)


def tensor_budget(path: str) -> int:
    """The most a checkpoint's tensors may add up to: what its entries may inflate to, at least
    ``MIN_EXPANDED_BYTES`` (constant tensors are legitimately far larger than their file)."""
    return max(allowed_bytes(path), MIN_EXPANDED_BYTES)


def _materialized(obj: Any) -> Any:
    """``obj`` with every strided view copied to a plain array. Why after the whole pickle: the
    copies are what cost memory, and a hostile file is refused by its total before any is made."""
    if isinstance(obj, np.ndarray):
        return obj if obj.flags.c_contiguous else obj.copy(order="C")
    if isinstance(obj, dict):
        for key in list(obj):
            obj[key] = _materialized(obj[key])
        return obj
    if isinstance(obj, list):
        return [_materialized(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialized(v) for v in obj)
    return obj


def _check_inflation(zf: zipfile.ZipFile, path: str) -> None:
    """``ModelError`` for a zip whose entries inflate far beyond the file (a zip bomb), before any is read."""
    total = sum(info.file_size for info in zf.infolist())
    if total > allowed_bytes(path):
        raise ModelError(f"{path}: its entries expand to {total / 1e6:.0f} MB, {total / os.path.getsize(path):.0f} "
                         "times the file (a zip bomb, not a checkpoint); refused")


def read_pth(path: str) -> Dict[str, Any]:
    """The object a ``torch.save`` zip holds (a state dict: name → numpy array), safely.

    ``ModelError`` for anything else: the legacy pre-1.6 format, a damaged zip, a pickle that asks
    for a name outside the allowed few.
    """
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ModelError(f"{path}: not a zip-format PyTorch checkpoint (files written by PyTorch before "
                         "1.6 are not supported: load and re-save it with a current torch.save)") from None
    except OSError as err:
        raise ModelError(f"{path}: cannot be read ({err})") from None
    with zf:
        _check_inflation(zf, path)
        root = _root_of(zf, path)
        byteorder = zf.read(f"{root}/byteorder").decode("ascii", "replace").strip() if f"{root}/byteorder" in zf.namelist() else "little"
        if byteorder != "little":
            raise ModelError(f"{path}: written on a big-endian machine; not supported")
        unpickler = _Unpickler(zf.read(f"{root}/data.pkl"), zf, root, path)
        try:
            return _materialized(unpickler.load())
        except ModelError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise ModelError(f"{path}: the checkpoint's pickle is damaged ({type(err).__name__}: {err})") from None
