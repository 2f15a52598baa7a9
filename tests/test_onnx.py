"""ONNX export and the ONNX Runtime engine: the graph converts and checks for every registered
architecture, runs in plain onnxruntime, gives the MXNet Detector's detections; the numpy decoders
equal MXNet's operators; the engine choice falls back with a reason; INT8; camera-trap runs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from ssd.base.errors import ModelError, SSDError
from ssd.cli.main import main
from ssd.data.synthetic import render_example
from ssd.inference import engines, onnx_engine
from ssd.inference.engines import load_detector
from ssd.inference.onnx_export import ONNX_RECORD, convert, ensure_onnx, onnx_status
from ssd.models import array_decode
from ssd.models.registry import architectures, recipe_for
from ssd.store import ONNX_FILE, PARAMS_FILE, load_model, read_meta

from exactness import nearly_same_detections

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(REPO, "models", "tiny-pikachu")


def _fixed_images(n: int = 12, size: int = 256) -> np.ndarray:
    return np.stack([render_example(seed=2024, index=i, split="val", size=size)[0] for i in range(n)])


def assert_same_detections(ref, got, box_tol: float = 1e-3, score_tol: float = 1e-4) -> int:
    """Every detection of ``ref`` has one in ``got`` of the same class, box within ``box_tol`` and score
    within ``score_tol``, and the counts are equal (order may differ between equal scores)."""
    total = 0
    for (i1, s1, b1), (i2, s2, b2) in zip(ref, got):
        assert len(i1) == len(i2), f"{len(i1)} detections against {len(i2)}"
        for c, s, b in zip(i1, s1, b1):
            match = (i2 == c) & (np.abs(s2 - s) <= score_tol) & (np.abs(b2 - b).max(axis=1) <= box_tol)
            assert match.any(), f"no match for class {c} score {s:.5f} box {b}"
        total += len(i1)
    return total


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir) -> str:
    """A copy of the session's trained TinySSD (its ONNX cache lands in the copy)."""
    path = str(tmp_path_factory.mktemp("onnx") / "tiny")
    shutil.copytree(tiny_model_dir, path)
    return path


# ---------------------------------------------------------------------------------------------
# numpy decoders = MXNet's operators
# ---------------------------------------------------------------------------------------------

def test_numpy_multibox_detection_equals_mxnet_on_thousands_of_candidates():
    from ssd.models.multibox import decode_outputs

    rng = np.random.default_rng(0)
    for classes in (1, 3):
        n = 3000
        c = rng.uniform(0, 1, (n, 2))
        anchors = np.concatenate([c - 0.05, c + 0.05 + rng.uniform(0, 0.1, (n, 2))], 1)[None].astype(np.float32)
        cls = rng.normal(0, 2, (2, n, classes + 1)).astype(np.float32)
        box = rng.normal(0, 1, (2, n * 4)).astype(np.float32)
        for floor, nms in ((0.01, 0.45), (0.3, 0.5), (0.01, 0.0)):
            ref = decode_outputs(mx.nd.array(anchors), mx.nd.array(cls), mx.nd.array(box), floor, nms)
            got = array_decode.multibox_detection(anchors, cls, box, floor, nms)
            assert assert_same_detections(ref, got, 1e-5, 1e-6) > 100


def test_numpy_box_nms_equals_mxnet_box_nms():
    from ssd.models.gluoncv.decode import decode_exported

    rng = np.random.default_rng(1)
    m = 4000
    ids = rng.integers(-1, 3, (2, m, 1)).astype(np.float32)
    scores = rng.uniform(0, 1, (2, m, 1)).astype(np.float32)
    corner = rng.uniform(0, 300, (2, m, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(1, 60, (2, m, 2))], -1).astype(np.float32)
    x = mx.nd.zeros((2, 3, 300, 300))
    for floor, nms in ((0.01, 0.45), (0.3, 0.6), (0.01, 0.0)):
        ref = decode_exported(lambda _: [mx.nd.array(a) for a in (ids, scores, boxes)], x, nms, floor)
        got = array_decode.box_nms_detection(ids, scores, boxes, 300, 300, floor, nms)
        assert assert_same_detections(ref, got, 1e-5, 1e-6) > 50


# ---------------------------------------------------------------------------------------------
# export of every registered architecture
# ---------------------------------------------------------------------------------------------

def _random_net(arch: str):
    """A random-weight network of ``arch`` at a small input its recipe accepts, and its meta."""
    recipe = recipe_for(arch)
    spec = getattr(recipe, "spec", None)
    size = max(int(spec.min_input), 128) if spec is not None else recipe.native_size
    meta = {"arch": arch, "classes": ["a", "b", "c"], "input_size": size,
            "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
    if recipe.family == "gluoncv":
        from ssd.models.gluoncv.recipe import new_zoo_model

        return new_zoo_model(arch, meta["classes"], input_size=size)
    if recipe.family == "torchvision":   # SSDlite: its meta.json carries its post-processing numbers
        from ssd.models.ssdlite.recipe import ssdlite_meta
        from ssd.models.ssdlite.spec import ssdlite_spec

        meta.update(ssdlite_meta(ssdlite_spec(len(meta["classes"]), size), meta["classes"]))
    net = recipe.build(meta)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, size, size)))
    return net, meta


@pytest.mark.parametrize("arch", architectures())
def test_every_architecture_exports_and_runs_in_onnxruntime(arch, tmp_path):
    """The graph converts, passes onnx.checker, has no MultiBoxPrior, and its raw outputs equal the
    MXNet graph's (random weights: compared before NMS, where ties would decide)."""
    import onnx
    import onnxruntime as ort

    net, meta = _random_net(arch)
    dest = str(tmp_path / "m.onnx")
    graph = convert(net, meta, dest)
    model = onnx.load(dest)
    onnx.checker.check_model(model)
    assert graph["opset"] >= 13 and graph["array_decode"] in array_decode.ARRAY_DECODERS
    assert [o.name for o in model.graph.output] == graph["outputs"]
    assert not {i.name for i in model.graph.input} & {i.name for i in model.graph.initializer}
    size = meta["input_size"]
    x = np.random.default_rng(0).normal(0, 1, (2, 3, size, size)).astype(np.float32)
    session = ort.InferenceSession(dest, providers=["CPUExecutionProvider"])
    outs = session.run(None, {"data": x})
    ref = net(mx.nd.array(x))
    for a, b in zip(ref, outs):
        a = a.asnumpy()   # random weights send some boxes to 1e4 px: float32 error scales with them
        tol = 1e-4 * np.abs(a) + 2e-5 * np.abs(a).max() + 1e-4
        assert b.shape[1:] == a.shape[1:] and (np.abs(a - b) <= tol).all(), (np.abs(a - b) / tol).max()
    decoded = array_decode.array_decoder(graph["array_decode"])(outs, meta, 0.01, 0.45)
    assert len(decoded) == 2 and all(len(ids) == len(s) == len(b) for ids, s, b in decoded)


def _weight_range(path):
    """The smallest and largest integer weight of an INT8 graph's convolutions."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = [inits[n.input[3]] for n in graph.node if n.op_type == "QLinearConv"]
    return int(min(w.min() for w in weights)), int(max(w.max() for w in weights))


def test_the_shipped_int8_graph_multiplies_exactly_on_cpus_without_vnni(shipped_models_root):
    """Weights in 7 bits: a CPU without VNNI (AVX2 only) adds two uint8 × int8 products in 16 bits
    with saturation, which full 8-bit weights can overflow (2 × 255 × 127 > 32767); the accuracy the
    shipped record states, measured on a VNNI machine, then holds on those CPUs too."""
    low, high = _weight_range(os.path.join(shipped_models_root, "tiny-pikachu", "model-int8.onnx"))
    assert -64 <= low and high <= 64 and 2 * 255 * max(-low, high) < 32768
    record = json.load(open(os.path.join(shipped_models_root, "tiny-pikachu", "onnx-int8.json")))
    assert "reduce_range" in record["quantization"] and record["evaluation"]["cpu"]


@pytest.mark.parametrize("arch", architectures())
def test_every_architecture_gets_an_onnx_int8_graph(arch, tmp_path):
    """ONNX Runtime's static quantization takes every architecture's graph (GluonCV's decoders were refused
    with "unknown initializers/tensors" until they were kept in float): the convolutions become integer
    ones, the decoders stay float, and the INT8 graph gives the fp32 graph's outputs' shapes."""
    import onnx
    import onnxruntime as ort

    from ssd.inference.onnx_quantize import build_onnx_int8, decoder_nodes

    net, meta = _random_net(arch)
    src, dest = str(tmp_path / "m.onnx"), str(tmp_path / "m-int8.onnx")
    convert(net, meta, src)
    size = meta["input_size"]
    x = np.random.default_rng(1).normal(0, 1, (3, 3, size, size)).astype(np.float32)
    build_onnx_int8(src, dest, x[:2], "data")
    ops = [n.op_type for n in onnx.load(dest).graph.node]
    assert ops.count("QLinearConv") >= 5, sorted(set(ops))
    assert max(map(abs, _weight_range(dest))) <= 64          # 7-bit weights: see the shipped graph's test
    assert recipe_for(arch).family != "gluoncv" or decoder_nodes(src)
    run = {p: ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, {"data": x[2:]}) for p in (src, dest)}
    assert [o.shape for o in run[dest]] == [o.shape for o in run[src]]
    assert all(np.isfinite(o).all() for o in run[dest])


def test_a_converted_torchvision_detector_keeps_its_per_class_nms_on_onnxruntime(tmp_path):
    """A detector converted from torchvision (random weights) exports with the recipe's per-class
    scheme, and the numpy decoder equals the MXNet Detector's on the same graph outputs."""
    import onnxruntime as ort

    from ssd.models.gluoncv.from_torchvision import new_converted_net

    net, meta = new_converted_net()
    graph = convert(net, meta, str(tmp_path / "tv.onnx"))
    assert graph["array_decode"] == "torchvision" and "torchvision" in graph["decode"]   # the record says so too
    size = meta["input_size"]
    x = np.random.default_rng(3).normal(0, 1, (1, 3, size, size)).astype(np.float32)
    outs = ort.InferenceSession(str(tmp_path / "tv.onnx"), providers=["CPUExecutionProvider"]).run(None, {"data": x})
    decode = recipe_for(meta["arch"]).decoder({**meta, "format": "symbol"})
    for nms, floor in ((0.45, 0.01), (0.5, 0.005)):
        ref = decode(lambda _: [mx.nd.array(o) for o in outs], mx.nd.array(x), nms, floor)
        got = array_decode.array_decoder("torchvision")(outs, meta, floor, nms)
        assert assert_same_detections(ref, got, 1e-5, 1e-6) > 0


def test_a_recipe_without_a_numpy_decoder_is_refused_clearly(tiny, tmp_path, monkeypatch):
    recipe = recipe_for("tiny")
    real = recipe.export_outputs
    monkeypatch.setattr(recipe, "export_outputs", lambda net: {k: v for k, v in real(net).items()
                                                               if k != "array_decode"})
    net, meta = load_model(tiny)
    with pytest.raises(ModelError, match="numpy decoder"):
        convert(net, meta, str(tmp_path / "x.onnx"))


# ---------------------------------------------------------------------------------------------
# the engine on a trained model
# ---------------------------------------------------------------------------------------------

def test_onnxruntime_detections_equal_mxnet_on_a_fixed_image_set(tiny):
    """The graph's raw outputs equal MXNet's; on the same raw outputs the two decoders agree exactly.
    End to end, a candidate whose overlap sits on the NMS threshold may flip with the last float bit
    (a barely trained model at floor 0.005 has hundreds), so there all but 1% must match."""
    mxd = load_detector(tiny, "mxnet", "fp32")
    ortd = load_detector(tiny, "onnxruntime", "fp32")
    assert (mxd.engine, ortd.engine) == ("mxnet", "onnxruntime")
    assert os.path.isfile(os.path.join(tiny, ONNX_FILE)) and os.path.isfile(os.path.join(tiny, ONNX_RECORD))
    images = _fixed_images()
    raw_mx, raw_ort = mxd.forward_raw(images), ortd.forward_raw(images)
    assert len(raw_mx) == len(raw_ort)
    for a, b in zip(raw_mx, raw_ort):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4 * max(1.0, float(np.abs(a).max()))
    for nms, floor in ((0.45, 0.005), (0.3, 0.2)):
        got = ortd.predict_arrays(images, nms, floor)
        same_input = mxd._decode(lambda _: [mx.nd.array(o) for o in raw_ort], None, nms, floor)
        assert assert_same_detections(same_input, got, 1e-5, 1e-6) > 0
        ref = mxd.predict_arrays(images, nms, floor)
        assert nearly_same_detections(ref, got)
    info = ortd.engine_info()
    assert info["engine"] == "onnxruntime" and info["device"].startswith("CPU") and info["precision"] == "fp32"
    assert "onnxruntime" in ortd.describe() and "CPU" in ortd.describe()


def test_a_conversion_killed_midway_leaves_nothing_in_the_model_folder(tmp_path):
    """The first ``--engine onnxruntime`` run converts the model; killed while MXNet's export is
    staged (seconds, megabytes: hundreds for an SSD300), it used to leave a ``.onnx-*`` folder in
    the model folder for ever, one per kill."""
    path = str(tmp_path / "m")
    shutil.copytree(SHIPPED, path)
    before = set(os.listdir(path))
    code = ("import os; from ssd.inference import onnx_export as e\n"
            "e._to_onnx = lambda *a, **k: os._exit(137)\n"       # the kill, once MXNet's files are staged
            f"e.ensure_onnx({path!r})")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 137, r.stderr
    assert set(os.listdir(path)) == before, sorted(set(os.listdir(path)) - before)


def test_the_cache_is_made_once_and_again_when_the_weights_change(tmp_path, tiny):
    path = str(tmp_path / "m")
    shutil.copytree(tiny, path)
    first = ensure_onnx(path)
    stamp = os.stat(os.path.join(path, ONNX_FILE)).st_mtime_ns
    assert ensure_onnx(path)["created"] == first["created"]
    assert os.stat(os.path.join(path, ONNX_FILE)).st_mtime_ns == stamp
    net, meta = load_model(path)
    net.collect_params()[sorted(net.collect_params().keys())[0]].data()[:] += 0.5
    net.save_parameters(os.path.join(path, PARAMS_FILE))
    assert onnx_status(path, read_meta(path))[0] is False
    ensure_onnx(path)
    assert onnx_status(path, read_meta(path))[0] is True


def test_missing_or_broken_onnxruntime_says_why_and_auto_falls_back(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)           # "not installed"
    problem = onnx_engine.onnxruntime_problem()
    assert problem and "not installed" in problem and "requirements.txt" in problem
    with pytest.raises(SSDError, match="onnxruntime engine is not available"):
        load_detector(tiny, "onnxruntime")
    det = load_detector(tiny, "auto", "fp32")
    assert det.engine == "mxnet" and "onnxruntime is not installed" in det.describe()

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("libonnxruntime.so: cannot open shared object file")
    monkeypatch.setitem(sys.modules, "onnxruntime", Broken())
    assert "does not work" in onnx_engine.onnxruntime_problem() or "incomplete" in onnx_engine.onnxruntime_problem()
    assert load_detector(tiny, "auto", "fp32").engine == "mxnet"


def test_a_model_folder_that_cannot_take_the_graph_falls_back_to_mxnet(tiny, tmp_path, monkeypatch):
    from ssd.inference import onnx_export

    path = str(tmp_path / "ro")
    shutil.copytree(tiny, path, ignore=shutil.ignore_patterns("*.onnx", "onnx*.json"))

    def refuse(dest, obj):
        raise PermissionError(13, "Permission denied", dest)
    monkeypatch.setattr(onnx_export, "atomic_write_json", refuse)
    with pytest.raises(ModelError, match="cannot be written there"):
        load_detector(path, "onnxruntime", "fp32")
    det = load_detector(path, "auto", "fp32")
    assert det.engine == "mxnet" and "cannot be written there" in det.engine_note


def test_auto_prefers_onnxruntime_and_int8_only_where_the_evaluation_allows(tiny):
    order, why = engines.candidates(tiny, None)
    assert order[0] == ("onnxruntime", "fp32") and ("mxnet", "fp32") in order and not why
    assert all(p != "int8" for _, p in order)          # this model was never quantized
    assert engines.candidates(tiny, "int8")[0][0] == ("onnxruntime", "int8")
    assert load_detector(tiny, "auto").engine == "onnxruntime"


# ---------------------------------------------------------------------------------------------
# the export command and plain onnxruntime
# ---------------------------------------------------------------------------------------------

def test_export_command_writes_a_folder_that_plain_onnxruntime_runs(tiny, tmp_path, capsys):
    out = tmp_path / "tiny-onnx"
    assert main(["export", "--model", tiny, "--format", "onnx", "--out", str(out)]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == "onnx" and meta["onnx"]["opset"] >= 13 and (out / ONNX_FILE).is_file()
    assert "onnx.checker" in capsys.readouterr().out
    script = ("import sys, numpy as np, onnxruntime as ort\n"
              "s = ort.InferenceSession(sys.argv[1])\n"
              "o = s.run(None, {'data': np.zeros((2, 3, 256, 256), np.float32)})\n"
              "assert 'ssd' not in sys.modules and 'mxnet' not in sys.modules\n"
              "print([x.shape for x in o])\n")
    r = subprocess.run([sys.executable, "-c", script, str(out / ONNX_FILE)], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "(2, 5444, 2)" in r.stdout or "(2," in r.stdout
    with pytest.raises(ModelError, match="--engine onnxruntime"):
        load_model(str(out))
    det = load_detector(str(out), "auto")
    ref = load_detector(tiny, "mxnet", "fp32")
    assert det.engine == "onnxruntime"
    a, b = ref.predict_arrays(_fixed_images(4)), det.predict_arrays(_fixed_images(4))
    assert nearly_same_detections(a, b)


def test_detect_with_onnxruntime_does_not_import_mxnet(tiny, tmp_path):
    ensure_onnx(tiny)
    Image.fromarray(_fixed_images(1)[0]).save(tmp_path / "a.jpg")
    script = ("import sys; from ssd.cli.main import main\n"
              f"rc = main(['detect', '--model', {tiny!r}, '--engine', 'onnxruntime', {str(tmp_path / 'a.jpg')!r},"
              f" '--json', {str(tmp_path / 'r.json')!r}, '--quiet'])\n"
              "assert rc == 0 and 'mxnet' not in sys.modules, sorted(m for m in sys.modules if 'mxnet' in m)[:3]\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "engine: onnxruntime" in r.stderr
    info = json.loads((tmp_path / "r.json").read_text())["info"]["ssd_batch"]["inference"]
    assert info["engine"] == "onnxruntime" and info["device"].startswith("CPU")


# ---------------------------------------------------------------------------------------------
# camera-trap runs: the same results, and no silent switch on resume
# ---------------------------------------------------------------------------------------------

def test_a_folder_run_gives_the_same_results_on_either_engine(tiny, tmp_path):
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.settings import RunSettings

    folder = tmp_path / "season"
    folder.mkdir()
    for i, im in enumerate(_fixed_images(10)):
        Image.fromarray(im).resize((400, 300)).save(folder / f"{i:03d}.jpg")
    docs = {}
    for engine in ("mxnet", "onnxruntime"):
        out = tmp_path / f"{engine}.json"
        run_batch(RunSettings(tiny, [str(folder)], out_json=str(out), engine=engine, precision="fp32"), stream=None)
        docs[engine] = json.loads(out.read_text())
    assert docs["onnxruntime"]["info"]["ssd_batch"]["inference"]["engine"] == "onnxruntime"
    for a, b in zip(docs["mxnet"]["images"], docs["onnxruntime"]["images"]):
        assert a["file"] == b["file"] and len(a["detections"]) == len(b["detections"])
        for d in a["detections"]:
            assert any(e["category"] == d["category"] and abs(e["conf"] - d["conf"]) <= 0.0011
                       and max(abs(p - q) for p, q in zip(e["bbox"], d["bbox"])) <= 2e-4 for e in b["detections"])


class _EngineFake:
    """A detector without a network that says which engine it is."""

    input_size, classes = 32, ["animal"]

    def __init__(self, engine, stop=None, after=0, precision="fp32"):
        self.engine, self.stop, self.after, self.images, self.precision = engine, stop, after, 0, precision

    def engine_info(self):
        return {"engine": self.engine, "precision": self.precision}

    def describe(self):
        return self.engine

    def predict_arrays(self, images, nms=0.45, floor=0.005):
        self.images += len(images)
        if self.stop is not None and self.images >= self.after:
            self.stop.set()
        return [(np.array([0]), np.array([0.9], np.float32), np.array([[0.1, 0.1, 0.5, 0.5]], np.float32))
                for _ in images]


def test_resume_refuses_an_engine_change(tmp_path):
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.megadetector import ResultsError
    from ssd.camtrap.settings import RunSettings

    folder = tmp_path / "cards"
    folder.mkdir()
    for i in range(12):
        Image.new("RGB", (20, 20), (i * 20, 0, 0)).save(folder / f"{i:02d}.jpg")
    out = tmp_path / "r.json"
    opts = RunSettings("models/x", [str(folder)], out_json=str(out), batch_size=2, workers=1, checkpoint_every=2)
    stop = threading.Event()
    assert run_batch(opts, _EngineFake("onnxruntime", stop, 4), stop=stop, stream=None).stopped
    resumed = RunSettings(**{**opts.to_dict(), "inputs": (str(folder),), "shard": None, "resume": True})
    with pytest.raises(ResultsError, match=r"engine: 'onnxruntime' then, 'mxnet' now.*--engine onnxruntime"):
        run_batch(resumed, _EngineFake("mxnet"), stream=None)
    done = run_batch(resumed, _EngineFake("onnxruntime"), stream=None)
    assert not done.stopped and done.processed == 12


def test_resume_refuses_a_precision_change(tmp_path):
    """INT8 and fp32 scores differ by more than the engines' tolerance: a run begun in INT8 and
    resumed in fp32 would mix them under one ``precision`` in the results."""
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.megadetector import ResultsError
    from ssd.camtrap.settings import RunSettings

    folder = tmp_path / "cards"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (20, 20), (i * 20, 0, 0)).save(folder / f"{i:02d}.jpg")
    opts = RunSettings("models/x", [str(folder)], out_json=str(tmp_path / "r.json"), batch_size=2, workers=1,
                       checkpoint_every=2)
    stop = threading.Event()
    assert run_batch(opts, _EngineFake("onnxruntime", stop, 4, "int8"), stop=stop, stream=None).stopped
    resumed = RunSettings(**{**opts.to_dict(), "inputs": (str(folder),), "shard": None, "resume": True})
    with pytest.raises(ResultsError, match=r"precision: 'int8' then, 'fp32' now.*--precision int8"):
        run_batch(resumed, _EngineFake("onnxruntime", precision="fp32"), stream=None)
    done = run_batch(resumed, _EngineFake("onnxruntime", precision="int8"), stream=None)
    assert done.document["info"]["ssd_batch"]["inference"]["precision"] == "int8" and done.processed == 8


def _shard_doc(path, files, **batch):
    inference = {"engine": batch.pop("engine", "onnxruntime"), "precision": batch.pop("precision", "fp32"),
                 "device": batch.pop("device", "CPU")}
    doc = {"info": {"format_version": "1.5", "detector": "ssd-studio:m",
                    "ssd_batch": {"floor": 0.005, "nms": 0.45, "episode_gap": 120.0, **batch,
                                  "inference": inference}},
           "detection_categories": {"1": "animal"},
           "images": [{"file": f, "detections": [], "failure": None} for f in files]}
    path.write_text(json.dumps(doc))
    return str(path)


def test_merge_refuses_shards_whose_scores_were_made_differently(tmp_path):
    """The merged file names one engine and precision, and one floor and NMS, for every image: shards
    run on another engine or precision, or with another floor or NMS, are refused by name; shards
    on different devices merge (their scores agree) and the devices are all named."""
    from ssd.camtrap.megadetector import ResultsError
    from ssd.camtrap.merging import merge_results

    a = _shard_doc(tmp_path / "a.json", ["a.jpg"], engine="onnxruntime", precision="int8")
    for i, (key, change) in enumerate([("engine", {"engine": "mxnet"}), ("precision", {"precision": "fp32"}),
                                       ("nms", {"nms": 0.6}), ("floor", {"floor": 0.1})]):
        b = _shard_doc(tmp_path / f"b{i}.json", ["b.jpg"], **{"precision": "int8", **change})
        with pytest.raises(ResultsError, match=f"{key} .*b{i}.json.*the same"):
            merge_results([a, b])
    b = _shard_doc(tmp_path / "gpu.json", ["b.jpg"], precision="int8", device="CUDA (NVIDIA H100)")
    merged = merge_results([a, b])
    assert merged["info"]["ssd_batch"]["inference"]["device"] == "CPU; CUDA (NVIDIA H100)"
    assert [im["file"] for im in merged["images"]] == ["a.jpg", "b.jpg"]


def test_previous_results_of_another_engine_or_precision_are_refused(tmp_path):
    """``--previous-results`` entries become this run's: made on another engine or precision they
    would be written under this run's ``inference``, so they are refused by name."""
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.megadetector import ResultsError
    from ssd.camtrap.settings import RunSettings

    folder = tmp_path / "cards"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 20, 0, 0)).save(folder / f"{i:02d}.jpg")
    old = json.loads(open(_shard_doc(tmp_path / "old.json", ["00.jpg"], engine="mxnet")).read())
    old["info"]["detector"], old["detection_categories"] = "ssd-studio:x", {"1": "animal"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    opts = RunSettings("models/x", [str(folder)], out_json=str(tmp_path / "r.json"),
                       previous_results=str(tmp_path / "old.json"))
    with pytest.raises(ResultsError, match=r"old.json' was made with engine 'mxnet', this run's is "
                                           r"'onnxruntime'.*--engine mxnet"):
        run_batch(opts, _EngineFake("onnxruntime"), stream=None)
    done = run_batch(opts, _EngineFake("mxnet"), stream=None)
    assert done.processed == 3 and not os.path.exists(tmp_path / "r.checkpoint.jsonl")


# ---------------------------------------------------------------------------------------------
# INT8
# ---------------------------------------------------------------------------------------------

def test_an_exported_onnx_folder_quantizes_as_its_int8_error_says(tmp_path, capsys):
    """``--precision int8`` on an ONNX folder says "make one with: python -m ssd quantize --model DIR";
    that command must then work (it failed on the MXNet weights such a folder does not have)."""
    out = str(tmp_path / "onnx")
    assert main(["export", "--model", SHIPPED, "--format", "onnx", "--out", out]) == 0
    with pytest.raises(ModelError, match=f"python -m ssd quantize --model {out}\\)"):
        load_detector(out, "onnxruntime", "int8")
    capsys.readouterr()
    assert main(["quantize", "--model", out, "--images", "4", "--eval-images", "8"]) == 0, capsys.readouterr().err
    assert load_detector(out, "onnxruntime", "int8").engine_info()["precision"] == "int8"


def test_quantize_makes_an_onnx_int8_graph_from_a_regenerated_synthetic_set(tmp_path):
    """The shipped model's training set is not on this machine: quantize draws its images again from
    the recorded seed; the ONNX INT8 graph agrees with fp32 and its record decides the default."""
    path = str(tmp_path / "q")
    shutil.copytree(SHIPPED, path)
    meta = read_meta(path)
    assert meta["dataset"]["synthetic"]["seed"] == 0
    meta["dataset"] = dict(meta["dataset"], path=str(tmp_path / "gone"))
    with open(os.path.join(path, "meta.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh)
    for name in ("model-int8.onnx", "onnx-int8.json"):
        if os.path.exists(os.path.join(path, name)):
            os.remove(os.path.join(path, name))
    assert main(["quantize", "--model", path, "--engine", "onnxruntime", "--images", "4",
                 "--eval-images", "8"]) == 0
    rec = json.load(open(os.path.join(path, "onnx-int8.json")))
    assert "regenerated from seed 0" in rec["calibration"]["dataset"] and rec["calibration"]["images"] == 4
    assert not os.path.exists(tmp_path / "gone")
    assert rec["recommended"] in ("fp32", "int8") and "map_int8" in rec["evaluation"]
    int8 = load_detector(path, "onnxruntime", "int8")
    fp32 = load_detector(path, "onnxruntime", "fp32")
    assert int8.precision == "int8" and "model-int8.onnx" in int8.describe()
    a, b = fp32.predict_arrays(_fixed_images(6)), int8.predict_arrays(_fixed_images(6))
    tops = [(x[0][0] == y[0][0]) and np.abs(x[2][0] - y[2][0]).max() < 0.05 for x, y in zip(a, b)]
    assert len(tops) == 6 and sum(tops) >= 5
    ev = rec["evaluation"]
    assert ev["map_fp32"] > 0.8 and ev["map_int8"] >= ev["map_fp32"] - 0.05
    rec["recommended"] = "int8"
    with open(os.path.join(path, "onnx-int8.json"), "w", encoding="utf-8") as fh:
        json.dump(rec, fh)
    assert engines.candidates(path, None)[0][0] == ("onnxruntime", "int8")
    assert load_detector(path, "auto").precision == "int8"
    rec["recommended"] = "fp32"
    with open(os.path.join(path, "onnx-int8.json"), "w", encoding="utf-8") as fh:
        json.dump(rec, fh)
    assert ("onnxruntime", "int8") not in engines.candidates(path, None)[0]


# ---------------------------------------------------------------------------------------------
# the app: the engine picker and what the pages say
# ---------------------------------------------------------------------------------------------

def test_detect_page_engine_picker_and_home_page_name_the_engine(app_env):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(os.path.join(REPO, "app.py"), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    home = " ".join(m.value for m in at.markdown)
    assert "**Detection**: onnxruntime" in home and "CPU" in home
    at = at.switch_page("app_pages/detect.py").run()
    # the short caption and its help (the full "Running: …" line)
    captions = lambda: " ".join(c.value + " " + c.proto.help for c in at.caption).replace("\\", "")  # noqa: E731
    assert "onnxruntime" in captions() and "auto" in captions()
    at.selectbox(key="detect_engine").set_value("mxnet").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "mxnet 1.9.1" in captions() and len(at.image) == 6
    at.selectbox(key="detect_engine").set_value("onnxruntime").run()
    assert "onnxruntime" in captions() and "asked for" in captions()
    at = at.switch_page("app_pages/camera_traps.py").run()
    at.selectbox(key="ct_engine").set_value("onnxruntime").run()
    assert not at.exception, [e.value for e in at.exception]


def test_auto_and_onnxruntime_share_one_session_of_one_graph(tiny):
    """The Detect page keeps a detector per engine choice: "auto" (which picks ONNX Runtime here) and
    "onnxruntime" held two sessions of the same graph, 14 MB each for the shipped model. One session
    serves both, each detector still saying why it runs; another file or a changed one is its own."""
    auto = load_detector(tiny, "auto", "fp32", worker=True)
    asked = load_detector(tiny, "onnxruntime", "fp32", worker=True)
    assert (auto.engine, asked.engine) == ("onnxruntime", "onnxruntime")
    assert auto is not asked and auto.net is asked.net
    assert auto.engine_note.startswith("auto:") and asked.engine_note == "asked for"
    x = _fixed_images(2, auto.input_size)
    assert_same_detections(auto.predict_arrays(x), asked.predict_arrays(x))
    os.utime(os.path.join(tiny, ONNX_FILE))                          # the file changed on disk: opened again
    assert load_detector(tiny, "onnxruntime", "fp32").net is not asked.net
