"""``python -m ssd detect`` on single photos: where its outputs go, and what it prints where.

Outputs are checked before any work: results written over a photo would destroy the original,
and ``-`` is what a person types for "standard output", never a file of that name."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def detect(cwd, *args):
    return subprocess.run([sys.executable, "-m", "ssd", "detect", *args], cwd=str(cwd), capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": REPO})


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(p)
    return p


@pytest.mark.parametrize("flag", ["--json", "--csv"])
def test_an_output_named_like_an_input_photo_is_refused_and_the_photo_kept(shipped_models_root, photo, flag):
    before = photo.read_bytes()
    r = detect(photo.parent, "--model", os.path.join(shipped_models_root, "tiny-pikachu"), "photo.jpg",
               flag, "photo.jpg", "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "refusing to write results over 'photo.jpg'" in r.stderr
    assert photo.read_bytes() == before


def test_json_dash_writes_the_results_to_stdout_and_only_them(shipped_models_root, photo):
    r = detect(photo.parent, "--model", os.path.join(shipped_models_root, "tiny-pikachu"), "photo.jpg",
               "missing.jpg", "--json", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)              # stdout is the JSON alone: no table, no progress
    assert [e["file"] for e in doc["images"]] == ["photo.jpg", "missing.jpg"]
    assert not os.path.exists(photo.parent / "-") and os.listdir(photo.parent) == ["photo.jpg"]
    assert "error: " in r.stderr and "missing.jpg" in r.stderr


def test_a_refused_huge_image_is_one_message_on_stderr(shipped_models_root, tmp_path):
    Image.new("L", (12000, 9000)).save(tmp_path / "huge.png")
    r = detect(tmp_path, "--model", os.path.join(shipped_models_root, "tiny-pikachu"), "huge.png", "--quiet")
    assert r.returncode == 0
    assert "error: 'huge.png' is 12000×9000 = 108 megapixels" in r.stderr
    assert "Warning" not in r.stderr and "warnings.warn" not in r.stderr    # no raw Pillow warning beside it
