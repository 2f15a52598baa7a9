"""Which inference engine runs a model: MXNet or ONNX Runtime, chosen once, always said.

``load_detector(model_dir, engine, precision)`` is the one way the CLI (``detect``, ``eval``,
camera-trap runs) and the app open a model for detection. ``engine``:

* ``mxnet`` — the network in MXNet (oneDNN-fused fp32, or its INT8 graph), on the CPU;
* ``onnxruntime`` — the model's ONNX graph in ONNX Runtime (``ssd.inference.onnx_engine``): the
  CUDA provider when ``onnxruntime-gpu`` runs on a GPU here (any card its CUDA 12 build supports,
  Hopper and newer included, which no MXNet wheel can use), else the CPU provider;
* ``auto`` — the first of ``AUTO_ORDER`` this machine and model can run: the fastest, as measured
  (``scripts/bench_onnx.py``, docs/PERFORMANCE.md). INT8 counts only where the model's own
  evaluation allows it (within 0.01 mAP of fp32, ``python -m ssd quantize``) and the INT8 graph is
  known to be the weights' (``ssd.inference.int8_trust``; else passed over, saying why); an ONNX Runtime that
  is missing or broken, or a graph that does not convert, falls through to MXNet with the reason.

The chosen detector says what it is (``Detector.describe``/``engine_info``): engine, version,
precision, device and, for ``auto``, why — stderr, the results file's ``info`` and the Home page
show it.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Tuple

from ssd.base.errors import ModelError, SSDError
from ssd.inference.detector import Detector

ENGINES = ("auto", "mxnet", "onnxruntime")
# Fastest first where it counts, a folder run as a whole process (scripts/bench_onnx.py on the development
# machine, AMD EPYC Zen 5, 2 cores, quiet, docs/PERFORMANCE.md): 640 JPEGs at 138.5 img/s on ONNX Runtime
# INT8, 98.0 fp32, MXNet INT8 98.0, MXNet fp32 77.3 (loaded: 19–22, 19.7, 11.1, 8.2). MXNet's forwards
# alone are faster quiet (Detector call at batch 8: 2.0 ms INT8 against ONNX Runtime's 3.3), but
# `import mxnet` costs every process seconds. ONNX Runtime's fp32 is exact where MXNet's INT8 is not,
# so it also comes before it on merit.
AUTO_ORDER: Tuple[Tuple[str, str], ...] = (("onnxruntime", "int8"), ("onnxruntime", "fp32"),
                                           ("mxnet", "int8"), ("mxnet", "fp32"))


def check_engine(engine: Optional[str]) -> str:
    engine = engine or "auto"
    if engine not in ENGINES:
        raise SSDError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    return engine


def load_detector(model_dir: str, engine: str = "auto", precision: Optional[str] = None, worker: bool = False,
                  log: Callable[[str], None] = lambda s: None, ctx=None) -> Detector:
    """A Detector of ``model_dir`` on ``engine`` at ``precision`` (``None``/"auto": the model's default).

    ``ctx``: MXNet's device (the app passes the GPU that ``select_devices`` found usable); a GPU
    there puts MXNet's fp32 ahead of ONNX Runtime on the CPU when ONNX Runtime has no GPU here.
    """
    from ssd.inference.onnx_engine import load_onnx
    from ssd.inference.precision import check_precision

    engine, precision = check_engine(engine), check_precision(precision)
    if engine == "mxnet":
        return _noted(Detector.load(model_dir, ctx=ctx, precision=precision, worker=worker), "asked for")
    if engine == "onnxruntime":
        return _noted(load_onnx(model_dir, precision, worker=worker, log=log), "asked for")
    return _auto(model_dir, precision, worker, log, ctx)


def engine_choices(model_dir: Optional[str]) -> Tuple[str, ...]:
    """What an engine picker offers for a model folder: every engine, or ONNX Runtime alone for a
    folder exported as ONNX (it holds no MXNet network)."""
    from ssd.store import is_onnx, read_meta

    try:
        return ("onnxruntime",) if model_dir and is_onnx(read_meta(model_dir)) else ENGINES
    except (SSDError, OSError):
        return ENGINES      # the load that follows says what is wrong with the folder


def precision_choices(model_dir: str, engine: str = "auto") -> List[str]:
    """What a precision picker offers: auto and fp32 always, int8 when ``engine`` (any, for auto)
    has a current INT8 graph of this model."""
    from ssd.inference.onnx_engine import int8_graph
    from ssd.inference.precision import int8_status
    from ssd.store import read_meta

    try:
        meta = read_meta(model_dir)
        usable = (engine in ("auto", "mxnet") and int8_status(model_dir, meta)[0]) or \
            (engine in ("auto", "onnxruntime") and int8_graph(model_dir, meta)[0] is not None)
    except (SSDError, OSError):
        usable = False
    return ["auto", "fp32"] + (["int8"] if usable else [])


def resolved_precision(model_dir: str, engine: str = "auto", precision: Optional[str] = None,
                       ctx=None) -> Optional[str]:
    """The precision ``load_detector(model_dir, engine, precision, ctx=ctx)`` runs at, where that is
    known without loading (``None`` where "auto" on ``auto`` stays open).

    Why: a server keys its loaded detectors by it, so "auto" and the precision it picks are one
    loaded graph; keyed by the words instead, a walk through the Detect page's pickers loaded the
    same graph again under each name and pushed the others out of the server's cache (reloaded on
    every switch back)."""
    from ssd.inference.onnx_engine import onnx_default_precision
    from ssd.inference.precision import check_precision, effective_precision
    from ssd.store import is_onnx, read_meta

    engine, precision = check_engine(engine), check_precision(precision)
    if precision is not None:
        return precision
    meta = read_meta(model_dir)
    if engine == "mxnet":
        return effective_precision(model_dir, None, ctx, meta)
    if engine == "onnxruntime" or is_onnx(meta):
        return onnx_default_precision(model_dir, meta)
    on_gpu = ctx is not None and getattr(ctx, "device_type", "cpu") == "gpu"
    tries = candidates(model_dir, None, mxnet_gpu=on_gpu)[0]
    return next((p for p in ("fp32", "int8") if candidates(model_dir, p, mxnet_gpu=on_gpu)[0] == tries), None)


def _noted(det: Detector, note: str) -> Detector:
    det.engine_note = note
    return det


def gpu_provider() -> bool:
    """True when ONNX Runtime here offers its CUDA provider (``onnxruntime-gpu``) and the GPU is wanted."""
    from ssd.inference.onnx_engine import CUDA, onnxruntime_problem

    if os.environ.get("SSD_FORCE_CPU") == "1" or onnxruntime_problem():
        return False
    import onnxruntime as ort

    return CUDA in ort.get_available_providers()


def candidates(model_dir: str, precision: Optional[str],
               mxnet_gpu: bool = False) -> Tuple[List[Tuple[str, str]], List[str]]:
    """What ``auto`` may try for this model, in order, and why the others are out."""
    from ssd.inference.onnx_engine import onnx_default_precision, onnxruntime_problem
    from ssd.inference.precision import default_precision
    from ssd.store import is_onnx, read_meta

    meta = read_meta(model_dir)
    problem = onnxruntime_problem()
    if is_onnx(meta):
        if problem:
            raise SSDError(f"{model_dir} is an ONNX graph and {problem}")
        return [("onnxruntime", precision or onnx_default_precision(model_dir, meta))], []
    order = list(AUTO_ORDER)
    if gpu_provider():     # a GPU: its fp32 first (INT8 graphs are CPU graphs)
        order.insert(0, ("onnxruntime", "fp32-gpu"))
    elif mxnet_gpu:        # MXNet has a usable GPU (compute capability ≤ 8.6) and ONNX Runtime none
        order.insert(0, ("mxnet", "fp32-gpu"))
    out, why = [], [f"onnxruntime: {problem}"] if problem else []
    for engine, prec in order:
        if engine == "onnxruntime" and problem:
            continue
        if precision and prec.split("-")[0] != precision:
            continue
        if precision is None and prec == "int8":
            model_default = onnx_default_precision(model_dir, meta) if engine == "onnxruntime" \
                else default_precision(model_dir, meta)
            if model_default != "int8":
                refused = refused_int8(model_dir, meta, engine)
                if refused:
                    why.append(f"{engine} int8: {refused}")
                continue
        out.append((engine, prec))
    return out, why


def refused_int8(model_dir: str, meta, engine: str) -> Optional[str]:
    """Why the INT8 graph that ``engine``'s record recommends is not used (not proven the weights'
    quantization, made from other weights…), or ``None``: said in ``auto``'s note, never silent."""
    from ssd.inference.onnx_engine import int8_graph
    from ssd.inference.onnx_export import INT8_ONNX_RECORD, read_onnx_record
    from ssd.inference.precision import int8_status, read_record

    if engine == "onnxruntime":
        rec = read_onnx_record(model_dir, INT8_ONNX_RECORD)
        return int8_graph(model_dir, meta)[1] if rec and rec.get("recommended") == "int8" else None
    rec = read_record(model_dir)
    return int8_status(model_dir, meta)[1] if rec and rec.get("recommended") == "int8" else None


def _auto(model_dir: str, precision: Optional[str], worker: bool, log: Callable[[str], None], ctx=None) -> Detector:
    from ssd.inference.onnx_engine import load_onnx

    on_gpu = ctx is not None and getattr(ctx, "device_type", "cpu") == "gpu"
    tries, why = candidates(model_dir, precision, mxnet_gpu=on_gpu)
    no_gpu = ""      # why ONNX Runtime's CUDA provider did not start, once it was tried
    for engine, prec in tries:
        try:
            if engine == "onnxruntime":
                det = load_onnx(model_dir, prec.split("-")[0], worker=worker, log=log, prefer_gpu=not no_gpu)
            else:
                det = Detector.load(model_dir, ctx=ctx if prec == "fp32-gpu" else None, precision=prec.split("-")[0],
                                    worker=worker)
        except (ModelError, SSDError) as err:
            if (engine, prec) == tries[-1]:
                raise
            why.append(f"{engine} {prec}: {err}")
            continue
        if engine == "onnxruntime" and prec.endswith("-gpu") and not det.device.startswith("GPU") \
                and (engine, prec) != tries[-1]:
            # onnxruntime-gpu installed but CUDA did not start (no card, missing libraries): the GPU's
            # place in the order is void, and the CPU's fastest (INT8 where allowed) comes next
            no_gpu = det.device_note or "the CUDA provider did not start"
            why.append(f"onnxruntime fp32 on the GPU: {no_gpu}")
            continue
        if no_gpu and det.engine == "onnxruntime":
            det.device_note = no_gpu
        note = "auto: the fastest engine this machine and model offer"
        return _noted(det, note + (" — passed over " + "; ".join(why) if why else ""))
    raise SSDError(f"no engine can run {model_dir} at precision {precision}: " + "; ".join(why))
