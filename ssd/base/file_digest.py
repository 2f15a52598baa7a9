"""A file's hash, remembered per file version.

Why: the Detect page asks on every rerun which precisions a model offers, and that rests on the
model's files' hashes (its weights, its INT8 graphs); hashing a real-world model's 100+ MB each
time cost about a second a slider move. A version is the file's identity (device, inode, size,
modification time): weights and graphs are replaced atomically (a new inode), so a changed file
is hashed again.
"""
from __future__ import annotations

import hashlib
import os

from ssd.base.lru import BytesLRU

_DIGESTS: BytesLRU[str] = BytesLRU(max_bytes=1 << 20, max_entries=256)


def file_digest(path: str, algorithm: str = "sha256") -> str:
    """The hex digest of ``path`` by ``algorithm`` (a ``hashlib`` constructor: "sha256", "sha1"); ``OSError`` when unreadable."""
    st = os.stat(path)
    key = (algorithm, os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = getattr(hashlib, algorithm)()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _DIGESTS.put(key, digest, len(digest))
    return digest
