"""Small, valid ICC colour profiles written byte by byte, so tests need no profile files.

``adobe_rgb()`` is a matrix/TRC display profile with Adobe RGB (1998)'s primaries (D50-adapted) and
gamma 2.2, as Adobe RGB photos carry; ``cmyk()`` a printer profile whose A2B0 table (lut8, Lab PCS)
maps ink to colour; ``broken()`` a profile littlecms refuses.
"""
from __future__ import annotations

import struct
from typing import List, Tuple

_D50 = (0.9642, 1.0, 0.8249)


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + struct.pack(">II", 0, 0)
            + struct.pack(">HB", 0, 0) + b"\0" * 67)


def _profile(cls: bytes, space: bytes, pcs: bytes, tags: List[Tuple[bytes, bytes]]) -> bytes:
    table_len = 4 + 12 * len(tags)
    offset = 128 + table_len
    entries, blobs = [], b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        entries.append(struct.pack(">4sII", sig, offset + len(blobs), len(data)))
        blobs += data
    size = 128 + table_len + len(blobs)
    header = (struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, cls, space, pcs) + b"\0" * 12
              + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + _s15(_D50[0]) + _s15(_D50[1]) + _s15(_D50[2]))
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + blobs


def adobe_rgb() -> bytes:
    """Adobe RGB (1998)-like: wide-gamut primaries, so its pixels are not sRGB's."""
    gamma = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(2.2 * 256)))
    return _profile(b"mntr", b"RGB ", b"XYZ ", [
        (b"desc", _desc("Adobe RGB (1998) test")), (b"wtpt", _xyz(*_D50)),
        (b"rXYZ", _xyz(0.6097, 0.3111, 0.0195)), (b"gXYZ", _xyz(0.2053, 0.6257, 0.0609)),
        (b"bXYZ", _xyz(0.1492, 0.0632, 0.7446)),
        (b"rTRC", gamma), (b"gTRC", gamma), (b"bTRC", gamma)])


def cmyk() -> bytes:
    """A CMYK profile (2-point grid per ink): no ink is white, each ink shifts lightness and hue."""
    identity = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ramp = bytes(range(256))
    clut = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    light = max(0, 255 - 60 * (c + m + y) - 170 * k)
                    a = 128 + 50 * m - 40 * c
                    b = 128 + 60 * y - 30 * c
                    clut += bytes((light, min(255, a), min(255, b)))
    lut = (b"mft1\0\0\0\0" + bytes((4, 3, 2, 0)) + identity + ramp * 4 + clut + ramp * 3)
    return _profile(b"prtr", b"CMYK", b"Lab ", [(b"desc", _desc("CMYK test")), (b"wtpt", _xyz(*_D50)),
                                                 (b"A2B0", lut)])


def broken() -> bytes:
    """Starts like a profile, is not one."""
    return adobe_rgb()[:200] + b"\xff" * 64
