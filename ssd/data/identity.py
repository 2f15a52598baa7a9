"""A dataset's identity: what a resumed training run compares to notice that its data was replaced.

Why: a folder's path is not its content. ``data synth`` run again into the same folder (another seed
or count) between a run and its ``--resume`` would continue one dataset's weights on another. The
files that describe a dataset are small and change whenever it does: ``dataset.json``, the RecordIO
indexes (one offset per image), a COCO Camera Traps JSON, the banana label CSVs. Their SHA-256s (not
the gigabytes of ``.rec`` files or images) are the fingerprint; the plain fields of ``dataset.json``
(seed, counts, size) say in words what changed.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

from ssd.base.json_file import read_json_file
from ssd.base.meta_schema import MAX_META_BYTES
from ssd.data.dataset import DatasetSplits
from ssd.data.download import file_digest

# Attributes of a split that name a file describing it (RecordIO index, COCO Camera Traps JSON).
_DESCRIBING_ATTRS = ("idx_path", "json_path")


def dataset_identity(splits: DatasetSplits) -> Dict[str, Any]:
    """``{"files": {name: sha256}, "described": dataset.json's plain fields}`` of an opened dataset."""
    files = _describing_files(splits)
    return {"files": {name: file_digest(path, "sha256") for name, path in sorted(files.items())},
            "described": _described(os.path.join(splits.root, "dataset.json"))}


def identity_changes(saved: Any, now: Dict[str, Any]) -> List[str]:
    """What differs between a recorded identity and ``now``, in words: [] when nothing does, or when
    nothing was recorded (checkpoints written before datasets were fingerprinted)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("files"), dict):
        return []
    was = saved.get("described") if isinstance(saved.get("described"), dict) else {}
    is_ = now["described"]
    words = [f"{key} {was.get(key, '(none)')} → {is_.get(key, '(none)')}"
             for key in sorted(set(was) | set(is_)) if was.get(key) != is_.get(key)]
    files = sorted(name for name in set(saved["files"]) | set(now["files"])
                   if saved["files"].get(name) != now["files"].get(name))
    return words + ([f"{', '.join(files)} differ"] if files else [])


def _describing_files(splits: DatasetSplits) -> Dict[str, str]:
    """The describing files that exist, by their name under the dataset's folder."""
    paths = [os.path.join(splits.root, "dataset.json")]
    for split in (splits.train, splits.val):
        paths += [getattr(split, attr, None) for attr in _DESCRIBING_ATTRS]
        if isinstance(getattr(split, "split_dir", None), str):
            paths.append(os.path.join(split.split_dir, "label.csv"))
    found = {}
    for path in paths:
        if isinstance(path, str) and os.path.isfile(path):
            name = os.path.relpath(path, splits.root)
            found[os.path.basename(path) if name.startswith("..") else name] = path
    return found


def _described(path: str) -> Dict[str, Any]:
    """The plain (number, text, yes/no) fields of ``dataset.json``; {} when there is none."""
    try:
        info = read_json_file(path, MAX_META_BYTES)
    except (OSError, ValueError):
        return {}
    if not isinstance(info, dict):
        return {}
    return {k: v for k, v in info.items() if isinstance(v, (bool, int, float, str))}
