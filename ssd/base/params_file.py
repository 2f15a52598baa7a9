"""MXNet's ``.params`` file (``mx.nd.save``'s NDArray list), checked before MXNet reads it.

MXNet's loader (``mx.nd.load``, ``Block.load_parameters``, ``SymbolBlock.imports``) allocates every
array the file's header declares *before* reading its data: a 1 KB file claiming a 10^11-element
float32 array makes the process ask for ~400 GB ("Failed to allocate CPU Memory", or swap and the
OOM killer). Model folders come from outside (a colleague's zip), so ``check_params_file`` walks the
header in pure Python, seeking past the data, and refuses with ``ModelError`` any array larger than
what is left of the file, absurd counts, names longer than the file, negative or overflowing dims,
unknown magic numbers, sparse arrays, truncation or trailing bytes. It costs milliseconds.

The layout (MXNet 1.x, ``src/ndarray/ndarray.cc``): uint64 list magic ``0x112``, uint64 reserved,
uint64 array count, the arrays, uint64 name count (0 or the array count), each name a uint64 length
and its bytes. Each array starts with a uint32 magic: V2 ``0xF993FAC9`` / V3 ``0xF993FACA`` (numpy
shape semantics) are followed by int32 storage type, the shape (int32 ndim, int64 dims), context
(int32 device type, int32 device id), int32 type flag, then the raw data; V1 ``0xF993FAC8`` has no
storage type; anything else is a legacy array whose magic *is* its ndim (uint32 dims). An array
whose shape is empty (ndim 0; in V3, ndim -1 or an unknown dim) stops after the shape.
"""
import os
import struct
from typing import BinaryIO, Dict, List, Optional, Tuple

from ssd.base.errors import ModelError

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
#: bytes per element of mshadow's type flags (float32, float64, float16, uint8, int32, int8,
#: int64, bool, int16, uint16, uint32, uint64, bfloat16)
ITEMSIZE = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 8: 2, 9: 2, 10: 4, 11: 8, 12: 2}
MAX_NDIM = 32            # no weight has more; a legacy magic read as ndim beyond this is garbage
MAX_DIM = 1 << 62        # each dim, and their product, must stay below int64's range


class _Header:
    """A cursor over the file that knows how many bytes are left and names what it is reading."""

    def __init__(self, f: BinaryIO, path: str, size: int):
        self.f, self.path, self.size, self.where = f, path, size, "the file header"

    def left(self) -> int:
        return self.size - self.f.tell()

    def fail(self, why: str) -> ModelError:
        return ModelError(f"{self.path}: not a usable MXNet parameter file: {self.where}: {why}")

    def read(self, fmt: str) -> Tuple[int, ...]:
        n = struct.calcsize(fmt)
        raw = self.f.read(n)
        if len(raw) != n:
            raise self.fail("the file is truncated")
        return struct.unpack(fmt, raw)

    def skip(self, nbytes: int, what: str) -> None:
        if nbytes > self.left():
            raise self.fail(f"{what} declares {nbytes:,} bytes but only {self.left():,} are left "
                            "(truncated or forged)")
        self.f.seek(nbytes, os.SEEK_CUR)


def _shape(h: _Header, magic: int) -> Optional[List[int]]:
    """The dims (``None`` for MXNet's "none" array, which has no data).

    V3 (numpy semantics): ndim 0 is a scalar, ndim -1 or a -1 dim the none array; otherwise ndim 0
    is the none array and every dim must be >= 0. Legacy arrays: the magic is the ndim, dims uint32.
    """
    legacy = magic not in (V1_MAGIC, V2_MAGIC, V3_MAGIC)
    ndim = magic if legacy else h.read("<i")[0]
    if ndim > MAX_NDIM or ndim < -1:
        raise h.fail(f"ndim {ndim} is impossible")
    if ndim == -1 and magic == V3_MAGIC or ndim == 0 and magic != V3_MAGIC:
        return None
    if ndim < 0:
        raise h.fail(f"ndim {ndim} is impossible")
    dims = list(h.read(f"<{ndim}{'I' if legacy else 'q'}"))
    if magic == V3_MAGIC and -1 in dims:
        return None
    if any(d < 0 for d in dims):
        raise h.fail(f"shape {tuple(dims)} has a negative dimension")
    total = 1
    for d in dims:
        total *= d
        if total >= MAX_DIM:
            raise h.fail(f"shape {tuple(dims)} overflows")
    return dims


def _array(h: _Header) -> Optional[Tuple[Tuple[int, ...], int]]:
    """Walk one array's header and seek past its data: ``(shape, type flag)`` or ``None`` (empty)."""
    magic = h.read("<I")[0]
    if magic in (V2_MAGIC, V3_MAGIC):
        stype = h.read("<i")[0]
        if stype != 0:
            raise h.fail(f"storage type {stype} (sparse arrays are not model weights)")
    elif magic != V1_MAGIC and magic > MAX_NDIM:
        raise h.fail(f"unknown array magic 0x{magic:08X}")
    dims = _shape(h, magic)
    if dims is None:
        return None
    dev_type, _dev_id, flag = h.read("<iii")
    if dev_type not in (1, 2, 3, 5):     # cpu, gpu, cpu_pinned, cpu_shared
        raise h.fail(f"device type {dev_type} is unknown")
    if flag not in ITEMSIZE:
        raise h.fail(f"data type flag {flag} is unknown")
    count = 1
    for d in dims:
        count *= d
    h.skip(count * ITEMSIZE[flag], f"shape {tuple(dims)}")
    return tuple(dims), flag


def _names(h: _Header, arrays: int) -> List[str]:
    h.where = "the name list"
    count = h.read("<Q")[0]
    if count not in (0, arrays):
        raise h.fail(f"{count:,} names for {arrays:,} arrays")
    names = []
    for i in range(count):
        n = h.read("<Q")[0]
        if n > h.left():
            raise h.fail(f"name {i} declares {n:,} bytes but only {h.left():,} are left")
        names.append(h.f.read(n).decode("utf-8", "replace"))
    return names


def read_params_header(path: str) -> Dict[str, Tuple[Tuple[int, ...], int]]:
    """``{name: (shape, type flag)}`` of an MXNet ``.params`` file (names ``"0"``, ``"1"``, … for an
    unnamed list; empty arrays left out), read without reading the data; ``ModelError`` when the
    file is not one MXNet could load without allocating more than the file holds."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        h = _Header(f, path, size)
        magic, _reserved, count = h.read("<QQQ")
        if magic != LIST_MAGIC:
            raise h.fail(f"magic 0x{magic:X} is not MXNet's array list (0x112)")
        if count > h.left() // 4:        # the smallest array (a legacy empty one) takes 4 bytes
            raise h.fail(f"{count:,} arrays cannot fit in {size:,} bytes")
        arrays = []
        for i in range(count):
            h.where = f"array {i}"
            arrays.append(_array(h))
        names = _names(h, count) or [str(i) for i in range(count)]
        if h.left():
            raise ModelError(f"{path}: not a usable MXNet parameter file: {h.left():,} bytes "
                             "follow the name list (trailing garbage)")
    return {n: a for n, a in zip(names, arrays) if a is not None}


def check_params_file(path: str) -> None:
    """``ModelError`` unless ``path`` is an MXNet parameter file that is safe to hand to MXNet."""
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such parameter file")
    read_params_header(path)


# The only ways the library hands a .params file to MXNet: each checks the header first.

def load_arrays(path: str):
    """``mx.nd.load(path)`` of a checked file (dict or list of NDArrays)."""
    import mxnet as mx

    check_params_file(path)
    return mx.nd.load(path)


def load_into(net, path: str, **kwargs) -> None:
    """``net.load_parameters(path, **kwargs)`` of a checked file."""
    check_params_file(path)
    net.load_parameters(path, **kwargs)


def import_graph(symbol_file: str, inputs, path: str, ctx):
    """``gluon.SymbolBlock.imports(symbol_file, inputs, path, ctx)`` with ``path`` checked first."""
    from mxnet import gluon

    check_params_file(path)
    return gluon.SymbolBlock.imports(symbol_file, inputs, path, ctx=ctx)
