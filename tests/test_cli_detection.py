"""The CLI and the Detector: bad input is reported per file, filtering never re-runs the network."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from ssd.inference.detector import Detector
from ssd.base.errors import ModelError
from ssd.store import load_model
from ssd.data.synthetic import generate, render_example
from ssd.training.config import TrainConfig
from ssd.training.loop import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ssd", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = str(root / "synth")
    generate(data, num_train=16, num_val=8, seed=3)
    out = str(root / "models" / "mini")
    train(TrainConfig(data=data, out=out, epochs=1, batch_size=8, augment=False, input_size=64),
          install_signal_handlers=False)
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    good = []
    for i in range(2):
        img, _ = render_example(seed=9, index=i, split="val")
        p = d / f"good{i}.jpg"
        Image.fromarray(img).resize((640, 480)).save(p, quality=92)
        good.append(str(p))
    (d / "notes.jpg").write_text("this is not an image")
    (d / "empty.png").write_bytes(b"")
    data = open(good[0], "rb").read()
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])
    return good, [str(d / "notes.jpg"), str(d / "empty.png"), str(d / "cut.jpg")]


def test_detect_reports_each_bad_file_and_processes_the_rest(model_dir, images, tmp_path):
    good, bad = images
    out_json = tmp_path / "md.json"
    r = run_cli("detect", "--model", model_dir, good[0], *bad, good[1], "--threshold", "0.0",
                "--json", str(out_json), "--csv", str(tmp_path / "d.csv"))
    assert r.returncode == 0      # the run completed: the failures are in the results, and on stderr
    err_lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(err_lines) == 3
    for b in bad:
        assert sum(os.path.basename(b) in l for l in err_lines) == 1
    assert "Traceback" not in r.stderr
    assert "empty" in r.stderr and "not an image" in r.stderr
    assert "good0.jpg" in r.stdout and "good1.jpg" in r.stdout
    md = json.loads(out_json.read_text())
    assert md["info"]["format_version"] == "1.6"
    assert md["detection_categories"] == {"1": "pikachu"}
    by_file = {e["file"]: e for e in md["images"]}
    assert all(by_file[b]["failure"] and by_file[b]["detections"] is None for b in bad)
    entry = by_file[good[0]]
    assert entry["failure"] is None and entry["detections"]
    for d in entry["detections"]:
        x, y, w, h = d["bbox"]
        assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1 and d["category"] == "1"
    assert (tmp_path / "d.csv").read_text().startswith("file,class,score")


def test_missing_and_malformed_datasets_give_one_clear_error(tmp_path):
    r = run_cli("train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "does not exist" in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.rec").write_bytes(os.urandom(2000))
    r = run_cli("train", "--data", str(bad), "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "train.rec" in r.stderr
    (bad / "train.rec").unlink()
    (bad / "readme.txt").write_text("hi")
    r = run_cli("eval", "--model", str(tmp_path / "m"), "--data", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_every_command_has_help():
    for cmd in (["train"], ["detect"], ["eval"], ["models"], ["data", "synth"], ["data", "info"],
                ["data", "pikachu"], ["data", "ena24"]):
        r = run_cli(*cmd, "--help", timeout=60)
        assert r.returncode == 0 and "usage:" in r.stdout, cmd


def test_eval_prints_per_class_ap_and_map(model_dir, tmp_path):
    data = os.path.dirname(os.path.dirname(model_dir)) + "/synth"
    r = run_cli("eval", "--model", model_dir, "--data", data, "--json", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    assert "pikachu" in r.stdout and "mAP" in r.stdout
    res = json.loads((tmp_path / "e.json").read_text())
    assert 0.0 <= res["map"] <= 1.0 and res["num_images"] == 8


def test_filter_needs_no_forward_pass_and_boxes_are_in_original_pixels(model_dir):
    det = Detector.load(model_dir)
    img, _ = render_example(seed=2, index=0, split="val")
    big = Image.fromarray(img).resize((1024, 768))
    raw = det.detect(big)
    assert det.forward_calls == 1
    assert raw.image_size == (1024, 768)
    assert len(raw) > 0 and (np.diff(raw.scores) <= 0).all()
    assert raw.boxes[:, [0, 2]].max() <= 1024 + 1e-3 and raw.boxes[:, [1, 3]].max() <= 768 + 1e-3
    shown = [len(raw.filter(t)) for t in (0.0, 0.05, 0.2, 0.5, 0.9)]
    assert shown == sorted(shown, reverse=True)
    assert len(raw.filter(0.0, max_detections=2)) == min(2, len(raw))
    assert len(raw.filter(0.0, classes=[])) == 0
    assert det.forward_calls == 1
    # same picture at half the size: its strongest box, scaled up, is one of the big image's boxes
    from ssd.base.boxes import box_iou
    raw2 = det.detect(Image.fromarray(img).resize((512, 384)))
    assert raw2.image_size == (512, 384)
    assert box_iou(raw2.boxes[:1] * 2, raw.boxes).max() > 0.9


def test_exif_orientation_is_applied_before_detection(model_dir, tmp_path):
    det = Detector.load(model_dir)
    img = Image.fromarray(render_example(seed=2, index=1, split="val")[0]).resize((400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif)
    raw = det.detect(str(p))
    assert raw.image_size == (200, 400)


def test_concurrent_callers_get_the_same_answers(model_dir):
    det = Detector.load(model_dir)
    imgs = [Image.fromarray(render_example(seed=4, index=i, split="val")[0]) for i in range(4)]
    expected = [det.detect(im).scores[:5] for im in imgs]
    results, errors = {}, []

    def worker(k):
        try:
            for _ in range(3):
                results[k] = det.detect(imgs[k % 4]).scores[:5]
        except Exception as err:  # pragma: no cover - the assertion below reports it
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, s in results.items():
        np.testing.assert_allclose(s, expected[k % 4], rtol=1e-5)


def test_broken_model_folders_fail_clearly(model_dir, tmp_path):
    import shutil
    from ssd.store import list_models

    root = tmp_path / "models"
    shutil.copytree(model_dir, root / "good", ignore=shutil.ignore_patterns("checkpoints"))
    shutil.copytree(model_dir, root / "truncated", ignore=shutil.ignore_patterns("checkpoints"))
    p = root / "truncated" / "model.params"
    p.write_bytes(p.read_bytes()[:1000])
    (root / "nometa").mkdir()
    (root / "badjson").mkdir()
    (root / "badjson" / "meta.json").write_text("{not json")
    ok, broken = list_models(str(root))
    assert [m.name for m in ok] == ["good", "truncated"]
    assert {b.name for b in broken} == {"nometa", "badjson"}
    with pytest.raises(ModelError, match="model.params"):
        load_model(str(root / "truncated"))
    with pytest.raises(ModelError, match="not valid JSON"):
        Detector.load(str(root / "badjson"))
    r = run_cli("detect", "--model", str(root / "truncated"), "x.jpg")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "model.params" in r.stderr and "truncated" in r.stderr
