"""Ready-made detectors: ``models pull`` against a 127.0.0.1 store, its failures, the Detect page's
panel, fine-tuning from a pulled folder, and MegaDetector's categories on known boxes.

The "GluonCV" weights are made here: a randomly initialized ssd_512_mobilenet1.0 with VOC's 20
classes, saved and zipped as GluonCV's store serves it, its SHA-1 patched into GluonCV's table.
"""
from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import pytest

from store_server import ModelStoreServer, store_zip
from ssd.base.errors import DownloadError, ModelError, SSDError

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")

NAME = "ssd_512_mobilenet1.0_voc"
ARCH = "ssd_512_mobilenet1.0"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """``(net in memory, params bytes, sha1)`` of a VOC-class ssd_512_mobilenet1.0 (random weights)."""
    from ssd.models.gluoncv.recipe import new_zoo_model
    from ssd.models.pretrained import dataset_classes

    net, _ = new_zoo_model(ARCH, dataset_classes("voc"), "voc", input_size=128)
    path = str(tmp_path_factory.mktemp("made") / "w.params")
    net.save_parameters(path)
    data = open(path, "rb").read()
    return net, data, hashlib.sha1(data).hexdigest()


@pytest.fixture
def store(weights, monkeypatch, tmp_path):
    """The store serving the good zip, GluonCV's SHA-1 table patched, an empty weights cache."""
    from gluoncv.model_zoo import model_store

    _, data, sha1 = weights
    monkeypatch.setitem(model_store._model_sha1, NAME, sha1)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet_home"))
    fname = f"{NAME}-{sha1[:8]}"
    srv = ModelStoreServer({f"/gluon/models/{fname}.zip": store_zip(f"{fname}.params", data)})
    monkeypatch.setenv("MXNET_GLUON_REPO", srv.url)
    srv.key, srv.fname = f"/gluon/models/{fname}.zip", fname
    yield srv
    srv.close()


def _tree(root: str):
    """Every path under ``root`` (None when it does not exist): 'unchanged' means equal trees."""
    if not os.path.exists(root):
        return None
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, ds, fs in os.walk(root) for f in ds + fs)


def _cache_files():
    root = os.path.join(os.environ["MXNET_HOME"], "models")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_pull_installs_a_model_that_lists_and_detects_like_the_net_in_memory(store, weights, tmp_path, capsys):
    from ssd.cli.main import main
    from ssd.inference.detector import Detector
    from ssd.store import list_models, read_meta
    from ssd.models.knowledge import model_knowledge
    from ssd.data.synthetic import render_example

    root = str(tmp_path / "models")
    assert main(["models", "--root", root, "pull", NAME]) == 0
    out = capsys.readouterr().out
    path = os.path.join(root, NAME)
    assert f"installed: {path}" in out and "20 Pascal VOC classes" in out
    assert sorted(os.listdir(root)) == [NAME]                       # no staging folder left
    meta = read_meta(path)
    assert meta["arch"] == ARCH and meta["input_size"] == 512 and meta["zoo"]["variant"] == "voc"
    assert meta["classes"][:3] == ["aeroplane", "bicycle", "bird"] and len(meta["classes"]) == 20
    assert meta["source"]["sha1"] == weights[2] and meta["source"]["url"] == store.url + store.key[1:]
    assert meta["source"]["license"] == "Apache-2.0" and "VOC07 mAP 75.4" in meta["model_card"]
    assert meta["anchors"]["total"] == 6132                         # the native-size anchor layout
    assert model_knowledge(meta) == "20 Pascal VOC classes (GluonCV's ssd_512_mobilenet1.0_voc, VOC07 mAP 75.4)"

    assert main(["models", "--root", root]) == 0
    assert f"{NAME} ({ARCH}, 20 class(es))" in capsys.readouterr().out
    assert [m.name for m in list_models(root)[0]] == [NAME]

    from PIL import Image

    image = Image.fromarray(render_example(0, 1, "val", 200)[0])
    pulled = Detector.load(path).detect(image)
    in_memory = Detector(weights[0], meta).detect(image)
    assert len(in_memory) > 0
    np.testing.assert_array_equal(pulled.class_ids, in_memory.class_ids)
    np.testing.assert_allclose(pulled.scores, in_memory.scores, rtol=1e-5)
    np.testing.assert_allclose(pulled.boxes, in_memory.boxes, rtol=1e-4, atol=1e-3)

    hits = len(store.hits)
    assert main(["models", "--root", root, "pull", NAME]) == 0      # again: nothing fetched or written
    assert "already installed" in capsys.readouterr().out and len(store.hits) == hits


def test_pull_reports_progress_and_reuses_the_weights_cache(store, weights, tmp_path):
    from ssd.store import pull_model

    seen = []
    first = pull_model(NAME, str(tmp_path / "a"), progress=lambda done, total: seen.append((done, total)))
    assert not first.already and seen and seen[-1][0] == seen[-1][1] == len(store.files[store.key])
    assert _cache_files() == [f"{store.fname}.params"]               # no zip, no staging
    pull_model(NAME, str(tmp_path / "b"))                             # another models folder: no download
    assert store.hits == [store.key]


def test_an_interrupted_download_resumes(store, weights, tmp_path):
    from ssd.store import pull_model

    whole = store.files[store.key]
    cache = os.path.join(os.environ["MXNET_HOME"], "models")
    os.makedirs(cache)
    with open(os.path.join(cache, f"{store.fname}.zip.part"), "wb") as fh:   # what a killed pull leaves
        fh.write(whole[:len(whole) // 2])
    path = pull_model(NAME, str(tmp_path / "models")).path
    assert store.ranges == [len(whole) // 2]                          # only the second half was sent
    assert os.path.isfile(os.path.join(path, "model.params")) and _cache_files() == [f"{store.fname}.params"]


def test_a_wrong_file_is_refused_and_nothing_is_left(store, tmp_path, capsys):
    from ssd.cli.main import main

    store.files[store.key] = store_zip(f"{store.fname}.params", b"not the published weights" * 1000)
    root = tmp_path / "models"
    root.mkdir()
    (root / "mine").mkdir()
    before = _tree(str(root))
    assert main(["models", "--root", str(root), "pull", NAME]) == 2
    err = capsys.readouterr().err
    assert "has SHA-1" in err and "not GluonCV's" in err and "was not installed" in err
    assert _tree(str(root)) == before and _cache_files() == []


def test_a_dead_server_fails_in_seconds_naming_the_file_and_leaves_nothing(store, weights, tmp_path,
                                                                           monkeypatch, closed_port):
    from ssd.store import pull_model

    monkeypatch.setenv("MXNET_GLUON_REPO", f"http://127.0.0.1:{closed_port}/")
    root = str(tmp_path / "models")
    t0 = time.perf_counter()
    with pytest.raises(DownloadError) as err:
        pull_model(NAME, root)
    assert time.perf_counter() - t0 < 5
    msg = str(err.value)
    assert f"{store.fname}.params" in msg and weights[2] in msg
    assert os.path.join(os.environ["MXNET_HOME"], "models") in msg and "refused" in msg
    assert _tree(root) is None and _cache_files() == []


def test_unknown_names_and_the_list(capsys, tmp_path):
    from ssd.cli.main import main
    from ssd.store import pull_model

    with pytest.raises(ModelError, match="ssd_512_mobilenet1.0_coco"):
        pull_model("yolo3_darknet53_coco", str(tmp_path))
    assert main(["models", "pull", "--list"]) == 0
    lines = [l for l in capsys.readouterr().out.splitlines()[1:] if "GluonCV model store" in l]
    assert len(lines) == 6 and {l.split()[0] for l in lines} == {
        f"{a}_{v}" for a in ("ssd_512_mobilenet1.0", "ssd_300_vgg16_atrous", "ssd_512_resnet50_v1")
        for v in ("coco", "voc")}
    assert all(" MB " in l and " ms/image " in l for l in lines)
    assert any("80 COCO classes" in l and "COCO AP 30.6" in l for l in lines)


def test_fine_tuning_starts_from_a_pulled_folder(store, weights, tmp_path):
    from ssd.models.gluoncv import finetune
    from ssd.store import pull_model

    path = pull_model(NAME, str(tmp_path / "models")).path
    net, _, info = finetune.create_for_training(ARCH, ["Domestic Cat", "fox"], path, input_size=128)
    assert info["variant"] == "voc" and info["reused_classes"] == {"Domestic Cat": "cat"}
    src = weights[0]
    np.testing.assert_allclose(net.box_predictors[0].predictor.weight.data().asnumpy(),
                               src.box_predictors[0].predictor.weight.data().asnumpy())
    with pytest.raises(ModelError, match="ssd_512_mobilenet1.0.*cannot start a ssd_512_resnet50_v1"):
        finetune.create_for_training("ssd_512_resnet50_v1", ["x"], path, input_size=128)


# ---------------------------------------------------------------------------------------------
# MegaDetector categories
# ---------------------------------------------------------------------------------------------

def _raw(names, boxes, scores, classes):
    from ssd.inference.detector import RawDetections

    ids = np.array([classes.index(n) for n in names], np.int64)
    return RawDetections(ids, np.array(scores, np.float32), np.array(boxes, np.float32), (640, 480),
                         list(classes), "trap.jpg")


def test_megadetector_categories_map_merge_and_drop():
    from ssd.camtrap.categories import apply_categories, to_megadetector
    from ssd.camtrap.results import megadetector_json
    from ssd.models.pretrained import dataset_classes

    coco = dataset_classes("coco")
    fox = [100, 100, 300, 260]
    raw = _raw(["dog", "cat", "person", "chair", "car", "truck", "bear"],
               [fox, [110, 105, 305, 270], [120, 90, 310, 280], [0, 0, 50, 50], [400, 300, 600, 460],
                [405, 310, 600, 470], [0, 200, 90, 300]],
               [0.6, 0.3, 0.8, 0.95, 0.4, 0.5, 0.2], coco)
    md = to_megadetector(raw)
    assert md.classes == ["animal", "person", "vehicle"]
    # cat merged into the dog (same category, IoU ≥ 0.5); person overlaps the dog but stays; chair dropped;
    # the truck (0.5) absorbs the car (0.4); the bear does not overlap anything
    assert [(md.classes[c], round(float(s), 2)) for c, s in zip(md.class_ids, md.scores)] == [
        ("person", 0.8), ("animal", 0.6), ("vehicle", 0.5), ("animal", 0.2)]
    np.testing.assert_array_equal(md.boxes[1], fox)
    assert md.image_size == raw.image_size and md.name == "trap.jpg"
    assert apply_categories(raw, "none") is raw

    doc = megadetector_json([("trap.jpg", md.filter(0.1), None)], md.classes, "m", 0.1)
    assert doc["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert [d["category"] for d in doc["images"][0]["detections"]] == ["2", "1", "3", "1"]

    voc = dataset_classes("voc")
    vmd = to_megadetector(_raw(["aeroplane", "motorbike", "sheep", "pottedplant"],
                               [[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 90, 90], [1, 1, 5, 5]],
                               [0.9, 0.7, 0.5, 0.99], voc))
    assert [vmd.classes[c] for c in vmd.class_ids] == ["vehicle", "vehicle", "animal"]
    empty = to_megadetector(_raw([], np.zeros((0, 4)), [], coco))
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)
    with pytest.raises(SSDError, match="animal, person, vehicle"):
        to_megadetector(_raw(["pikachu"], [[0, 0, 1, 1]], [0.9], ["pikachu"]))
    with pytest.raises(SSDError, match="unknown category scheme"):
        apply_categories(raw, "imagenet")


def test_cli_detect_with_megadetector_categories(store, tmp_path, capsys):
    import json

    from PIL import Image

    from ssd.cli.main import main
    from ssd.data.synthetic import render_example
    from ssd.store import pull_model

    path = pull_model(NAME, str(tmp_path / "models")).path
    img = str(tmp_path / "a.png")
    Image.fromarray(render_example(0, 2, "val", 160)[0]).save(img)
    out = str(tmp_path / "md.json")
    assert main(["detect", "--model", path, img, "--threshold", "0.01", "--categories", "megadetector",
                 "--json", out]) == 0
    doc = json.load(open(out))
    assert doc["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert {d["category"] for d in doc["images"][0]["detections"]} <= {"1", "2", "3"}


# ---------------------------------------------------------------------------------------------
# The Detect page
# ---------------------------------------------------------------------------------------------

def _untrained_pikachu_model(path: str) -> None:
    """A TinySSD folder as training writes it (one class, the synthetic set), without training it."""
    import mxnet as mx

    from ssd.data.preprocess import MEAN, STD
    from ssd.models.tiny import TinySSD
    from ssd.store import save_model

    net = TinySSD(1, 64)
    net.initialize(init=mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 64, 64)))
    anchors = net.anchor_config.to_dict()
    anchors.update(per_scale=net.anchor_config.counts(), total=net.anchor_config.total())
    save_model(path, net, {"arch": "tiny", "classes": ["pikachu"], "input_size": 64, "anchors": anchors,
                           "normalize": {"mean": list(MEAN), "std": list(STD)}, "default": True,
                           "dataset": {"path": "/data/synthetic-pikachu", "num_train": 64}})


def test_detect_page_pulls_a_detector_and_selects_it(store, synth_dir, data_root, tmp_path, monkeypatch):
    from conftest import open_app_page

    root = tmp_path / "models"
    _untrained_pikachu_model(str(root / "tiny-test"))
    at = open_app_page(monkeypatch, root, data_root, "app_pages/detect.py")
    assert "1 class: pikachu, trained on 64 images of synthetic-pikachu (synthetic images)" in " ".join(
        c.value for c in at.sidebar.text)
    assert not [t for t in at.sidebar.toggle if t.label == "MegaDetector categories"]   # a Pikachu model: no switch
    buttons = {b.key: b for b in at.button if (b.key or "").startswith("pull::")}
    assert len(buttons) == 8 and list(buttons)[:2] == ["pull::ssd300_vgg16_coco",          # the live sources first
                                                        "pull::ssdlite320_mobilenet_v3_large_coco"]
    at = buttons[f"pull::{NAME}"].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(os.listdir(root)) == sorted(["tiny-test", NAME])
    picker = at.sidebar.selectbox(key="detect_model")
    assert picker.value == str(root / NAME)                          # selected when it lands, no restart
    assert "20 Pascal VOC classes" in " ".join(c.value for c in at.sidebar.text)
    assert not [b for b in at.button if (b.key or "").startswith("pull::")]   # the panel is gone
    toggle = next(t for t in at.sidebar.toggle if t.label == "MegaDetector categories")
    at = toggle.set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert set(at.multiselect(key=f"detect_classes::{root / NAME}::True").options) == {"animal", "person", "vehicle"}
    assert at.session_state["detect_stats"]["new_forward_calls"] == 0  # mapping reuses the cached candidates

    at = at.switch_page("app_pages/train.py").run()                 # and fine-tuning can start from it
    assert not at.exception, [e.value for e in at.exception]
    start = at.selectbox(key="train_pretrained")
    label = f"{NAME} · {ARCH} · 20 Pascal VOC classes, pulled from GluonCV"
    assert label in start.options
    assert [o for o in start.options if o.startswith("tiny-test · tiny · 1 class")]   # a TinySSD starts a TinySSD
    from ssd import jobs

    started = []

    def fake_start(models_root, cfg):   # no real background job: record what would be trained
        started.append(cfg)
        raise SSDError("not started in this test")

    monkeypatch.setattr(jobs, "start_job", fake_start)
    start.set_value(label)
    at.selectbox(key="train_dataset").set_value(synth_dir)
    at = next(b for b in at.button if b.label == "Start training").click().run()
    assert [(c.arch, c.pretrained) for c in started] == [(ARCH, str(root / NAME))]


def test_detect_page_with_no_model_at_all_offers_the_detectors(tmp_path, data_root, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT

    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    offer = next(m.value for m in at.markdown if "ssd_512_mobilenet1.0_coco" in m.value)   # Home offers them
    assert offer.index("ssd300_vgg16_coco") < offer.index("ssd_512_mobilenet1.0_coco")  # the live one first
    at = at.switch_page("app_pages/detect.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len([b for b in at.button if (b.key or "").startswith("pull::")]) == 8
    assert "models pull ssd300_vgg16_coco" in at.warning[0].value and "models pull --list" in at.warning[0].value


def test_an_install_killed_between_staging_and_rename_is_cleaned_up_by_the_next_one(tiny_model_dir, tmp_path):
    """A kill after staging leaves ``.install-NAME-*``; the next install of NAME removes it once it
    is an hour old, and leaves a younger one (another process may be installing right now)."""
    from ssd.store import PARAMS_FILE, STALE_INSTALL_S, install_model, list_models, read_meta

    root = tmp_path / "models"
    old, young = root / ".install-det-killed", root / ".install-det-running"
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / PARAMS_FILE).write_bytes(b"half a file")
    past = time.time() - STALE_INSTALL_S - 60
    os.utime(old, (past, past))
    assert [m.name for m in list_models(str(root))[0]] == []           # leftovers are never listed
    dest = install_model(str(root), "det", read_meta(tiny_model_dir), os.path.join(tiny_model_dir, PARAMS_FILE))
    assert os.path.isfile(os.path.join(dest, PARAMS_FILE))
    assert not old.exists() and young.exists()


def test_two_pulls_of_one_detector_at_once_both_succeed(store, tmp_path, monkeypatch):
    """The other pull (another terminal, the app) installs the folder while this one converts: this
    one reports it installed, instead of telling the user to delete the good model."""
    from contextlib import contextmanager

    from ssd.models import pretrained
    from ssd.store import list_models, pull_model

    root = str(tmp_path / "models")
    original = pretrained.prepared

    @contextmanager
    def racing(name, progress=None):
        with original(name, progress) as pair:
            monkeypatch.setattr(pretrained, "prepared", original)
            assert not pull_model(NAME, root).already          # the other pull wins the race
            yield pair

    monkeypatch.setattr(pretrained, "prepared", racing)
    result = pull_model(NAME, root)
    assert result.already and result.path == os.path.join(root, NAME)
    assert [m.name for m in list_models(root)[0]] == [NAME]
    assert sorted(os.listdir(root)) == [NAME]                  # no staging folder left


def test_a_pull_the_models_folder_cannot_take_is_one_line_on_the_page(tmp_path, data_root, monkeypatch):
    """A full disk or an unwritable models folder (an ``OSError``, not ours) is said in one line."""
    from streamlit.testing.v1 import AppTest

    import app_pages._pretrained as panel
    from conftest import REPO_ROOT

    def full_disk(name, root, progress=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(panel, "pull_model", full_disk)
    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    at = AppTest.from_file(os.path.join(REPO_ROOT, "app.py"), default_timeout=120).run()
    at = at.switch_page("app_pages/detect.py").run()
    at = next(b for b in at.button if (b.key or "").startswith("pull::")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("could not be installed" in e.value and "No space left" in e.value for e in at.error)
