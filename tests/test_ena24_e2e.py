"""An ENA24-shaped COCO Camera Traps folder goes through training, evaluation and detection by name."""
import json
import os
import subprocess
import sys

import pytest

from ssd.store import read_meta
from ssd.training.config import TrainConfig
from ssd.training.loop import train

try:
    from cct_fixture import ENA24_CLASSES, make_ena24_like
except ImportError:  # pragma: no cover - run from the repo root
    from tests.cct_fixture import ENA24_CLASSES, make_ena24_like

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ena(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ena24"))
    info = make_ena24_like(root, n_images=30, seed=1)
    out = os.path.join(root, "models", "ena-tiny")
    res = train(TrainConfig(data=root, out=out, epochs=1, batch_size=8, max_iters_per_epoch=2, augment=True,
                            input_size=64),
                install_signal_handlers=False)
    return info, out, res


def test_training_uses_species_names_and_records_the_mapping(ena):
    info, out, res = ena
    meta = read_meta(out)
    assert meta["classes"] == info["classes"] and "Human" not in meta["classes"]
    assert [m["id"] for m in meta["class_mapping"]] == info["class_ids"]
    assert meta["dataset"]["kind"] == "coco-camera-traps"
    assert meta["dataset"]["skipped"]  # missing files, bad boxes... are counted, not fatal
    assert set(res.history[0]["val_ap"]) == set(info["classes"])
    # the decode-once cache was built inside the dataset folder
    assert os.path.isdir(os.path.join(info["root"], ".ssd_cache"))


def test_eval_reports_ap_per_species(ena):
    info, out, _ = ena
    r = subprocess.run([sys.executable, "-m", "ssd", "eval", "--model", out, "--data", info["root"]],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    names_in_table = [n for n in info["classes"] if n in r.stdout]
    assert len(names_in_table) == len(info["classes"]) and "mAP" in r.stdout


def test_detect_reports_species_names(ena, tmp_path):
    info, out, _ = ena
    img = info["known"]["file_name"]  # a decodable image with a known box (not the corrupt or missing ones)
    out_json = tmp_path / "d.json"
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", out, os.path.join(info["image_root"], img),
                        "--threshold", "0", "--json", str(out_json)], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode in (0, 1), r.stderr
    md = json.loads(out_json.read_text())
    assert set(md["detection_categories"].values()) == set(info["classes"])
    dets = md["images"][0]["detections"]
    assert dets, "threshold 0 keeps every candidate"
    names = {md["detection_categories"][d["category"]] for d in dets}
    assert names <= set(ENA24_CLASSES)


def test_training_without_the_cache_skips_undecodable_photos(ena, tmp_path):
    """Decoding every epoch meets the truncated JPEG each time; it is skipped and reported, not fatal."""
    from ssd.training.events import read_events

    info, _, _ = ena
    out = str(tmp_path / "nocache")
    res = train(TrainConfig(data=info["root"], out=out, epochs=1, batch_size=8, cache=False, seed=3, input_size=64),
                install_signal_handlers=False)
    assert res.status == "done"
    warnings = [e["message"] for e in read_events(out) if e["type"] == "warning"]
    assert any("could not be decoded" in w for w in warnings)
