"""MXNet ``.params`` files are checked before MXNet reads them: a forged header cannot make the
process allocate what the file does not hold (MXNet allocates every declared array first)."""
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from ssd.base.errors import ModelError
from ssd.base.params_file import V1_MAGIC, V2_MAGIC, check_params_file, read_params_header

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: run a snippet with its address space capped at 2 GB, so a failure of the check cannot take the machine
CAPPED = ("import resource, sys, time\n"
          "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n")


def array_v2(shape, flag=0, data=b"", stype=0, magic=V2_MAGIC):
    head = struct.pack("<Iii", magic, stype, len(shape)) + struct.pack(f"<{len(shape)}q", *shape)
    return head + struct.pack("<iii", 1, 0, flag) + data


def params_bytes(arrays, names, count=None, name_count=None, magic=0x112):
    out = struct.pack("<QQQ", magic, 0, len(arrays) if count is None else count) + b"".join(arrays)
    out += struct.pack("<Q", len(names) if name_count is None else name_count)
    return out + b"".join(struct.pack("<Q", len(n)) + n.encode() for n in names)


def forged(path, elements=10 ** 11, size=1024):
    """A ``size``-byte file whose one float32 array ``weight`` declares ``elements`` elements."""
    head = array_v2((elements,))
    tail = struct.pack("<Q", 1) + struct.pack("<Q", 6) + b"weight"
    body = struct.pack("<QQQ", 0x112, 0, 1) + head
    with open(path, "wb") as f:
        f.write(body + b"\0" * (size - len(body) - len(tail)) + tail)
    return str(path)


def test_shipped_params_read_as_mxnet_reads_them(shipped_models_root):
    import mxnet as mx

    folder = os.path.join(shipped_models_root, "tiny-pikachu")
    for name in ("model.params", "int8-0000.params"):
        path = os.path.join(folder, name)
        header = read_params_header(path)
        loaded = mx.nd.load(path)
        assert len(header) == len(loaded) > 50
        for key, arr in loaded.items():
            assert header[key] == (arr.shape, 0)


def test_every_dtype_an_unnamed_list_and_numpy_semantics_files(tmp_path):
    import mxnet as mx

    arrays = {f"a{i}": mx.nd.ones((2, i + 1), dtype=t) for i, t in
              enumerate(["float32", "float64", "float16", "uint8", "int32", "int8", "int64", "bool"])}
    mx.nd.save(str(tmp_path / "v2.params"), arrays)
    got = read_params_header(str(tmp_path / "v2.params"))
    assert {k: s for k, (s, _) in got.items()} == {k: a.shape for k, a in arrays.items()}
    assert [f for _, f in got.values()] == list(range(8))
    mx.nd.save(str(tmp_path / "list.params"), [mx.nd.ones((3,)), mx.nd.zeros((1, 1))])
    assert read_params_header(str(tmp_path / "list.params")) == {"0": ((3,), 0), "1": ((1, 1), 0)}
    mx.npx.set_np()                   # numpy semantics write V3 arrays: scalars, zero-size arrays
    try:
        mx.npx.save(str(tmp_path / "v3.params"), {"s": mx.np.array(3.0), "z": mx.np.ones((0, 2)),
                                                  "w": mx.np.ones((4, 5))})
    finally:
        mx.npx.reset_np()
    assert read_params_header(str(tmp_path / "v3.params")) == {"s": ((), 0), "z": ((0, 2), 0), "w": ((4, 5), 0)}


def test_legacy_v1_and_pre_v1_arrays_read_as_mxnet_reads_them(tmp_path):
    import mxnet as mx

    data = np.arange(6, dtype=np.float32).tobytes()
    v1 = struct.pack("<Ii2q", V1_MAGIC, 2, 2, 3) + struct.pack("<iii", 1, 0, 0) + data
    old = struct.pack("<I2I", 2, 3, 2) + struct.pack("<iii", 1, 0, 0) + data   # the magic is the ndim
    path = tmp_path / "old.params"
    path.write_bytes(params_bytes([v1, old], ["v1", "old"]))
    loaded = mx.nd.load(str(path))
    assert read_params_header(str(path)) == {"v1": ((2, 3), 0), "old": ((3, 2), 0)}
    assert loaded["v1"].shape == (2, 3) and loaded["old"].shape == (3, 2)


@pytest.mark.parametrize("blob, why", [
    (params_bytes([array_v2((10 ** 11,))], ["w"]), "array 0: shape \\(100000000000,\\) declares"),
    (params_bytes([array_v2((4,), data=bytes(16))], ["w"])[:-3], "truncated"),
    (params_bytes([array_v2((4,), data=bytes(16))], ["w"], magic=0x113), "magic 0x113"),
    (params_bytes([array_v2((4,), data=bytes(16), magic=0xDEADBEEF)], ["w"]), "unknown array magic"),
    (params_bytes([array_v2((4,), data=bytes(16))], ["w"], count=10 ** 15), "cannot fit"),
    (params_bytes([array_v2((4,), data=bytes(16))], ["w"], name_count=10 ** 15), "names for 1 arrays"),
    (params_bytes([array_v2((4,), data=bytes(16))], []), None),
    (params_bytes([array_v2((4,), data=bytes(16))], ["w"]) + b"junk", "trailing garbage"),
    (params_bytes([array_v2((-4, 2))], ["w"]), "negative dimension"),
    (params_bytes([array_v2((1 << 40, 1 << 40))], ["w"]), "overflows"),
    (params_bytes([array_v2((4,), flag=99, data=bytes(16))], ["w"]), "type flag 99"),
    (params_bytes([array_v2((4,), data=bytes(16), stype=1)], ["w"]), "sparse"),
])
def test_forged_or_broken_headers_are_refused_in_one_line(tmp_path, blob, why):
    path = tmp_path / "model.params"
    path.write_bytes(blob)
    if why is None:                   # an unnamed list is fine
        check_params_file(str(path))
        return
    with pytest.raises(ModelError, match=why) as err:
        check_params_file(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_name_longer_than_the_file_is_refused(tmp_path):
    path = tmp_path / "model.params"
    blob = params_bytes([array_v2((4,), data=bytes(16))], ["w"])
    path.write_bytes(blob[:-9] + struct.pack("<Q", 10 ** 12) + b"w")
    with pytest.raises(ModelError, match="name 0 declares 1,000,000,000,000 bytes"):
        check_params_file(str(path))


def test_a_forged_header_is_refused_in_milliseconds_without_memory(tmp_path):
    path = forged(tmp_path / "model.params")
    code = CAPPED + (
        "from ssd.base.params_file import check_params_file\n"
        "from ssd.base.errors import ModelError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n"
        "try:\n    check_params_file(sys.argv[1])\nexcept ModelError as err:\n    print(err)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    r = subprocess.run([sys.executable, "-c", code, path], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    message, numbers = r.stdout.strip().splitlines()
    assert "array 0" in message and "400,000,000,000 bytes" in message
    seconds, grown_kb = numbers.split()
    assert float(seconds) < 0.1 and int(grown_kb) < 100 * 1024


def test_every_mxnet_load_of_a_model_folder_refuses_it(tmp_path):
    """Through the library (under a 2 GB cap): the refusal names the array, not 'Failed to allocate'."""
    import shutil

    from conftest import SHIPPED_MODEL
    folder = tmp_path / "colleague"
    shutil.copytree(SHIPPED_MODEL, folder)
    for name in ("model.params", "int8-0000.params"):
        forged(folder / name)
    code = CAPPED + (
        "from ssd.base.errors import ModelError\n"
        "from ssd.store import load_model\n"
        "from ssd.inference import precision\n"
        "from ssd.inference.detector import Detector\n"
        "precision.int8_status = lambda *a: (True, '')   # as if quantized here: reach the INT8 load\n"
        "for load in (load_model, lambda p: precision.load_int8(p, precision.read_meta(p)),\n"
        "             lambda p: Detector.load(p, precision='fp32')):\n"
        "    try:\n        load(sys.argv[1])\n    except ModelError as err:\n        print(err)\n")
    r = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and all("declares 400,000,000,000 bytes" in line for line in lines), lines
    assert "int8-0000.params" in lines[1] and "Failed to allocate" not in r.stdout + r.stderr


def test_cli_detect_with_a_forged_params_exits_2_with_one_error_line(tmp_path):
    import shutil

    from conftest import SHIPPED_MODEL
    folder = tmp_path / "colleague"
    folder.mkdir()
    shutil.copy(os.path.join(SHIPPED_MODEL, "meta.json"), folder)
    forged(folder / "model.params")
    code = CAPPED + "import runpy\nsys.argv = ['ssd'] + sys.argv[1:]\nrunpy.run_module('ssd', run_name='__main__')\n"
    r = subprocess.run([sys.executable, "-c", code, "detect", "--model", str(folder), "x.jpg"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr[-2000:]
    assert "model.params" in errors[0] and "array 0" in errors[0] and "Traceback" not in r.stderr
