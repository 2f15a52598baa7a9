"""The Detect page's engine and precision pickers, and what the pages say about engine and device.

Each test uses its own copy of the tiny model in its own models folder, so the server's cached
detectors (shared by every AppTest of this process) start empty for it and can be counted."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT
from test_app import _detections, _png

APP = os.path.join(REPO_ROOT, "app.py")
UPLOAD = [("photo.png", _png(3, (640, 480)), "image/png")]


def _own_models(tmp_path, monkeypatch, model: str, *names: str) -> str:
    """A models folder of fresh copies of ``model`` (no ONNX graph yet); returns its first copy."""
    root = tmp_path / "models"
    root.mkdir(exist_ok=True)
    for name in names:
        shutil.copytree(model, root / name, ignore=shutil.ignore_patterns("*.onnx", "onnx*.json"))
    monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    return str(root / names[0])


def _detect_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    return at.switch_page("app_pages/detect.py").run()


def _run(at: AppTest) -> AppTest:
    at.session_state["detect_tab"] = "Table"       # the view with the detections table
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _engine_captions(at: AppTest):
    """The Detect page's engine caption: ``(short line, its help: the full "Running: …" line)``."""
    return [(c.value.replace("\\", ""), c.proto.help.replace("\\", "")) for c in at.caption
            if c.proto.help.startswith("Running")]


def _running(at: AppTest) -> str:
    """The Detect page's full "Running: …" line (its engine caption's help; Markdown escapes taken out)."""
    return " ".join(full for _, full in _engine_captions(at))


def _uploaded(at: AppTest):
    return [f.name for f in (at.file_uploader(key="detect_upload").value or [])]


def _sorted(rows):
    return rows.sort_values(["score", "xmin", "ymin"]).reset_index(drop=True)


@pytest.fixture
def loads(monkeypatch):
    """Every detector the server loads: ``(engine, precision, Detector)``."""
    from ssd.inference import engines

    seen, real = [], engines.load_detector

    def counting(path, engine="auto", precision=None, **kw):
        det = real(path, engine, precision, **kw)
        seen.append((engine, precision, det))
        return det
    monkeypatch.setattr(engines, "load_detector", counting)
    return seen


def test_engines_agree_load_once_and_the_slider_runs_no_network(app_env, tmp_path, monkeypatch, loads):
    _own_models(tmp_path, monkeypatch, app_env["model"], "engines")
    at = _detect_page()
    at.file_uploader(key="detect_upload").set_value(UPLOAD)
    at.slider(key="detect_threshold").set_value(0.01)
    tables = {}
    for engine in ("auto", "mxnet", "onnxruntime"):
        at.selectbox(key="detect_engine").set_value(engine)
        _run(at)
        tables[engine] = _sorted(_detections(at))
        assert f"Running: {'onnxruntime' if engine == 'auto' else engine}" in _running(at)
        assert "fp32" in _running(at) and "on CPU" in _running(at)
        # the line on the page is short and plain: engine · precision · device, no version or reasons
        [(short, _)] = _engine_captions(at)
        assert short.startswith("ONNX Runtime · FP32 · CPU (" if engine != "mxnet" else "MXNet · FP32 · CPU"), short
        assert len(short) <= 40 and "auto" not in short and "," not in short, short
    ref, got = tables["mxnet"], tables["onnxruntime"]
    assert len(ref) == len(got) > 0 and list(ref["class"]) == list(got["class"])
    assert np.abs(ref["score"].values - got["score"].values).max() <= 1e-4
    # the table rounds boxes to 0.1 px of a 640×480 image: 1e-3 of the side is 0.64 px
    assert np.abs(ref[["xmin", "xmax"]].values - got[["xmin", "xmax"]].values).max() <= 1e-3 * 640 + 0.05

    loaded, forwards = len(loads), sum(d.forward_calls for _, _, d in loads)
    for round_ in range(2):                       # every engine and precision, twice, with slider moves
        for engine in ("auto", "mxnet", "onnxruntime"):
            at.selectbox(key="detect_engine").set_value(engine)
            for precision in ("auto", "fp32"):
                at.selectbox(key="detect_precision").set_value(precision)
                at.slider(key="detect_threshold").set_value(0.2 + 0.1 * round_)
                _run(at)
                assert at.session_state["detect_stats"]["new_forward_calls"] == 0
    assert sum(d.forward_calls for _, _, d in loads) == forwards, "a display change ran the network"
    # one loaded graph per engine and what it runs: auto and "auto" precision are the fp32 they pick
    assert len(loads) == loaded <= 3, [(e, p) for e, p, _ in loads]
    # and "auto" (ONNX Runtime here) and "onnxruntime" share one session of the graph, not two
    on_ort = {e: d for e, _, d in loads if d.engine == "onnxruntime"}
    assert set(on_ort) == {"auto", "onnxruntime"} and on_ort["auto"].net is on_ort["onnxruntime"].net
    assert _uploaded(at) == ["photo.png"]


def _fails_to_load(kind: str, monkeypatch) -> str:
    """Make the ONNX engine fail as ``kind``; returns a word of the reason the page must show."""
    from ssd.inference import onnx_engine, onnx_export

    if kind == "onnxruntime broken":
        monkeypatch.setattr(onnx_engine, "onnxruntime_problem",
                            lambda: "onnxruntime does not load (ImportError: libonnxruntime.so.1: no such file)")
        return "libonnxruntime.so.1"
    if kind == "read-only folder":
        def refuse(dest, obj):
            raise PermissionError(13, "Permission denied", dest)
        monkeypatch.setattr(onnx_export, "atomic_write_json", refuse)
        return "cannot be written there"

    def no_operator(*args, **kw):
        raise RuntimeError("No conversion function registered for op type _contrib_Foo\n  File ...")
    monkeypatch.setattr(onnx_export, "_to_onnx", no_operator)
    return "could not be converted to ONNX"


@pytest.mark.parametrize("kind", ["onnxruntime broken", "read-only folder", "conversion fails"])
def test_an_engine_that_cannot_run_is_refused_in_one_line_and_the_upload_stays(app_env, tmp_path, monkeypatch,
                                                                               kind):
    _own_models(tmp_path, monkeypatch, app_env["model"], "fails")
    reason = _fails_to_load(kind, monkeypatch)
    at = _detect_page()
    at.file_uploader(key="detect_upload").set_value(UPLOAD)
    at.slider(key="detect_threshold").set_value(0.47)
    _run(at)
    assert "Running: mxnet" in _running(at) and reason in _running(at)     # auto fell back, and says why
    before = _detections(at)
    at.selectbox(key="detect_engine").set_value("onnxruntime")
    _run(at)
    errors = [e.value.replace("\\", "") for e in at.error]
    assert errors and all("\n" not in e and "Traceback" not in e for e in errors), errors
    assert any(reason in e for e in errors) and any("Engine" in e for e in errors), errors
    assert _uploaded(at) == ["photo.png"]                                 # refused, the upload kept
    at.selectbox(key="detect_engine").set_value("auto")
    _run(at)
    assert _uploaded(at) == ["photo.png"] and not at.error and not at.warning
    assert at.slider(key="detect_threshold").value == 0.47                # the view settings kept too
    assert _detections(at).equals(before) and at.session_state["detect_stats"]["new_forward_calls"] == 0


def test_a_folder_exported_to_onnx_runs_on_onnxruntime_alone(app_env, tmp_path, monkeypatch):
    from ssd.cli.main import main

    source = _own_models(tmp_path, monkeypatch, app_env["model"], "source")
    exported = str(tmp_path / "models" / "exported")
    assert main(["export", "--model", source, "--format", "onnx", "--out", exported]) == 0
    at = _detect_page()
    at.file_uploader(key="detect_upload").set_value(UPLOAD)
    at.slider(key="detect_threshold").set_value(0.01)
    at.selectbox(key="detect_model").set_value(source)
    at.selectbox(key="detect_engine").set_value("mxnet")
    ref = _sorted(_detections(_run(at)))
    at.selectbox(key="detect_model").set_value(exported)        # the engine picker was on mxnet
    _run(at)
    assert at.selectbox(key="detect_engine").options == ["onnxruntime"] and not at.error
    assert "Running: onnxruntime" in _running(at) and _uploaded(at) == ["photo.png"]
    got = _sorted(_detections(at))
    assert len(got) == len(ref) > 0 and list(got["class"]) == list(ref["class"])
    assert np.abs(got["score"].values - ref["score"].values).max() <= 1e-4


def test_the_camera_traps_page_offers_onnxruntime_alone_for_an_exported_folder(app_env, tmp_path, monkeypatch):
    from ssd.cli.main import main

    source = _own_models(tmp_path, monkeypatch, app_env["model"], "source")
    exported = str(tmp_path / "models" / "exported")
    assert main(["export", "--model", source, "--format", "onnx", "--out", exported]) == 0
    at = AppTest.from_file(APP, default_timeout=180).run()
    at = at.switch_page("app_pages/camera_traps.py").run()
    at.selectbox(key="ct_model").set_value(source)
    at.selectbox(key="ct_engine").set_value("mxnet").run()
    assert at.selectbox(key="ct_engine").options == ["auto", "mxnet", "onnxruntime"]
    at.selectbox(key="ct_model").set_value(exported).run()       # the engine picker was on mxnet
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="ct_engine").options == ["onnxruntime"]
    assert at.selectbox(key="ct_engine").value == "onnxruntime"


def test_the_pages_say_why_detection_is_not_on_a_gpu(app_env, tmp_path, monkeypatch):
    """No GPU here: the Home page says so for the default model; with onnxruntime-gpu whose CUDA does
    not start, the Detect page says why the asked-for ONNX Runtime runs on the CPU."""
    import onnxruntime as ort

    from ssd.inference.onnx_engine import CPU, CUDA

    _own_models(tmp_path, monkeypatch, app_env["model"], "cpu-only", "gpu-build")
    monkeypatch.delenv("SSD_FORCE_CPU")
    home = AppTest.from_file(APP, default_timeout=180).run()
    line = next(m.value for m in home.markdown if "**Detection**" in m.value).replace("\\", "")
    assert "onnxruntime" in line and "on CPU" in line and "no GPU provider" in line, line

    real = ort.InferenceSession

    class CudaDoesNotStart:
        def __init__(self, path, options=None, providers=None):
            self._real = real(path, options, providers=[CPU])

        def get_providers(self):
            return [CPU]

        def __getattr__(self, name):
            return getattr(self._real, name)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", CudaDoesNotStart)
    at = _detect_page()
    at.selectbox(key="detect_model").set_value(str(tmp_path / "models" / "gpu-build"))
    at.selectbox(key="detect_engine").set_value("onnxruntime")
    _run(at)
    assert "on CPU" in _running(at) and "CUDA provider did not start" in _running(at), _running(at)


def test_the_weights_digest_is_hashed_once_per_file_version(tmp_path, monkeypatch):
    """The Detect page asks on every rerun which precisions a model has (a digest of its weights):
    hashed once per version of the file, again when the weights are replaced."""
    import hashlib

    from ssd.base.atomic import atomic_write_bytes
    from ssd.inference import precision

    (tmp_path / "model.params").write_bytes(b"weights one")
    hashed, real = [], hashlib.sha1
    monkeypatch.setattr(hashlib, "sha1", lambda *a: hashed.append(1) or real(*a))
    first = [precision.params_digest(str(tmp_path), {"arch": "tiny"}) for _ in range(3)]
    assert len(set(first)) == 1 and len(hashed) == 1
    atomic_write_bytes(str(tmp_path / "model.params"), b"weights two")
    assert precision.params_digest(str(tmp_path), {"arch": "tiny"}) != first[0] and len(hashed) == 2
