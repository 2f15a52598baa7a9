"""The ONNX Runtime engine: a model's ONNX graph behind the ``Detector`` interface, no MXNet at run time.

Why: no published MXNet wheel runs on a GPU newer than compute capability 8.6, while ONNX
Runtime's CUDA provider (``onnxruntime-gpu``, CUDA 12) covers those cards; on the CPU it is the
faster engine here (scripts/bench_onnx.py), and a process that only detects skips MXNet's ~3 s
import. ``OnnxDetector`` is a ``Detector`` whose forward is ``InferenceSession.run`` followed by
the numpy decoder the graph's record names (``ssd.models.array_decode``), so the Detect page, the
camera-trap pipeline and ``eval`` use it unchanged.

The graph: ``model.onnx`` (fp32, made on first use and cached in the model folder,
``ssd.inference.onnx_export``) or ``model-int8.onnx`` (``python -m ssd quantize``,
``ssd.inference.onnx_quantize``), or the ``model.onnx`` of a folder exported with
``--format onnx``. The device: the CUDA provider when ``onnxruntime-gpu`` is installed and it
starts on a GPU, else the CPU provider, with the reason.
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ssd.base.errors import ModelError, SSDError, error_gist
from ssd.data.preprocess import normalize_batch
from ssd.inference.detector import Detector
from ssd.inference.onnx_trust import check_onnx_file
from ssd.models.array_decode import array_decoder

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def onnxruntime_problem() -> Optional[str]:
    """Why ONNX Runtime cannot be used here (not installed, does not load), or ``None``."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError as err:
        if err.name != "onnxruntime":    # installed, but a module it needs is not: a broken install
            return f"onnxruntime does not load (ModuleNotFoundError: {error_gist(err, 160)})"
        return (f"onnxruntime is not installed ({error_gist(err, 120)}); install it with "
                "pip install -r requirements.txt")
    except ImportError as err:   # installed, but its native library does not load
        return f"onnxruntime does not load (ImportError: {error_gist(err, 160)})"
    except Exception as err:  # noqa: BLE001 - a broken wheel raises anything on import
        return f"onnxruntime does not load ({type(err).__name__}: {error_gist(err, 160)})"
    try:
        if not callable(getattr(ort, "InferenceSession", None)):
            return "onnxruntime is incomplete (no InferenceSession): reinstall it"
        providers = ort.get_available_providers()
    except Exception as err:  # noqa: BLE001 - a half-installed package fails on first use
        return f"onnxruntime does not work ({type(err).__name__}: {error_gist(err, 160)})"
    if CPU not in providers and CUDA not in providers:
        return f"onnxruntime offers neither the CPU nor the CUDA provider ({', '.join(providers)})"
    return None


def threads() -> int:
    """Intra-op threads: the OpenMP count ``ssd/__init__.py`` sets (every core), as MXNet gets."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def wanted_providers(prefer_gpu: bool = True) -> Tuple[List[Any], str]:
    """Providers to ask for, and why not the GPU when only the CPU is asked for."""
    import onnxruntime as ort

    if not prefer_gpu or os.environ.get("SSD_FORCE_CPU") == "1":
        return [CPU], "the CPU was requested"
    if CUDA not in ort.get_available_providers():
        return [CPU], "no GPU provider (the onnxruntime CPU build; requirements-gpu.txt installs onnxruntime-gpu)"
    preload = getattr(ort, "preload_dlls", None)
    if callable(preload):   # the CUDA and cuDNN of its build from the nvidia-* wheels, when installed
        try:
            preload()
        except Exception:  # noqa: BLE001 - the session start says whether CUDA really works
            pass
    return [(CUDA, {"device_id": 0}), CPU], ""


class _Opened:
    """One session and where it runs; what ``_SESSIONS`` holds weakly and each detector strongly."""

    def __init__(self, session: Any, device: str, why_cpu: str) -> None:
        self.session, self.device, self.why_cpu = session, device, why_cpu


# Sessions open now, by file version, providers asked and threads: shared by the detectors of one
# graph. Why: a server keeps a detector per engine choice, and "auto" (ONNX Runtime here) and
# "onnxruntime" each opened the same graph (two sessions, 14 MB each for the shipped model). Weak:
# a session goes when the last detector using it does.
_SESSIONS: "weakref.WeakValueDictionary[tuple, _Opened]" = weakref.WeakValueDictionary()
_SESSIONS_LOCK = threading.Lock()


def shared_session(path: str, prefer_gpu: bool = True) -> _Opened:
    """The open session of this version of ``path`` (inode, size, mtime) on the providers
    ``prefer_gpu`` asks for, or a new one (``open_session``); a file rewritten in place is opened again."""
    import onnxruntime as ort

    try:
        st = os.stat(path)
    except OSError as err:
        raise ModelError(f"{path}: ONNX Runtime cannot load it ({err.strerror})") from None
    providers, why_cpu = wanted_providers(prefer_gpu)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns, repr(providers), threads(),
           ort.InferenceSession)      # another ONNX Runtime (tests stand one in) opens its own
    with _SESSIONS_LOCK:
        opened = _SESSIONS.get(key)
        if opened is None:
            opened = _Opened(*open_session(path, prefer_gpu, (providers, why_cpu)))
            _SESSIONS[key] = opened
        return opened


def open_session(path: str, prefer_gpu: bool = True,
                 wanted: Optional[Tuple[List[Any], str]] = None) -> Tuple[Any, str, str]:
    """``(InferenceSession, device, why not a GPU)``; ``ModelError`` when the file does not load.
    ``wanted``: ``wanted_providers(prefer_gpu)`` when the caller has it already."""
    import onnxruntime as ort

    from ssd.base.hardware import gpu_names

    options = ort.SessionOptions()
    options.log_severity_level = 3          # errors only: no per-initializer chatter on stderr
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads()
    # no busy-waiting between operators: the folder pipeline's decode threads share these cores
    # (a 64-frame pipeline run went 8-13 → 13-16 img/s on the 2-core machine without it)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers, why_cpu = wanted or wanted_providers(prefer_gpu)
    check_onnx_file(path)       # a file from outside: no external data, control flow, custom ops or giant size
    try:
        session = ort.InferenceSession(path, options, providers=providers)
    except Exception as err:  # noqa: BLE001 - InvalidGraph, NoSuchFile, provider failures
        raise ModelError(f"{path}: ONNX Runtime cannot load it ({error_gist(err)})") from None
    if session.get_providers()[0] == CUDA:
        names = gpu_names()
        return session, f"GPU 0 ({names[0] if names else 'NVIDIA'}, CUDA provider)", ""
    if not why_cpu:
        why_cpu = (f"the CUDA provider did not start (the {cuda_libraries()} libraries this onnxruntime-gpu "
                   "build needs are missing, or no usable GPU)")
    return session, f"CPU ({threads()} threads)", why_cpu


def cuda_libraries() -> str:
    """What the installed GPU build loads, e.g. "CUDA 13.0 and cuDNN 9" (its build record names the CUDA;
    every onnxruntime-gpu since 1.19 is built on cuDNN 9), so a person knows which libraries to install."""
    try:
        from onnxruntime.capi import build_and_package_info as build

        cuda = getattr(build, "cuda_version", "")
    except ImportError:
        cuda = ""
    return f"CUDA {cuda} and cuDNN 9" if cuda else "CUDA and cuDNN 9"


class OnnxDetector(Detector):
    """A ``Detector`` running an ONNX graph with ONNX Runtime (same inputs, outputs and filters)."""

    engine = "onnxruntime"

    def __init__(self, session, meta: Dict[str, Any], graph: Dict[str, Any], precision: str, device: str,
                 warm: bool = True, worker: bool = False) -> None:  # no Detector.__init__: it loads MXNet
        import threading

        import onnxruntime as ort

        self._setup(meta, worker, precision)
        self.net, self.ctx, self.device = session, None, device
        self.engine_version = ort.__version__
        self._lock = threading.Lock()   # ONNX Runtime's run is thread-safe; the lock keeps the count exact
        self.graph = dict(graph)
        self._input = session.get_inputs()[0].name
        self._array_decode = array_decoder(str(graph.get("array_decode")))
        if warm:
            self.predict_arrays(np.zeros((1, self.input_size, self.input_size, 3), np.uint8))
            self.forward_calls = 0

    def _run(self, images: np.ndarray) -> List[np.ndarray]:
        x = normalize_batch(images, self.mean, self.std)
        with self._lock:
            self.forward_calls += 1
            return self.net.run(None, {self._input: x})

    def _predict(self, images: np.ndarray, nms: float, floor: float, tap=None):
        outs = self._run(images)
        if tap is not None:       # evaluation's anchor metrics: this same forward's raw outputs
            tap(list(outs))
        return self._array_decode(outs, self.meta, floor, nms)

    def _forward_raw(self, images: np.ndarray) -> List[np.ndarray]:
        return list(self._run(images))


def int8_graph(model_dir: str, meta: Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], str]:
    """The ONNX INT8 record when current for these weights, else ``(None, why)``."""
    from ssd.inference.onnx_export import INT8_ONNX_RECORD, onnx_status, read_onnx_record

    ok, why = onnx_status(model_dir, meta, INT8_ONNX_RECORD)
    if not ok:
        return None, f"{why} (make one with: python -m ssd quantize --model {model_dir})"
    return read_onnx_record(model_dir, INT8_ONNX_RECORD), "ok"


def onnx_default_precision(model_dir: str, meta: Dict[str, Any]) -> str:
    """INT8 when the model's own evaluation recommended the ONNX INT8 graph and it is current."""
    rec, _ = int8_graph(model_dir, meta)
    return "int8" if rec and rec.get("recommended") == "int8" else "fp32"


def load_onnx(model_dir: str, precision: Optional[str] = None, worker: bool = False,
              prefer_gpu: bool = True, log=lambda s: None) -> OnnxDetector:
    """A model folder on ONNX Runtime at ``precision`` (``None``: the model's default here)."""
    from ssd.inference.onnx_export import ensure_onnx
    from ssd.store import is_onnx, read_meta

    problem = onnxruntime_problem()
    if problem:
        raise SSDError(f"the onnxruntime engine is not available: {problem}")
    meta = read_meta(model_dir)
    precision = precision or onnx_default_precision(model_dir, meta)
    if precision == "int8":
        graph, why = int8_graph(model_dir, meta)
        if graph is None:
            raise ModelError(f"no ONNX INT8 graph: {why}")
    else:
        graph = ensure_onnx(model_dir, log)
    try:
        return _open(model_dir, meta, graph, precision, prefer_gpu, worker)
    except ModelError as err:
        if precision == "int8" or is_onnx(meta):    # the model itself, or made by quantize: say so
            raise
        # our own cache (model.onnx made from model.params) that does not load or fit: make it again
        log(f"{err}; converting again")
        return _open(model_dir, meta, ensure_onnx(model_dir, log, force=True), precision, prefer_gpu, worker)


def _open(model_dir: str, meta: Dict[str, Any], graph: Dict[str, Any], precision: str, prefer_gpu: bool,
          worker: bool) -> OnnxDetector:
    path = os.path.join(model_dir, os.path.basename(str(graph.get("file"))))
    if worker:
        from ssd.inference.worker import on_worker

        return on_worker(_build, path, meta, graph, precision, prefer_gpu, True)
    return _build(path, meta, graph, precision, prefer_gpu, False)


def check_graph(session, meta: Dict[str, Any], graph: Dict[str, Any], path: str) -> None:
    """``ModelError`` unless the graph fits the ``meta.json`` it is run with: its input size, class
    count and decoder. Why: a model folder is untrusted; a ``model.onnx`` of another model or size
    would crash mid-run or, worse, give detections under the wrong class names."""
    import json

    size, classes = int(meta["input_size"]), len(meta["classes"])
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 4 or any(isinstance(d, int) and d != want for d, want in zip(shape[1:], (3, size, size))):
        raise ModelError(f"{path}: the graph takes {inp.name} of shape {shape}, but meta.json says "
                         f"(batch, 3, {size}, {size}): it is not this model's graph (export the model again)")
    try:
        about = json.loads(session.get_modelmeta().custom_metadata_map.get("ssd") or "{}")
    except ValueError:
        about = {}
    about = about if isinstance(about, dict) else {}
    found = [(what, theirs, ours) for what, theirs, ours in
             (("classes", len(about["classes"]) if isinstance(about.get("classes"), list) else None, classes),
              ("decoder", about.get("array_decode"), graph.get("array_decode")))
             if theirs is not None and theirs != ours]
    cls = next((o for o in session.get_outputs() if o.name == "cls_preds"), None)
    if cls is not None and len(cls.shape) == 3 and isinstance(cls.shape[2], int) and cls.shape[2] != classes + 1:
        found.append(("classes", cls.shape[2] - 1, classes))
    if found:
        what, theirs, ours = found[0]
        raise ModelError(f"{path}: the graph's {what} ({theirs}) are not meta.json's ({ours}): it is not this "
                         "model's graph (export the model again)")


def _build(path: str, meta: Dict[str, Any], graph: Dict[str, Any], precision: str, prefer_gpu: bool,
           worker: bool) -> OnnxDetector:
    opened = shared_session(path, prefer_gpu)
    check_graph(opened.session, meta, graph, path)
    det = OnnxDetector(opened.session, meta, graph, precision, opened.device, worker=worker)
    det.shared_session = opened          # keeps it open (and in _SESSIONS) while this detector lives
    det.device_note = opened.why_cpu
    det.precision_note = f"{precision}, ONNX graph {os.path.basename(path)} (opset {graph.get('opset', '?')})"
    return det
