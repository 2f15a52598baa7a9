"""MXNet engine settings per process kind, chosen in one place and reported.

MXNet reads ``MXNET_ENGINE_TYPE`` and ``OMP_NUM_THREADS`` once, when it is first imported (and
its OpenMP runtime reads ``OMP_WAIT_POLICY`` when it loads), so
they must be set before that; ``ssd/__init__.py`` sets the thread count and
``ssd.cli.main`` calls ``configure`` with the command's kind before any command imports MXNet.

Why these choices (measured on the 2-core development machine, see README "Speed"):

* **inference** (``python -m ssd detect|eval|quantize``): ``NaiveEngine``. A Detector call is
  a forward plus a decode of many small operators, where the threaded engine's per-operator
  scheduling shows: TinySSD batch 1, forward + decode, fp32 11.1 vs 12.4 ms and INT8 4.2 vs
  5.1 ms (``scripts/bench_precision.py``, README; on an AVX2-only Zen 3 the same call was 7–8 %
  slower under it, and a folder run's batched pipeline ran at the same speed under both, so
  the choice is a small win on one CPU kind and a small loss on another). The naive engine runs
  each operator synchronously in the calling thread, which is only safe when one thread at a
  time calls MXNet: these commands have one thread that touches MXNet (image decoding in
  helpers uses Pillow only).
* **training** (``python -m ssd train``, the app's jobs): MXNet's default threaded engine. The
  batch producer thread builds arrays while the main thread runs the step, and large batches
  gain nothing from the naive engine.
* **OpenMP threads wait passively in inference** (``OMP_WAIT_POLICY=PASSIVE``). MXNet's OpenMP
  threads otherwise spin for a while after each parallel region, and a folder run's decode threads
  need those same cores: the spinning took their time. On the 2-core Zen 5 machine, 640
  1920×1080 JPEGs through ``detect --engine mxnet`` ran 22–28 % faster whole-process (INT8 7.3 →
  5.7 s, fp32 11.4 → 8.9 s, CPU time 12.2 → 9.1 s) and, with another job busy on the machine,
  twice as fast; ``eval`` gained too (``scripts/bench_wait_policy.py``). Training keeps spinning
  (one large step after another, nothing else to run on its cores).
* **oneDNN may use AMX in inference and in the app** (whose Detect page runs MXNet in the server) where the CPU has it (Intel Xeon 4th generation on) and Linux
  grants the process AMX's tile state. The oneDNN inside MXNet 1.9.1 stops at AVX-512 BF16 unless
  ``ONEDNN_MAX_CPU_ISA`` (``DNNL_MAX_CPU_ISA``) allows AMX, and never asks Linux for the tile state
  (``arch_prctl(ARCH_REQ_XCOMP_PERM)``, Linux 5.16+), so allowed alone its AMX kernels die of SIGILL:
  ``configure`` asks, and raises the cap only when granted. On a 2-core Xeon with AMX, TinySSD's INT8
  forward (batch 8, one thread) took 0.65× the CPU time with identical scores and mAP; fp32 is
  unchanged (AMX has no fp32 arithmetic). ``scripts/bench_amx.py``, docs/PERFORMANCE.md.
* **app** (Streamlit): the default threaded engine. The server runs every session in its own
  thread and pages touch MXNet outside the ``Detector`` lock (anchors, previews); the threaded
  engine is the one MXNet documents as safe for that. ``app.py`` calls ``configure_once("app")`` before
  any page can import MXNet.

MXNet's C++ logs ``MXNet start using engine: NaiveEngine`` when it creates an engine the
variable names; ``start_engine_quietly`` creates it right after the first ``import mxnet``
with only that line kept off stderr (the commands' ``engine:`` line says what runs).
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import tempfile
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from typing import Any, Dict, Iterator, Optional

NAIVE = "NaiveEngine"
THREADED = "ThreadedEnginePerDevice"     # MXNet's default

ENGINE_FOR_KIND: Dict[str, str] = {"inference": NAIVE, "training": THREADED, "app": THREADED}
WAIT_POLICY_FOR_KIND: Dict[str, str] = {"inference": "PASSIVE"}   # OpenMP's default (spinning) elsewhere
#: oneDNN's instruction-set cap by process kind, raised only where AMX is granted (``_allow_amx``).
ONEDNN_ISA_FOR_KIND: Dict[str, str] = {"inference": "AVX512_CORE_AMX", "app": "AVX512_CORE_AMX"}
ONEDNN_ISA_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")   # oneDNN 2.x reads either name
COMMAND_KIND: Dict[str, str] = {"detect": "inference", "eval": "inference", "quantize": "inference",
                                "train": "training"}

_applied: Dict[str, str] = {}


def kind_of_command(command: Optional[str]) -> str:
    """The process kind of a CLI command (anything not listed behaves like training)."""
    return COMMAND_KIND.get(str(command), "training")


def configure(kind: str) -> Dict[str, str]:
    """Set the engine for this process kind if MXNet is not loaded yet; returns ``report()``.

    A value the user already put in the environment wins (``MXNET_ENGINE_TYPE=... python -m
    ssd detect``), and so does an MXNet that is already imported: its engine cannot change.
    """
    if kind not in ENGINE_FOR_KIND:
        raise ValueError(f"unknown process kind {kind!r}; known: {', '.join(ENGINE_FOR_KIND)}")
    _applied["kind"] = kind
    if kind in WAIT_POLICY_FOR_KIND and "mxnet" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY_FOR_KIND[kind])   # read when OpenMP loads
    if kind in ONEDNN_ISA_FOR_KIND and "mxnet" not in sys.modules:
        _applied["onednn_isa"] = _allow_amx(ONEDNN_ISA_FOR_KIND[kind])
    if "mxnet" in sys.modules:
        _applied["note"] = "MXNet was already imported: its engine was left as it was"
    elif "MXNET_ENGINE_TYPE" in os.environ:
        _applied["note"] = "MXNET_ENGINE_TYPE was set by the environment"
    elif ENGINE_FOR_KIND[kind] == THREADED:
        _applied["note"] = f"MXNet's default, right for {kind}"   # unset: MXNet then logs no banner
    else:
        os.environ["MXNET_ENGINE_TYPE"] = ENGINE_FOR_KIND[kind]
        _applied["note"] = f"chosen for {kind}"
        _start_engine_after_import()
    return report()


def configure_once(kind: str) -> Dict[str, str]:
    """``configure`` on the first call only: Streamlit runs ``app.py`` again on every rerun, long after MXNet
    was loaded, and a second ``configure`` would only overwrite the first one's note with "already imported"."""
    return report() if _applied.get("kind") == kind else configure(kind)


def is_naive() -> bool:
    """True when this process runs MXNet's synchronous engine (forwards must never overlap)."""
    return os.environ.get("MXNET_ENGINE_TYPE", THREADED) == NAIVE


def report() -> Dict[str, str]:
    """What this process runs with: engine, OpenMP threads, kind and why."""
    return {"engine": os.environ.get("MXNET_ENGINE_TYPE", THREADED),
            "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "omp_wait": os.environ.get("OMP_WAIT_POLICY", "OpenMP's default"),
            "kind": _applied.get("kind", "unset"), "note": _applied.get("note", "MXNet defaults"),
            "onednn_isa": _applied.get("onednn_isa") or next(
                (f"{os.environ[v]} ({v})" for v in ONEDNN_ISA_VARS if v in os.environ), "oneDNN's default")}


def _allow_amx(isa: str) -> str:
    """Let oneDNN go up to ``isa`` (AMX) when this CPU has it and Linux grants this process its tile state; what was
    set (for ``report``), or ``""`` when nothing was (no AMX, refused, or a cap the user chose wins)."""
    if any(v in os.environ for v in ONEDNN_ISA_VARS) or not _amx_granted():
        return ""
    for var in ONEDNN_ISA_VARS:
        os.environ[var] = isa
    return f"{isa} (granted by Linux)"


def _amx_granted() -> bool:
    """Ask Linux (x86-64, 5.16+) for AMX's tile data for this process: ``arch_prctl(ARCH_REQ_XCOMP_PERM,
    XFEATURE_XTILEDATA)``. Granted once, it holds for every thread of the process; a refusal (an older
    kernel, a CPU without AMX, a too-small signal stack) changes nothing."""
    import platform

    if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
        return False
    from ssd.base.hardware import cpu_flags

    if "amx_int8" not in cpu_flags():
        return False
    try:
        import ctypes

        sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata = 158, 0x1023, 18
        return ctypes.CDLL(None, use_errno=True).syscall(sys_arch_prctl, arch_req_xcomp_perm,
                                                         xfeature_xtiledata) == 0
    except (OSError, AttributeError):
        return False


#: What MXNet's C++ writes on stderr when it creates an engine named by ``MXNET_ENGINE_TYPE``.
BANNER = b"MXNet start using engine: "
KNOWN_ENGINES = (NAIVE, THREADED, "ThreadedEngine")   # another name aborts the process: never captured

_engine_started: Dict[str, bool] = {}


def start_engine_quietly() -> None:
    """Create MXNet's engine now, once, without its start banner on the user's terminal.

    Why: with ``MXNET_ENGINE_TYPE`` set (``NaiveEngine`` for ``detect``/``eval``/``quantize``),
    MXNet logs ``[hh:mm:ss] ../src/engine/engine.cc:54: MXNet start using engine: NaiveEngine``
    from C++ when its first call creates the engine (not at import); the command's own
    ``engine:`` line already says what runs. Run by ``_ThenStartEngine`` right after the
    process's first ``import mxnet``, wherever that is (MXNet is imported lazily in many modules),
    before anything can call an operator. Without the variable MXNet logs nothing.
    """
    if _engine_started or os.environ.get("MXNET_ENGINE_TYPE") not in KNOWN_ENGINES:
        return
    _engine_started["done"] = True
    import mxnet as mx

    with _stderr_without(BANNER):
        mx.nd.waitall()                 # the engine's first use creates it


@contextmanager
def _stderr_without(marker: bytes) -> Iterator[None]:
    """Send file descriptor 2 (C++ and Python alike) to a temporary file for the block, then
    write back every line but those holding ``marker`` (also when the block fails). A file,
    not a pipe: a pipe nobody reads blocks its writer once full."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = b"".join(line for line in tmp.read().splitlines(keepends=True) if marker not in line)
            if kept:
                os.write(2, kept)


def _start_engine_after_import() -> None:
    """Have the first ``import mxnet`` of this process end with ``start_engine_quietly``."""
    if not any(isinstance(f, _ThenStartEngine) for f in sys.meta_path):
        sys.meta_path.insert(0, _ThenStartEngine())


class _ThenStartEngine(importlib.abc.MetaPathFinder):
    """Finds ``mxnet`` with the ordinary finders and wraps its loader; then steps aside."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Optional[ModuleSpec]:
        if name != "mxnet":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoaderThenStart(spec.loader)
        return spec


class _LoaderThenStart(importlib.abc.Loader):
    """MXNet's own loader, followed by ``start_engine_quietly`` once the package is loaded."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:      # resources, file names: MXNet's loader answers
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        start_engine_quietly()
