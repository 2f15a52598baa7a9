"""Where the app's material comes from: the models and data roots, sample images, dataset folders.

Why it exists: the pages explain SSD on the synthetic Pikachu validation images and list the
datasets and models found in two configurable folders; this module finds all of those.
Knows nothing of Streamlit.

* **Paths come from the environment** (``SSD_MODELS_DIR``, ``SSD_DATA_DIR``) at call time, so
  tests point the app at temporary folders.
* **The app reads and writes photos only under its photo roots** (``SSD_PHOTO_ROOTS``, or a
  setting; by default the data folder and the user's home): a folder typed into a page is a path
  on the server, and a browser user must not make it list ``/etc`` or sort into another user's
  folder. ``check_photo_path`` says which roots there are when it refuses one.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ssd.base.atomic import atomic_write_bytes, atomic_write_json
from ssd.base.errors import SSDError
from ssd.base.json_file import read_json_file
from ssd.base.meta_schema import MAX_META_BYTES
from ssd.base.safe_paths import is_inside

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES_DIR = ".samples"     # inside the data folder: rendered synthetic validation images


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def models_dir() -> str:
    """Where saved models live: ``$SSD_MODELS_DIR`` or the repository's ``models/``."""
    return os.path.abspath(os.environ.get("SSD_MODELS_DIR") or os.path.join(REPO_ROOT, "models"))


def data_dir() -> str:
    """Where datasets live: ``$SSD_DATA_DIR`` or the repository's ``data/`` (gitignored)."""
    return os.path.abspath(os.environ.get("SSD_DATA_DIR") or os.path.join(REPO_ROOT, "data"))


PHOTO_ROOTS_ENV = "SSD_PHOTO_ROOTS"


class OutsideRoots(SSDError):
    """A folder given to a page that lies outside the folders the app may use."""


def photo_roots(setting: Optional[Sequence[str]] = None) -> List[str]:
    """The folders (resolved) the app's pages may read photos from and write sorted copies into:
    ``$SSD_PHOTO_ROOTS`` (separated by ``os.pathsep``), else ``setting``, else the data folder and
    the home folder of the user running the server."""
    env = os.environ.get(PHOTO_ROOTS_ENV, "")
    given = [p for p in env.split(os.pathsep) if p.strip()] or [str(p) for p in (setting or []) if str(p).strip()]
    roots = given or [data_dir(), os.path.expanduser("~")]
    return [os.path.realpath(os.path.expanduser(r)) for r in roots]


def check_photo_path(path: str, what: str, roots: Optional[Sequence[str]] = None) -> str:
    """``path`` resolved (links followed) if it lies under one of ``roots`` (``photo_roots()``),
    else ``OutsideRoots`` naming the roots and how to change them."""
    roots = list(roots) if roots is not None else photo_roots()
    real = os.path.realpath(os.path.expanduser(str(path)))
    if any(is_inside(r, real) for r in roots):
        return real
    raise OutsideRoots(f"{what} '{path}' is outside the folders this app may use ({', '.join(roots)}); "
                       f"set {PHOTO_ROOTS_ENV} (folders separated by '{os.pathsep}') before starting the app, "
                       "or photo_roots in its secrets, to allow another")


def model_key(model_path: str) -> Tuple[str, float]:
    """(path, mtime of meta.json, params and INT8 record): changes when a model is retrained or quantized."""
    from ssd.inference.precision import INT8_RECORD
    from ssd.store import META_FILE, PARAMS_FILE

    stamps = []
    for f in (META_FILE, PARAMS_FILE, INT8_RECORD):
        try:
            stamps.append(os.stat(os.path.join(model_path, f)).st_mtime)
        except OSError:
            stamps.append(0.0)
    return os.path.abspath(model_path), max(stamps)


# --------------------------------------------------------------------------------------------
# sample images (the synthetic validation set, rendered on demand)
# --------------------------------------------------------------------------------------------


@dataclass
class Sample:
    name: str
    data: bytes                      # PNG bytes, as an upload would give
    label: np.ndarray                # (K, 5) [class, xmin, ymin, xmax, ymax] normalized

    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.data)).convert("RGB")

    def array(self) -> np.ndarray:
        return np.asarray(self.image())


def sample_images(n: int = 6, seed: int = 0, root: Optional[str] = None) -> List[Sample]:
    """The first ``n`` images of the synthetic Pikachu validation split for ``seed``.

    ``ssd.data.synthetic.render_example`` is deterministic, so these are exactly the validation images
    ``python -m ssd data synth --seed SEED`` writes. They are cached as PNGs under
    ``<data dir>/.samples/`` (about 10 ms each to render the first time); an unwritable data
    folder only means they are rendered again next time.
    """
    from ssd.data.synthetic import render_example

    folder = os.path.join(root or data_dir(), SAMPLES_DIR, f"synth-val-seed{int(seed)}")
    labels_path = os.path.join(folder, "labels.json")
    labels: Dict[str, Any] = {}
    try:
        labels = read_json_file(labels_path, MAX_META_BYTES)
    except (OSError, ValueError):
        labels = {}
    out: List[Sample] = []
    changed = False
    for i in range(int(n)):
        name = f"pikachu_val_{i:03d}.png"
        path = os.path.join(folder, name)
        data = None
        if name in labels:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                data = None
        if data is None:
            img, lab = render_example(seed, i, "val")
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            data = buf.getvalue()
            labels[name] = lab.tolist()
            changed = True
            try:
                os.makedirs(folder, exist_ok=True)
                atomic_write_bytes(path, data)
            except OSError:
                pass
        out.append(Sample(name, data, np.asarray(labels[name], dtype=np.float32).reshape(-1, 5)))
    if changed:
        try:
            atomic_write_json(labels_path, labels)
        except OSError:
            pass
    return out


SCENES = "synthetic scenes"   # dataset_choices' value for the scenes, where a folder path would be


def sample_scenes(n: int = 8, seed: int = 0, root: Optional[str] = None, grid: int = 2) -> List[Sample]:
    """``n`` scenes of ``grid``×``grid`` synthetic samples each (several characters, at 1/``grid`` of
    their size): where one detector both finds, misses and invents characters in one picture, so a
    page can show true positives, false positives and false negatives side by side."""
    pool = sample_images(n * grid * grid, seed, root)
    scenes = []
    for k in range(int(n)):
        tiles = pool[k * grid * grid:(k + 1) * grid * grid]
        side = tiles[0].image().width
        canvas = Image.new("RGB", (side * grid, side * grid))
        labels = []
        for t, tile in enumerate(tiles):
            col, row = t % grid, t // grid
            canvas.paste(tile.image(), (col * side, row * side))
            lab = tile.label[tile.label[:, 0] >= 0].copy()
            lab[:, [1, 3]] = (lab[:, [1, 3]] + col) / grid
            lab[:, [2, 4]] = (lab[:, [2, 4]] + row) / grid
            labels.append(lab)
        buf = io.BytesIO()
        canvas.save(buf, format="PNG")
        scenes.append(Sample(f"pikachu_scene_{k:03d}.png", buf.getvalue(), np.concatenate(labels).astype(np.float32)))
    return scenes


def sample_labels(n: int = 64, seed: int = 0) -> List[np.ndarray]:
    """Ground truth of the first ``n`` synthetic validation images (for anchor coverage)."""
    return [s.label for s in sample_images(n, seed)]


def demo_sample_order(samples: Sequence[Sample]) -> List[int]:
    """Sample indices, clearest first: characters fully inside the frame, larger ones first."""
    def score(s: Sample) -> float:
        lab = s.label[s.label[:, 0] >= 0]
        if not len(lab):
            return -1.0
        x0, y0, x1, y1 = (float(v) for v in lab[0, 1:5])
        inside = x0 > 0.02 and y0 > 0.02 and x1 < 0.98 and y1 < 0.98
        return (x1 - x0) * (y1 - y0) + (1.0 if inside else 0.0)

    return sorted(range(len(samples)), key=lambda i: -score(samples[i]))


def demo_sample_index(samples: Sequence[Sample]) -> int:
    """The sample best suited to explain anchors: a large character fully inside the frame."""
    order = demo_sample_order(samples)
    return order[0] if order else 0


# --------------------------------------------------------------------------------------------
# datasets (what the Train and Anchors pages list)
# --------------------------------------------------------------------------------------------


def dataset_folders(root: Optional[str] = None) -> List[str]:
    """Complete dataset folders of the data folder, sorted.

    Hidden folders, folders of a download or generation that has not finished (or failed), and
    folders no dataset format recognises (e.g. only a download log) are left out, so none can
    become the pages' default dataset.
    """
    from ssd.data.dataset import detect_format

    root = root or data_dir()
    if not os.path.isdir(root):
        return []
    return [os.path.join(root, d) for d in sorted(os.listdir(root))
            if not d.startswith(".") and detect_format(os.path.join(root, d)) is not None]


def folder_stamp(path: str) -> float:
    """Newest mtime among a folder and its direct children (cache key for dataset summaries)."""
    try:
        stamps = [os.stat(path).st_mtime]
        with os.scandir(path) as it:
            for e in it:
                try:
                    stamps.append(e.stat().st_mtime)
                except OSError:
                    pass
        return max(stamps)
    except OSError:
        return 0.0


def dataset_labels(path: str, split: str = "val") -> Tuple[List[np.ndarray], str]:
    """Labels of a dataset split (falls back to train when there is no val), and the split used."""
    from ssd.data.dataset import open_dataset

    splits = open_dataset(path)
    ds = splits.val if split == "val" and splits.val is not None and len(splits.val) else splits.train
    used = "val" if ds is splits.val else "train"
    return [np.asarray(l, dtype=np.float32).reshape(-1, 5) for l in ds.labels()], used


def gt_boxes_of(labels: Iterable[np.ndarray]) -> np.ndarray:
    """All ground-truth corner boxes (normalized) of a list of labels, ``(M, 4)``."""
    parts = [np.asarray(l, dtype=np.float32).reshape(-1, 5) for l in labels]
    parts = [p[p[:, 0] >= 0][:, 1:5] for p in parts]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 4), np.float32)


def dataset_choices(meta: Optional[dict], scenes: bool = False) -> dict:
    """Label → dataset folder (``None``: the synthetic samples; ``SCENES``: ``sample_scenes``), the
    model's own dataset first; with ``scenes``, the synthetic scenes before everything."""
    choices = {"synthetic Pikachu scenes (four characters each)": SCENES} if scenes else {}
    ds_path = ((meta or {}).get("dataset") or {}).get("path")
    if ds_path and os.path.isdir(ds_path):
        choices[f"the model's dataset ({os.path.basename(ds_path)})"] = ds_path
    for p in dataset_folders():
        choices.setdefault(os.path.basename(p), p)
    choices["synthetic Pikachu samples (32 rendered)"] = None
    return choices
