"""A model folder to start training from is outside data: its meta.json and model.params may be
anything (hand-edited, another tool's, damaged). Each oddity ends as one clear refusal before any
training, never a traceback, a loop of advice that cannot be followed, or a run of NaN weights."""
from __future__ import annotations

import json
import os

import pytest

from train_capture import caught  # noqa: F401  (the fixture)

TINY_META = {"arch": "tiny", "classes": ["pikachu"], "input_size": 64,
             "anchors": {"sizes": [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]],
                         "ratios": [[1.0, 2.0, 0.5]] * 5}}


def _folder(path, **changes) -> str:
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump({**TINY_META, **changes}, f)
    open(os.path.join(path, "model.params"), "wb").close()
    return str(path)


@pytest.mark.parametrize("changes,said", [
    ({"classes": []}, "'classes' must be a non-empty list of distinct names"),            # was: ValueError traceback
    ({"classes": [{"a": 1}, None]}, "'classes' must be a non-empty list of distinct names"),  # was: weights' shapes
    ({"input_size": "64"}, "'input_size' must be an integer"),   # was: 'trained at 64 px, give --input-size 64'
    ({"input_size": 10 ** 9}, "'input_size' must be an integer"),
    ({"anchors": "x"}, "'anchors' must be an object"),                 # was: AttributeError traceback
    ({"classes": [f"c{i}" for i in range(100_000)]}, "'classes' must be"),  # was: a weights-shape puzzle
    ({"classes": ["deer", "deer"]}, "'classes' must be"),               # which deer would results name?
    ({"classes": ["x" * 5000]}, "'classes' must be"),
])
def test_a_start_folder_with_odd_meta_is_refused_in_one_line(tmp_path, caught, capsys, changes, said):
    from ssd.cli.main import main

    folder = _folder(tmp_path / "start", **changes)
    argv = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--pretrained", folder,
            "--input-size", "64", "--device", "cpu"]
    assert main(argv) == 2 and not caught
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_start_folder_of_nan_weights_is_refused_not_trained_from(tmp_path, synth_dir, capsys):
    """Was: the run trained from NaN weights to 'loss nan' and exited 0, saving a NaN model."""
    import mxnet as mx

    from ssd.cli.main import main

    tiny = ["--input-size", "64", "--batch-size", "4", "--max-iters", "1", "--device", "cpu", "--epochs", "1"]
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    assert main(["train", "--data", synth_dir, "--out", a] + tiny) == 0
    params = os.path.join(a, "model.params")
    weights = mx.nd.load(params)
    name = sorted(weights)[0]
    weights[name] = weights[name] * float("nan")
    mx.nd.save(params, weights)
    capsys.readouterr()
    assert main(["train", "--data", synth_dir, "--out", b, "--pretrained", a] + tiny) == 2
    err = capsys.readouterr().err
    assert "not finite" in err and "Traceback" not in err
    assert not os.path.exists(os.path.join(b, "model.params"))
