"""Inference precision: the INT8 graph agrees with fp32, is stored once and loads without
re-calibrating, goes stale when the weights change; fp32 fusion and NMS out of the graph change
no result; the CLI flags; the naive engine's shared lock."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from ssd.base.boxes import box_iou
from ssd.base.errors import ModelError, SSDError
from ssd.cli.main import main
from ssd.data.dataset import open_dataset
from ssd.data.synthetic import render_example
from ssd.inference import precision as prec
from ssd.inference import quantize as quant
from ssd.inference.detector import Detector
from ssd.inference.evaluation import evaluate
from ssd.store import PARAMS_FILE, load_model

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(REPO, "models", "tiny-pikachu")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, synth_dir) -> str:
    """A copy of the shipped (well trained) TinySSD, quantized on the synthetic fixture's images."""
    if not os.path.isfile(os.path.join(SHIPPED, PARAMS_FILE)):
        pytest.skip("the shipped model is not in this checkout")
    path = str(tmp_path_factory.mktemp("precision") / "tiny-pikachu")
    shutil.copytree(SHIPPED, path)
    quant.quantize_model(path, data=synth_dir, images=8, eval_images=16)
    return path


def _fresh_images(n: int = 12):
    return [Image.fromarray(render_example(seed=2024, index=i, split="val")[0]) for i in range(n)]


def test_int8_detections_agree_with_fp32_on_a_fixed_set(quantized, synth_dir):
    fp32 = Detector.load(quantized, precision="fp32")
    int8 = Detector.load(quantized, precision="int8")
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    agree = 0
    images = _fresh_images()
    for a, b in zip(fp32.detect_many(images), int8.detect_many(images)):
        assert len(a) and len(b)
        same_class = a.class_ids[0] == b.class_ids[0]
        iou = box_iou(a.boxes[:1], b.boxes[:1])[0, 0]
        agree += bool(same_class and iou >= 0.9 and abs(a.scores[0] - b.scores[0]) < 0.1)
    assert agree >= 0.9 * len(images), f"top boxes agree on only {agree}/{len(images)} images"
    val = open_dataset(synth_dir).val
    m32, m8 = evaluate(fp32, val).map, evaluate(int8, val).map
    assert m32 > 0.5  # a real model, so the comparison means something
    assert abs(m32 - m8) <= 0.03, (m32, m8)  # 16 images: one box is 1/16 of the recall


def test_quantize_writes_a_record_and_loading_never_recalibrates(quantized, monkeypatch):
    rec = json.load(open(os.path.join(quantized, prec.INT8_RECORD)))
    assert rec["calibration"]["images"] == 8 and rec["calibration"]["split"] == "train"
    assert rec["source_params_sha1"] == prec.params_digest(quantized, json.load(open(os.path.join(quantized, "meta.json"))))
    assert set(rec["evaluation"]["forward_ms_batch1"]) == {"fp32", "int8"}
    assert rec["recommended"] == prec.recommend(rec["evaluation"])
    first = Detector.load(quantized, precision="int8").detect_many(_fresh_images(3))

    def refuse(*a, **k):
        raise AssertionError("loading an INT8 model must not quantize or calibrate again")

    import mxnet.contrib.quantization as q
    monkeypatch.setattr(q, "quantize_net_v2", refuse)
    monkeypatch.setattr(q, "quantize_graph", refuse)
    monkeypatch.setattr(quant, "build_int8", refuse)
    again = Detector.load(quantized, precision="int8").detect_many(_fresh_images(3))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.boxes, b.boxes)


def test_recommendation_needs_speed_and_accuracy():
    fast = {"forward_ms_batch1": {"fp32": 20.0, "int8": 10.0}}
    assert prec.recommend({**fast, "map_fp32": 0.90, "map_int8": 0.895}) == "int8"
    assert prec.recommend({**fast, "map_fp32": 0.90, "map_int8": 0.88}) == "fp32"     # lost > 0.01
    assert prec.recommend({"forward_ms_batch1": {"fp32": 9.0, "int8": 10.0},
                           "map_fp32": 0.9, "map_int8": 0.9}) == "fp32"                  # not faster
    assert prec.recommend(fast) == "fp32"                                               # never evaluated


def test_the_default_follows_the_record_and_a_retrained_model_makes_int8_stale(quantized, tmp_path):
    stale = str(tmp_path / "retrained")
    shutil.copytree(quantized, stale)
    rec = json.load(open(os.path.join(stale, prec.INT8_RECORD)))
    assert prec.default_precision(stale) == rec["recommended"]
    assert Detector.load(stale).precision == rec["recommended"]
    net, _ = load_model(stale)
    for p in net.collect_params().values():
        p.set_data(p.data() * 1.01)
    net.save_parameters(os.path.join(stale, PARAMS_FILE))
    with pytest.raises(ModelError, match="retrained.*quantize"):
        Detector.load(stale, precision="int8")
    assert prec.default_precision(stale) == "fp32"
    assert Detector.load(stale).precision == "fp32"


def test_a_model_never_quantized_says_how(tmp_path):
    if not os.path.isfile(os.path.join(SHIPPED, PARAMS_FILE)):
        pytest.skip("the shipped model is not in this checkout")
    path = str(tmp_path / "plain")
    shutil.copytree(SHIPPED, path, ignore=shutil.ignore_patterns("int8*"))
    with pytest.raises(ModelError, match="python -m ssd quantize --model"):
        Detector.load(path, precision="int8")
    with pytest.raises(SSDError, match="not one of"):
        Detector.load(path, precision="int4")
    assert Detector.load(path).precision == "fp32"


def _tiny_and_zoo(root):
    """Two random-weight folders: a small TinySSD and a GluonCV SSD (in-graph NMS) at 128 px."""
    from ssd.data.preprocess import MEAN, STD
    from ssd.models.gluoncv.recipe import new_zoo_model
    from ssd.models.tiny import TinySSD
    from ssd.store import save_model

    net = TinySSD(2, 64)
    net.initialize(init=mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 64, 64)))
    anchors = net.anchor_config.to_dict()
    anchors.update(per_scale=net.anchor_config.counts(), total=net.anchor_config.total())
    tiny = os.path.join(root, "tiny")
    save_model(tiny, net, {"arch": "tiny", "classes": ["cat", "dog"], "input_size": 64, "anchors": anchors,
                           "normalize": {"mean": list(MEAN), "std": list(STD)}})
    znet, meta = new_zoo_model("ssd_512_mobilenet1.0", ["cat", "dog"], input_size=128)
    zoo = os.path.join(root, "zoo")
    save_model(zoo, znet, meta)
    return tiny, zoo


def test_fused_fp32_and_nms_out_of_the_graph_change_no_result(tmp_path):
    images = [Image.fromarray(render_example(seed=5, index=i, split="val")[0]) for i in range(3)]
    for path in _tiny_and_zoo(str(tmp_path)):
        net, meta = load_model(path)
        plain = Detector(net, meta)                        # the live network (GluonCV: NMS in the graph)
        fused = Detector.load(path, precision="fp32")      # oneDNN-fused, NMS after the graph
        assert "fp32" in fused.precision_note
        for batch in (images[:1], images, images[:2]):     # batch sizes change between calls
            for a, b in zip(plain.detect_many(batch, floor=0.05), fused.detect_many(batch, floor=0.05)):
                assert len(a) == len(b) and len(a) > 0
                np.testing.assert_array_equal(a.class_ids, b.class_ids)
                np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-5)
                np.testing.assert_allclose(a.boxes, b.boxes, rtol=1e-4, atol=1e-2)


def test_cli_quantize_then_detect_and_eval_at_each_precision(tmp_path, synth_dir, capsys):
    tiny, _ = _tiny_and_zoo(str(tmp_path))
    img = str(tmp_path / "x.jpg")
    Image.fromarray(render_example(seed=1, index=0, split="val")[0]).save(img)
    assert main(["detect", "--model", tiny, "--precision", "int8", img]) == 2
    assert "python -m ssd quantize" in capsys.readouterr().err
    assert main(["quantize", "--model", tiny, "--data", synth_dir, "--images", "4", "--eval-images", "4"]) == 0
    out = capsys.readouterr().out
    assert "default precision for this model:" in out and "fp32" in out and "int8" in out
    assert os.path.isfile(os.path.join(tiny, prec.INT8_SYMBOL))
    assert json.load(open(os.path.join(tiny, prec.INT8_RECORD)))["calibration"]["images"] == 4
    for p in ("fp32", "int8", "auto"):
        assert main(["detect", "--model", tiny, "--precision", p, img]) == 0
        assert main(["eval", "--model", tiny, "--data", synth_dir, "--limit", "4", "--precision", p]) == 0
        assert "mAP" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["detect", "--model", tiny, "--precision", "int4", img])


def test_quantize_without_a_dataset_is_one_clear_error(tmp_path, capsys):
    tiny, _ = _tiny_and_zoo(str(tmp_path))
    assert main(["quantize", "--model", tiny]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["quantize", "--model", tiny, "--data", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


NAIVE_THREADS = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
from ssd.base.engine import configure
print(configure("inference")["engine"])
import numpy as np
from PIL import Image
from ssd.inference.detector import Detector
from ssd.data.synthetic import render_example
dets = [Detector.load(sys.argv[2]), Detector.load(sys.argv[2], precision="fp32")]
assert dets[0]._lock is dets[1]._lock, "naive engine: every Detector must share one lock"
imgs = [Image.fromarray(render_example(seed=4, index=i, split="val")[0]) for i in range(4)]
expected = [dets[0].detect(im).scores[:5] for im in imgs]
errors, results = [], []
def worker(k):
    try:
        for _ in range(4):
            results.append((k % 4, dets[k % 2].detect(imgs[k % 4]).scores[:5]))
    except Exception as err:
        errors.append(err)
threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
[t.start() for t in threads]; [t.join() for t in threads]
assert not errors, errors
for k, s in results:
    np.testing.assert_allclose(s, expected[k], rtol=1e-5)
print("ok", len(results))
"""


def test_naive_engine_detectors_are_safe_from_several_threads(tmp_path):
    tiny, _ = _tiny_and_zoo(str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "MXNET_ENGINE_TYPE"}
    res = subprocess.run([sys.executable, "-c", NAIVE_THREADS, REPO, tiny], capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["NaiveEngine", "ok", "24"]


def test_engine_choice_per_command():
    from ssd.base import engine

    assert engine.ENGINE_FOR_KIND[engine.kind_of_command("detect")] == engine.NAIVE
    assert engine.ENGINE_FOR_KIND[engine.kind_of_command("train")] == engine.THREADED
    assert engine.ENGINE_FOR_KIND["app"] == engine.THREADED
    rep = engine.configure("inference")   # MXNet is loaded in this process: nothing may change
    assert "already imported" in rep["note"] and rep["kind"] == "inference"


WAIT_POLICY = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from ssd.base.engine import configure
rep = configure(sys.argv[2])
import mxnet  # noqa: F401  (OpenMP loads here and reads the policy)
print(os.environ.get("OMP_WAIT_POLICY", "-"), rep["omp_wait"])
"""


@pytest.mark.parametrize("kind, preset, expected", [("inference", None, "PASSIVE PASSIVE"),
                                                    ("training", None, "- OpenMP's default"),
                                                    ("inference", "ACTIVE", "ACTIVE ACTIVE")])
def test_inference_lets_openmp_threads_sleep_unless_the_user_chose(kind, preset, expected):
    """Inference processes share their cores with decode threads: OpenMP must not spin there;
    training keeps OpenMP's default, and a policy the user set is never replaced."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "MXNET_ENGINE_TYPE")}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    res = subprocess.run([sys.executable, "-c", WAIT_POLICY, REPO, kind], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == expected


def test_detect_page_offers_int8_once_quantized_and_runs_it(quantized, tmp_path, monkeypatch, data_root):
    from streamlit.testing.v1 import AppTest

    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(quantized, root / "quantized")
    shutil.copytree(quantized, root / "plain", ignore=shutil.ignore_patterns("int8*", "*-int8.onnx", "onnx-int8.json"))
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = AppTest.from_file(os.path.join(REPO, "app.py"), default_timeout=120).run()
    at = at.switch_page("app_pages/detect.py").run()
    at.selectbox(key="detect_model").set_value(str(root / "plain")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="detect_precision").options == ["auto", "fp32"]
    at.selectbox(key="detect_model").set_value(str(root / "quantized")).run()
    assert at.selectbox(key="detect_precision").options == ["auto", "fp32", "int8"]
    seen = {prec.default_precision(str(root / "quantized"))}   # what "auto" just ran
    for p in ("fp32", "int8"):
        at.selectbox(key="detect_precision").set_value(p).run()
        assert not at.exception, [e.value for e in at.exception]
        # engine · precision · device on the page, the full "Running: …" line in its help
        assert any(f" · {p.upper()} · " in c.value and f", {p}, " in c.proto.help for c in at.caption)
        # results are cached per precision: a precision not run yet goes through the network
        assert at.session_state["detect_stats"]["network_images"] == (0 if p in seen else 6)
        assert at.session_state["detect_stats"]["shown"] > 0
        seen.add(p)


def test_train_with_quantize_leaves_an_int8_graph_and_the_app_job_passes_the_flag(tmp_path, synth_dir, capsys):
    from ssd.jobs import config_to_argv
    from ssd.training.config import TrainConfig

    out = str(tmp_path / "trained")
    argv = ["train", "--data", synth_dir, "--out", out, "--epochs", "1", "--batch-size", "8", "--input-size", "64",
            "--limit-train", "16", "--limit-val", "4", "--device", "cpu", "--quantize"]
    assert main(argv) == 0
    assert "INT8 graph written" in capsys.readouterr().out
    assert prec.int8_status(out)[0]
    assert Detector.load(out, precision="int8").detect(_fresh_images(1)[0]).image_size == (256, 256)
    assert "--quantize" in config_to_argv(TrainConfig(data=synth_dir, out=out, quantize=True))
    assert "--quantize" not in config_to_argv(TrainConfig(data=synth_dir, out=out))


def test_a_zoo_ssd_quantizes_with_nms_after_the_graph(tmp_path, synth_dir):
    _, zoo = _tiny_and_zoo(str(tmp_path))
    rec = quant.quantize_model(zoo, data=synth_dir, images=4, eval_images=0)
    assert rec["recommended"] == "fp32"          # never evaluated: no evidence, stay exact
    int8 = Detector.load(zoo, precision="int8")
    fp32 = Detector.load(zoo, precision="fp32")
    img = _fresh_images(1)[0]
    a, b = fp32.detect(img, floor=0.0), int8.detect(img, floor=0.0)
    assert len(b) > 0 and b.boxes.shape[1] == 4 and (b.boxes[:, 2] >= b.boxes[:, 0]).all()
    assert len(b) <= 100 and len(a) <= 100       # box_nms after the graph keeps GluonCV's post-NMS cap
    sym = open(os.path.join(zoo, prec.INT8_SYMBOL)).read()
    assert "box_nms" not in sym                  # NMS stayed out of the quantized graph
