"""Synthetic Pikachu generator: determinism, exact boxes, format, speed, CLI."""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from ssd.cli import data as cli_data
from ssd.data import synthetic as synth
from ssd.data.dataset import open_dataset
from ssd.base.errors import DatasetError
from ssd.data.recordio import RecordDetectionDataset


@pytest.fixture(scope="module")
def examples():
    """200 training examples for seed 0 (rendered once for the module)."""
    return [synth.render_example(0, i, "train", 256) for i in range(200)]


def test_generate_writes_an_official_format_dataset(tmp_path):
    out = tmp_path / "pika"
    calls = []
    info = synth.generate(str(out), num_train=24, num_val=6, seed=3, progress=lambda d, t: calls.append((d, t)))
    assert sorted(os.listdir(out)) == ["dataset.json", "train.idx", "train.rec", "val.idx", "val.rec"]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta == info == {"name": "synthetic-pikachu", "classes": ["pikachu"], "num_train": 24, "num_val": 6,
                            "seed": 3, "size": 256, "generator": "ssd.synth", "complete": True}
    assert calls[-1] == (30, 30) and len(calls) == 30
    splits = open_dataset(str(out))
    assert splits.kind == "recordio" and splits.classes == ["pikachu"]
    assert len(splits.train) == 24 and len(splits.val) == 6
    img, lab = splits.train[5]
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    want = synth.render_example(3, 5, "train", 256)
    np.testing.assert_allclose(lab, want[1], atol=1e-7)
    assert np.abs(img.astype(int) - want[0]).mean() < 6   # JPEG of a busy picture


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    synth.generate(a, num_train=6, num_val=2, seed=11)
    synth.generate(b, num_train=6, num_val=2, seed=11)
    synth.generate(c, num_train=6, num_val=2, seed=12)
    for name in ("train.rec", "train.idx", "val.rec", "val.idx"):
        assert open(os.path.join(a, name), "rb").read() == open(os.path.join(b, name), "rb").read()
    assert open(os.path.join(a, "train.rec"), "rb").read() != open(os.path.join(c, "train.rec"), "rb").read()
    la = RecordDetectionDataset(os.path.join(a, "train.rec")).labels()
    lc = RecordDetectionDataset(os.path.join(c, "train.rec")).labels()
    assert not all(np.array_equal(x, y) for x, y in zip(la, lc))


def test_streams_are_independent_of_count_and_split():
    img0, lab0 = synth.render_example(5, 0, "train")
    img0b, lab0b = synth.render_example(5, 0, "train")
    assert np.array_equal(img0, img0b) and np.array_equal(lab0, lab0b)
    img_val, lab_val = synth.render_example(5, 0, "val")
    assert not np.array_equal(img0, img_val)
    with pytest.raises(ValueError):
        synth.render_example(5, 0, "test")


def test_boxes_are_valid_varied_and_some_cut_by_the_frame(examples):
    labels = np.stack([lab for _, lab in examples])
    assert labels.shape == (200, 1, 5)
    labels = labels[:, 0]
    assert np.all(labels[:, 0] == 0)
    box = labels[:, 1:]
    assert np.all(box >= 0) and np.all(box <= 1)
    w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    assert np.all(w > 0) and np.all(h > 0)
    assert np.all(np.maximum(w, h) >= 0.05)
    side = np.maximum(w, h)
    assert side.min() < 0.15 and side.max() > 0.45          # 10 %–60 % of the image side
    touching = (box[:, 0] == 0) | (box[:, 1] == 0) | (box[:, 2] == 1) | (box[:, 3] == 1)
    assert 15 <= touching.sum() <= 120
    assert len({tuple(np.round(b, 2)) for b in box}) > 180   # positions vary


def test_character_is_yellow_inside_its_box(examples):
    fractions = []
    for img, lab in examples[:60]:
        x0, y0, x1, y1 = (lab[0, 1:] * 256).round().astype(int)
        crop = img[y0:y1, x0:x1].astype(int)
        r, g, b = crop[..., 0], crop[..., 1], crop[..., 2]
        fractions.append(((r > 140) & (g > 110) & (b < 130) & (r - b > 80)).mean())
    assert np.median(fractions) > 0.2


def test_box_is_the_tight_box_of_the_drawn_character(monkeypatch):
    """On a flat grey background without photometric changes, the drawn pixels give the box."""
    grey = (128, 128, 128)
    monkeypatch.setattr(synth, "_background", lambda rng, size: Image.new("RGB", (size, size), grey))
    monkeypatch.setattr(synth, "_photometric", lambda rng, img: np.asarray(img))
    for i in range(40):
        img, lab = synth.render_example(1, i, "train", 256)
        drawn = np.abs(img.astype(int) - grey).max(axis=2) > 40
        ys, xs = np.nonzero(drawn)
        measured = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        np.testing.assert_allclose(lab[0, 1:] * 256, measured, atol=1.01)


def test_generation_speed(tmp_path):
    t0 = time.perf_counter()
    synth.generate(str(tmp_path / "speed"), num_train=180, num_val=20, seed=1)
    assert time.perf_counter() - t0 < 15


def test_no_validation_split_and_bad_arguments(tmp_path):
    out = tmp_path / "noval"
    synth.generate(str(out), num_train=3, num_val=0)
    assert open_dataset(str(out)).val is None
    for kw in ({"num_train": 0}, {"num_val": -1}, {"size": 16}, {"seed": -2}):
        with pytest.raises(DatasetError):
            synth.generate(str(tmp_path / "bad"), **kw)


def test_cli_synth_command(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="ssd data")
    cli_data.register_synth(parser.add_subparsers(dest="cmd"))
    out = tmp_path / "cli"
    args = parser.parse_args(["synth", "--out", str(out), "--num-train", "4", "--num-val", "2",
                              "--seed", "7", "--size", "128"])
    assert args.func(args) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "4 train + 2 val" in line and str(out) in line
    splits = open_dataset(str(out))
    assert splits.train[0][0].shape == (128, 128, 3) and len(splits.val) == 2
    assert json.loads((out / "dataset.json").read_text())["seed"] == 7
