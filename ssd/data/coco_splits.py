"""COCO sets already split into folders: ``train/`` and ``valid/`` (or ``val/``), each with its own JSON.

Roboflow's COCO download is laid out this way (``train/_annotations.coco.json`` beside its photos,
``valid/``, ``test/``), and so are sets people split by hand. The person chose the validation
images, so they are used as given instead of drawing a split from ``train/``. Each folder is read by
the COCO Camera Traps loader; the two class lists are then made one, by original category id, so
index 3 means the same class in both splits. A class boxed only in validation is kept (evaluation
must show it, at AP 0) and counted, since training never sees it. ``test/`` is held out from both and
opened as the test split (``eval --split test``) with its own class list: evaluation matches its class
names to the model's, so a class boxed only in ``test/`` is reported as one the model lacks.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ssd.base.errors import DatasetError
from ssd.data.cct import KIND, CCTDataset, CCTSplits, detect as is_coco_folder, open_cct
from ssd.data.cct_labels import id_sort_key
from ssd.data.dataset import register_format
from ssd.data.skip_reasons import SKIP_CATEGORY_PREFIX

_TRAIN = ("train",)
_VAL = ("valid", "val", "validation")
_TEST = ("test",)
NOTE_VAL_ONLY = "class with boxes only in validation (never trained): "
NOTE_TEST_LEFT_OUT = "test/ left out (it could not be read): "


def _split_folders(path: str) -> Optional[Tuple[str, str]]:
    """``(train, val)`` subfolders of ``path`` that both hold a COCO JSON, else None."""
    found = []
    for names in (_TRAIN, _VAL):
        sub = next((os.path.join(path, n) for n in names if is_coco_folder(os.path.join(path, n))), None)
        if sub is None:
            return None
        found.append(sub)
    return found[0], found[1]


def detect(path: str) -> bool:
    return os.path.isdir(path) and _split_folders(path) is not None


def open_coco_splits(path: str, **kw: Any) -> CCTSplits:
    """``open_dataset`` entry point: train from ``train/``, validation from ``valid/`` (``val_fraction`` unused)."""
    kw.pop("val_fraction", None)
    train_dir, val_dir = _split_folders(path)  # type: ignore[misc]
    train = open_cct(train_dir, val_fraction=0.0, **kw)
    val = open_cct(val_dir, val_fraction=0.0, **kw)
    mapping = _joint_mapping(train.class_mapping, val.class_mapping)
    classes = [m["name"] for m in mapping]
    skipped = _joint_skipped(train.skipped, val.skipped, mapping, train.class_mapping)
    stem = os.path.basename(os.path.abspath(path))
    parts = [_remapped(s.train, s.class_mapping, mapping, f"{stem}/{split}")
             for s, split in ((train, "train"), (val, "val"))]
    return CCTSplits(train=parts[0], val=parts[1], classes=classes, kind=KIND, root=os.path.abspath(path),
                     skipped=skipped, class_mapping=mapping, json_path=train.json_path, image_root=train.image_root,
                     test=_test_split(path, stem, kw, skipped))


def _test_split(path: str, stem: str, kw: Dict[str, Any], skipped: Dict[str, int]) -> Optional[CCTDataset]:
    """``test/`` as one split, or None without one. Why it is read now: a broken test folder is said
    when the set opens (``data info``), not found out after training; but it is no reason to refuse
    training, so it is left out and counted with the loader's reason (``eval --split test`` shows it)."""
    test_dir = next((os.path.join(path, n) for n in _TEST if is_coco_folder(os.path.join(path, n))), None)
    if test_dir is None:
        return None
    try:
        test = open_cct(test_dir, val_fraction=0.0, **kw).train
    except DatasetError as err:
        skipped[NOTE_TEST_LEFT_OUT + str(err)[:300]] = 1
        return None
    return CCTDataset(test.records, test.classes, f"{stem}/test", test.json_path, test.class_mapping,
                      test.crowd_mapping)


def _joint_mapping(*mappings: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One ``class_mapping`` over both splits, ordered as the loader orders ids (numerically)."""
    by_id: Dict[Any, str] = {}
    for mapping in mappings:
        for m in mapping:
            by_id.setdefault(m["id"], m["name"])
    ids = sorted(by_id, key=id_sort_key)
    return [{"index": i, "id": cid, "name": by_id[cid]} for i, cid in enumerate(ids)]


def _joint_skipped(train: Dict[str, int], val: Dict[str, int], mapping: List[Dict[str, Any]],
                   train_mapping: List[Dict[str, Any]]) -> Dict[str, int]:
    """Both splits' counts summed; each split lists every category, so one left without boxes counts once,
    and only when neither split boxes it."""
    kept = {m["name"] for m in mapping}
    out: Dict[str, int] = {}
    for counts in (train, val):
        for reason, n in counts.items():
            if reason.startswith(SKIP_CATEGORY_PREFIX):
                if reason[len(SKIP_CATEGORY_PREFIX):] not in kept:
                    out[reason] = 1
            else:
                out[reason] = out.get(reason, 0) + n
    trained = {m["id"] for m in train_mapping}
    for m in mapping:
        if m["id"] not in trained:
            out[NOTE_VAL_ONLY + m["name"]] = 1
    return out


def _remapped(ds: CCTDataset, old: List[Dict[str, Any]], new: List[Dict[str, Any]], name: str) -> CCTDataset:
    """``ds`` with class indices of ``old`` turned into those of ``new`` (matched by original id)."""
    joint = {m["id"] for m in new}
    crowd_new = new + [dict(c, index=len(new) + j)     # a category with regions but no box in either split
                       for j, c in enumerate(c for c in ds.crowd_mapping if c["id"] not in joint)]
    label, crowd = _index_table(old, new), _index_table(ds.crowd_mapping, crowd_new)
    records = [dataclasses.replace(r, label=_remap(r.label, label), crowd=_remap(r.crowd, crowd)) for r in ds.records]
    return CCTDataset(records, [m["name"] for m in new], name, ds.json_path, new, crowd_new)


def _index_table(old: List[Dict[str, Any]], new: List[Dict[str, Any]]) -> np.ndarray:
    """Old class index → new one (matched by original id)."""
    index_of = {m["id"]: m["index"] for m in new}
    return np.asarray([index_of[m["id"]] for m in old] or [0], dtype=np.float32)


def _remap(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    rows = rows.copy()
    if len(rows):
        rows[:, 0] = table[rows[:, 0].astype(np.int64)]
    return rows


register_format(KIND, detect, open_coco_splits)
