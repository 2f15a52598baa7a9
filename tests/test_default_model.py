"""The shipped default model does what the README promises, on data it has never seen."""
import json
import os
import subprocess
import sys

import numpy as np

from ssd.base.boxes import box_iou
from ssd.inference.detector import Detector
from ssd.store import DEFAULT_MODELS_DIR, default_model, read_meta
from ssd.data.synthetic import generate, render_example

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(DEFAULT_MODELS_DIR, "tiny-pikachu")


def test_default_model_is_shipped_with_its_command_and_metrics(shipped_models_root):
    meta = read_meta(MODEL)
    assert default_model(shipped_models_root).name == "tiny-pikachu"    # marked default (a user's may be too)
    assert meta["default"] and meta["status"] == "done"
    assert meta["training"]["command"].startswith("python -m ssd train ")
    assert meta["metrics"]["best"]["val_map"] >= 0.9
    size_mb = sum(os.path.getsize(os.path.join(MODEL, f)) for f in os.listdir(MODEL)
                  if os.path.isfile(os.path.join(MODEL, f))) / 1e6
    assert size_mb < 10


def test_default_model_finds_the_character_on_unseen_images():
    det = Detector.load(MODEL)
    hits = 0
    for i in range(10):
        img, label = render_example(seed=2026, index=i, split="val")
        raw = det.detect(img_to_pil(img)).filter(0.3)
        if len(raw) and box_iou(raw.boxes[:1] / 256.0, label[:, 1:5]).max() >= 0.5:
            hits += 1
    assert hits >= 8, f"top box matched the character on only {hits}/10 unseen images"


def test_default_model_map_on_a_freshly_generated_set(tmp_path):
    data = str(tmp_path / "fresh")
    generate(data, num_train=1, num_val=100, seed=424242)
    r = subprocess.run([sys.executable, "-m", "ssd", "eval", "--model", MODEL, "--data", data, "--json",
                        str(tmp_path / "e.json")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["num_images"] == 100 and res["map"] >= 0.9, res


def img_to_pil(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(arr)
