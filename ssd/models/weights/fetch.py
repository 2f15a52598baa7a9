"""Fetching a live source's file: resumable, with progress, checked against its SHA-256.

Files land in ``$SSD_WEIGHTS_DIR`` (default ``weights`` in the user's cache, ``~/.cache/ssd-studio``) under their own
names; a copy already in torch's cache (``$TORCH_HOME/hub/checkpoints``, default
``~/.cache/torch/hub/checkpoints``) with the right hash is used as it is. A file whose hash does
not match is never given its final name.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

from ssd.base.errors import DownloadError
from ssd.base.user_cache import user_cache_dir
from ssd.models.weights.catalogue import LiveFile

Progress = Callable[[int, Optional[int]], None]


def weights_dir() -> str:
    """Where downloaded weights are kept (and resumed): ``$SSD_WEIGHTS_DIR``, else ``weights`` in
    ``user_cache_dir()`` (``$SSD_CACHE_DIR`` or ``~/.cache/ssd-studio``)."""
    env = os.environ.get("SSD_WEIGHTS_DIR")
    return os.path.expanduser(env) if env else os.path.join(user_cache_dir(), "weights")


def torch_cache_dir() -> str:
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch")
    return os.path.join(os.path.expanduser(home), "hub", "checkpoints")


def verified(path: str, entry: LiveFile) -> bool:
    """True when ``path`` has the entry's full SHA-256 (or, where only that is known, its prefix)."""
    from ssd.data.download import file_digest

    if not os.path.isfile(path):
        return False
    digest = file_digest(path, "sha256")
    return digest == entry.sha256 if entry.sha256 else digest.startswith(entry.sha256_prefix)


def _detector_name(entry: LiveFile) -> Optional[str]:
    """The pull name of the detector whose file this is (``models import`` converts those), None for
    a backbone's: the messages then give the import command ready to paste."""
    from ssd.models.weights.catalogue import LIVE_DETECTORS

    return next((name for name, d in LIVE_DETECTORS.items() if d.file == entry), None)


def _import_command(entry: LiveFile, name: str) -> str:
    return f"python -m ssd models import {entry.file} --as {name}"


def _by_hand(entry: LiveFile, dest: str) -> str:
    check = f"SHA-256 {entry.sha256}" if entry.sha256 else f"SHA-256 starting {entry.sha256_prefix}"
    name = _detector_name(entry)
    alternative = f", or import a copy with: {_import_command(entry, name)}" if name else ""
    return (f"To install it by hand, download {entry.url} on a machine with internet access and save it as "
            f"{dest} ({check}){alternative}")


def fetch_live(entry: LiveFile, progress: Optional[Progress] = None, download: bool = True) -> str:
    """Path of the entry's verified file, downloading it if needed (``DownloadError`` otherwise)."""
    from ssd.data.download import download as fetch

    for folder in (weights_dir(), torch_cache_dir()):
        if verified(os.path.join(folder, entry.file), entry):
            return os.path.join(folder, entry.file)
    dest = os.path.join(weights_dir(), entry.file)
    if not download:
        raise DownloadError(f"{entry.file} is not in {weights_dir()}. {_by_hand(entry, dest)}")
    try:
        if entry.sha256:
            return fetch(entry.url, dest, sha256=entry.sha256, progress=progress)
        unverified = dest + ".unverified"
        fetch(entry.url, unverified, progress=progress)
    except DownloadError as err:
        name = _detector_name(entry)
        if name is None:                # a backbone: saving it where the message says is the way
            raise
        raise DownloadError(f"{err} A copy made elsewhere can also be converted with: "
                            f"{_import_command(entry, name)}") from None
    if not verified(unverified, entry):
        os.remove(unverified)
        raise DownloadError(f"{entry.url} sent a file whose SHA-256 does not start with {entry.sha256_prefix} "
                            f"(the digits in its name); it was deleted. {_by_hand(entry, dest)}")
    os.replace(unverified, dest)
    return dest
