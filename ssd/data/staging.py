"""Datasets appear complete or not at all.

Why: a killed ``data synth`` used to leave fewer images, or an old and a new half mixed, and a failed
download left a folder that the app picked as its default dataset. Two mechanisms:

* ``staged_dir(final)``: a generator writes into a hidden sibling and the folder is swapped into
  place only once complete (``data synth``).
* ``in_progress(folder)``: a download that must work inside its final folder (to resume ``.part``
  files) holds a ``.partial`` marker folder there until the last file is in place. Loaders refuse a
  folder with the marker, and the dataset pickers skip it.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from typing import Iterator

from ssd.base.processes import pid_alive
from ssd.base.errors import DatasetError

PARTIAL = ".partial"


def is_incomplete(folder: str) -> bool:
    """True while a download or generation into ``folder`` has not finished (or was killed)."""
    return os.path.isdir(os.path.join(folder, PARTIAL))


def refuse_incomplete(folder: str) -> None:
    """``DatasetError`` naming the command that completes ``folder``, when it is unfinished."""
    if is_incomplete(folder):
        raise DatasetError(
            f"{folder} is incomplete: a download or `data synth` into it was interrupted. Run the same "
            f"command again to finish it (python -m ssd data pikachu|banana|ena24 --out {folder}, or "
            f"python -m ssd data synth --out {folder}), or delete the folder")


@contextmanager
def in_progress(folder: str) -> Iterator[str]:
    """Mark ``folder`` incomplete for the duration; the marker stays if the body fails or is killed."""
    marker = os.path.join(folder, PARTIAL)
    os.makedirs(marker, exist_ok=True)
    yield marker
    shutil.rmtree(marker, ignore_errors=True)


def _is_replaceable(folder: str, generator: str) -> bool:
    """An empty folder, or one an earlier run of the same generator made (safe to swap out)."""
    from ssd.base.json_file import read_json_file
    from ssd.base.meta_schema import MAX_META_BYTES

    names = [n for n in os.listdir(folder) if n != PARTIAL]
    if not names:
        return True
    try:
        info = read_json_file(os.path.join(folder, "dataset.json"), MAX_META_BYTES)
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("generator") == generator


@contextmanager
def staged_dir(final: str, generator: str) -> Iterator[str]:
    """Yield a hidden sibling folder to fill; on success it replaces ``final`` in two renames.

    ``final`` must be missing, empty, or made by the same ``generator`` (so a typo in ``--out``
    never deletes someone's files). A kill leaves only hidden ``.NAME.partial-PID`` folders, which
    no picker lists and the next run of the generator removes.
    """
    final = os.path.abspath(final)
    parent, name = os.path.dirname(final), os.path.basename(final)
    os.makedirs(parent, exist_ok=True)
    if os.path.isdir(final) and not _is_replaceable(final, generator):
        raise DatasetError(f"{final} already holds files that are not a dataset this command made; "
                           "choose an empty or new folder")
    if os.path.exists(final) and not os.path.isdir(final):
        raise DatasetError(f"{final} is a file; give a folder")
    remove_stale_staging(parent, name)
    stage = os.path.join(parent, f".{name}.partial-{os.getpid()}")
    os.makedirs(os.path.join(stage, PARTIAL))
    try:
        yield stage
        os.rmdir(os.path.join(stage, PARTIAL))
        old = os.path.join(parent, f".{name}.old-{os.getpid()}")
        if os.path.isdir(final):
            os.rename(final, old)
        os.rename(stage, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def remove_stale_staging(parent: str, name: str) -> None:
    """Delete what killed runs for ``name`` left in ``parent`` (their process is gone)."""
    for entry in os.listdir(parent):
        for tag in (".partial-", ".old-"):
            prefix = f".{name}{tag}"
            if entry.startswith(prefix) and entry[len(prefix):].isdigit():
                pid = int(entry[len(prefix):])
                if pid == os.getpid() or not pid_alive(pid):
                    shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


