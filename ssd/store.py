"""Saved models: ``models/<name>/`` with ``model.params`` and ``meta.json``.

``meta.json`` says everything needed to rebuild and trust the network without the code that
trained it: architecture, classes, input size, anchors, normalization, dataset, training
arguments and command, metrics and library versions. Parameters are read only with MXNet's
own loader (no pickle), so a model folder from elsewhere cannot run code on load.
"""
from __future__ import annotations

import json
import os
import platform
import time
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ssd.base import faults
from ssd.base.errors import ModelError, error_gist
from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.json_file import JSONFileError, read_json_file
from ssd.base.meta_schema import MAX_META_BYTES
from ssd.base.params_file import import_graph, load_into
from ssd.models.registry import build_from_meta

META_FILE = "meta.json"
PARAMS_FILE = "model.params"
META_FORMAT_VERSION = 1
DEFAULT_MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")


# Exported graphs (``ssd.inference.export``): MXNet's symbol + params pair and our meta.json.
FORMAT = "symbol"
PREFIX = "model"
SYMBOL_FILE = f"{PREFIX}-symbol.json"
SYMBOL_PARAMS = f"{PREFIX}-0000.params"
INPUT_NAME = "data"
# ONNX graphs (``ssd.inference.onnx_export``): run by ONNX Runtime only.
ONNX_FORMAT = "onnx"
ONNX_FILE = "model.onnx"


def is_exported(meta: Dict[str, Any]) -> bool:
    return meta.get("format") == FORMAT


def is_onnx(meta: Dict[str, Any]) -> bool:
    """A folder exported with ``--format onnx``: an ONNX graph and no MXNet weights."""
    return meta.get("format") == ONNX_FORMAT


def symbol_files(meta: Dict[str, Any]) -> Tuple[str, str]:
    """(symbol, params) file names of an exported model (base names only: no path tricks)."""
    exp = meta.get("export") or {}
    return (os.path.basename(str(exp.get("symbol") or SYMBOL_FILE)),
            os.path.basename(str(exp.get("params") or SYMBOL_PARAMS)))


def params_file(meta: Dict[str, Any]) -> str:
    """The parameter file a model folder must hold (used by ``store.list_models``)."""
    return ONNX_FILE if is_onnx(meta) else symbol_files(meta)[1]


def library_versions() -> Dict[str, str]:
    import mxnet
    import numpy

    from ssd import __version__

    from importlib import metadata

    try:  # gluoncv 0.10.5.post0 reports "0.11.0" in __version__; the installed distribution is the truth
        gcv = metadata.version("gluoncv")
    except metadata.PackageNotFoundError:  # pragma: no cover - gluoncv is a requirement
        gcv = "missing"
    return {"ssd": __version__, "mxnet": mxnet.__version__, "gluoncv": gcv, "numpy": numpy.__version__,
            "python": platform.python_version()}


def save_params(net, path: str) -> None:
    """``net.save_parameters`` through a temp file, so a kill never leaves half a file."""
    with atomic_path(path) as tmp:
        net.save_parameters(tmp)


def _pending(model_dir: str) -> Tuple[str, str]:
    """The journal of a model save in progress: new weights and the metadata that describes them."""
    return (os.path.join(model_dir, "." + PARAMS_FILE + ".pending"),
            os.path.join(model_dir, "." + META_FILE + ".pending"))


def finish_interrupted_save(model_dir: str) -> None:
    """Complete or undo a model save that a kill cut short (called by the writer, never by readers).

    ``save_model`` writes pending weights, then pending metadata, then moves the weights into place,
    then the metadata. Pending metadata therefore means complete pending weights (or weights
    already in place): roll forward. Pending weights alone may be partial: drop them.
    """
    p_pending, m_pending = _pending(model_dir)
    if os.path.isfile(m_pending):
        if os.path.isfile(p_pending):
            os.replace(p_pending, os.path.join(model_dir, PARAMS_FILE))
        os.replace(m_pending, os.path.join(model_dir, META_FILE))
    elif os.path.exists(p_pending):
        os.unlink(p_pending)


def save_model(model_dir: str, net, meta: Dict[str, Any], params_from: Optional[str] = None) -> None:
    """Write params (from ``net`` or by copying ``params_from``) and metadata as one step.

    Both land first as pending files, then are moved into place weights first; a reader that finds
    pending metadata with the weights already moved reads the pending metadata (``read_meta``), so
    no reader, and no kill, ever pairs metadata with weights of another epoch.
    """
    os.makedirs(model_dir, exist_ok=True)
    finish_interrupted_save(model_dir)
    p_pending, m_pending = _pending(model_dir)
    wrote = True
    if params_from is not None:
        import shutil
        with atomic_path(p_pending) as tmp:
            shutil.copyfile(params_from, tmp)
    elif net is not None:
        save_params(net, p_pending)
    else:
        wrote = False
    faults.step("model: weights pending")
    meta = dict(meta)
    meta.setdefault("format_version", META_FORMAT_VERSION)
    meta.setdefault("name", os.path.basename(os.path.normpath(model_dir)))
    meta.setdefault("versions", library_versions())
    meta["saved"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if not wrote:
        write_meta(model_dir, meta)
        return
    atomic_write_json(m_pending, meta)
    faults.step("model: metadata pending")
    os.replace(p_pending, os.path.join(model_dir, PARAMS_FILE))
    faults.step("model: weights in place")
    os.replace(m_pending, os.path.join(model_dir, META_FILE))


def write_meta(model_dir: str, meta: Dict[str, Any]) -> None:
    atomic_write_json(os.path.join(model_dir, META_FILE), meta)


def _meta_path(model_dir: str) -> str:
    """``meta.json``, or the pending one when a save moved its weights in and was cut short."""
    p_pending, m_pending = _pending(model_dir)
    if os.path.isfile(m_pending) and not os.path.exists(p_pending):
        return m_pending
    return os.path.join(model_dir, META_FILE)


def read_meta(model_dir: str) -> Dict[str, Any]:
    """A model folder's checked metadata; ``ModelError`` for a missing, special (FIFO, device),
    oversized, too deeply nested or malformed ``meta.json`` (``ssd.base.json_file``)."""
    if not os.path.isdir(model_dir):
        raise ModelError(f"model folder {model_dir!r} does not exist")
    path = _meta_path(model_dir)
    try:
        try:
            meta = read_json_file(path, MAX_META_BYTES)
        except FileNotFoundError:
            path = os.path.join(model_dir, META_FILE)  # the writer finished the save meanwhile
            meta = read_json_file(path, MAX_META_BYTES)
    except FileNotFoundError:
        raise ModelError(f"{model_dir}: no {META_FILE} (not a saved model folder)") from None
    except JSONFileError as err:
        raise ModelError(f"bad metadata: {err}") from None
    return validate_meta(meta, path)


def validate_meta(meta: Any, path: str) -> Dict[str, Any]:
    """Check metadata once, on load: every field the pages and the CLI read has the right type.

    Why: ``meta.json`` comes from strangers (shared models) and from older versions; one bad field
    used to raise deep inside a page. A bad folder is now listed as broken with this reason.
    """
    from ssd.base.meta_schema import meta_problems

    problems = meta_problems(meta)
    if problems:
        raise ModelError(f"{path}: bad metadata: {'; '.join(problems[:3])}")
    return meta


def load_symbol_model(model_dir: str, meta: Optional[Dict[str, Any]] = None, ctx=None):
    """``(SymbolBlock, meta)`` of an exported folder; ``ModelError`` on any failure."""
    import mxnet as mx

    meta = meta or read_meta(model_dir)
    sym_name, params_name = symbol_files(meta)
    sym, params = os.path.join(model_dir, sym_name), os.path.join(model_dir, params_name)
    for path in (sym, params):
        if not os.path.isfile(path):
            raise ModelError(f"{model_dir}: exported model lacks {os.path.basename(path)}")
    input_name = str((meta.get("export") or {}).get("input") or INPUT_NAME)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = import_graph(sym, [input_name], params, ctx or mx.cpu())
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(f"{model_dir}: the exported graph does not load ({error_gist(err)})") from None
    return net, meta


def load_model(model_dir: str, ctx=None) -> Tuple[Any, Dict[str, Any]]:
    """Rebuild the network from metadata and load its parameters; ``ModelError`` on any failure."""
    import mxnet as mx

    meta = read_meta(model_dir)
    if is_exported(meta):  # exported graph + params: no Python class needed
        return load_symbol_model(model_dir, meta, ctx=ctx)
    if is_onnx(meta):
        raise ModelError(f"{model_dir} holds an ONNX graph, which MXNet cannot load: run it with "
                         "--engine onnxruntime (or export the model it came from again)")
    params = os.path.join(model_dir, PARAMS_FILE)
    if not os.path.isfile(params):
        raise ModelError(f"{model_dir}: no {PARAMS_FILE}")
    try:
        net = build_from_meta(meta)
    except Exception as err:
        raise ModelError(f"{model_dir}: cannot build architecture {meta.get('arch')!r}: {err}") from None
    try:
        load_into(net, params, ctx=ctx or mx.cpu())
    except ModelError:
        raise
    except Exception as err:  # MXNetError, AssertionError on shape/name mismatch, truncated file
        raise ModelError(f"{params}: parameters do not load into {meta['arch']!r} "
                         f"({error_gist(err)})") from None
    return net, meta


@dataclass
class ModelInfo:
    name: str
    path: str
    meta: Dict[str, Any]

    @property
    def label(self) -> str:
        m = (self.meta.get("metrics") or {}).get("best") or {}
        score = f", mAP {m['val_map']:.3f}" if isinstance(m.get("val_map"), (int, float)) else ""
        return f"{self.name} ({self.meta['arch']}, {len(self.meta['classes'])} class(es){score})"


@dataclass
class BrokenModel:
    name: str
    path: str
    error: str


def list_models(root: str = DEFAULT_MODELS_DIR) -> Tuple[List[ModelInfo], List[BrokenModel]]:
    """Usable models (sorted by name) and the folders that are not, each with its reason.

    A folder still being trained (no params yet) is reported as broken with that reason,
    not hidden, so a user knows why it is missing from the picker.
    """
    ok: List[ModelInfo] = []
    broken: List[BrokenModel] = []
    if not os.path.isdir(root):
        return ok, broken
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not os.path.isdir(path) or name.startswith("."):
            continue
        try:
            meta = read_meta(path)
            params_name = PARAMS_FILE
            if is_exported(meta) or is_onnx(meta):  # exported folders hold model-0000.params / model.onnx
                params_name = params_file(meta)
            if not os.path.isfile(os.path.join(path, params_name)):
                raise ModelError(_no_weights(path, params_name, meta))
            ok.append(ModelInfo(name, path, meta))
        except ModelError as err:
            broken.append(BrokenModel(name, path, str(err)))
    return ok, broken


def _no_weights(path: str, params_name: str, meta: Dict[str, Any]) -> str:
    """Why a folder with metadata has no weights. Training publishes them at the end of every epoch,
    so a trained folder without them is one whose run has not finished a first epoch: still going,
    or stopped before (nothing was kept, and it was listed as a bare "no model.params yet")."""
    if is_exported(meta) or is_onnx(meta):
        return f"{path}: no {params_name} (the exported model is incomplete; export it again)"
    return (f"{path}: no {params_name} yet: its training has not finished a first epoch (still running, or "
            "stopped before one ended, which keeps nothing: train into it again, or delete the folder)")


def default_model(root: str = DEFAULT_MODELS_DIR) -> Optional[ModelInfo]:
    """The model marked ``default`` in its metadata, else the first one."""
    ok, _ = list_models(root)
    for m in ok:
        if m.meta.get("default"):
            return m
    return ok[0] if ok else None


# ---------------------------------------------------------------------------------------------
# Ready-made detectors installed as model folders (what a model knows: ssd.models.knowledge)
# ---------------------------------------------------------------------------------------------

@dataclass
class PullResult:
    path: str
    already: bool   # the folder was there before: nothing was downloaded or written


def install_model(root: str, name: str, meta: Dict[str, Any], params_from: str) -> str:
    """Write ``root/name`` as a whole: staged in a hidden folder beside it, renamed when complete.

    A failure (disk full, a kill) leaves at most a hidden ``.install-*`` folder, which
    ``list_models`` ignores, never a half-written model under its name; the next install of that
    name removes such leftovers once they are an hour old (a younger one may be another process's
    install in progress).
    """
    import shutil
    import tempfile

    dest = os.path.join(root, name)
    if os.path.exists(dest):
        raise ModelError(f"{dest} already exists; delete it or choose another name")
    os.makedirs(root, exist_ok=True)
    remove_stale_installs(root, name)
    staging = tempfile.mkdtemp(prefix=f".install-{name}-", dir=root)
    try:
        save_model(staging, None, dict(meta, name=name), params_from=params_from)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


STALE_INSTALL_S = 3600.0


def remove_stale_installs(root: str, name: str, max_age_s: float = STALE_INSTALL_S) -> List[str]:
    """Delete ``root/.install-NAME-*`` staging folders not modified for ``max_age_s`` (what a
    killed install left); returns the folder names removed."""
    import shutil

    removed = []
    prefix = f".install-{name}-"
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < max_age_s:
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.name)
    return removed


def _pulled(dest: str) -> bool:
    return os.path.isfile(os.path.join(dest, META_FILE)) and os.path.isfile(os.path.join(dest, PARAMS_FILE))


def pull_model(name: str, root: str = DEFAULT_MODELS_DIR, progress=None) -> PullResult:
    """Install the pretrained detector ``name`` as ``root/name`` (``python -m ssd models pull``): the
    weights are fetched (resumable, hash checked) into their source's cache and, from a live source,
    converted; ``root`` is touched only once they are verified and load."""
    from ssd.models.pretrained import prepared, pretrained_detector

    entry = pretrained_detector(name)
    dest = os.path.join(root, entry.name)
    if _pulled(dest):
        return PullResult(dest, already=True)
    if os.path.lexists(dest):   # said before a download of minutes: install_model would refuse it after
        lacking = " and ".join(f for f in (META_FILE, PARAMS_FILE) if not os.path.isfile(os.path.join(dest, f)))
        raise ModelError(f"{dest} exists but holds no {lacking or 'model'} (a copy cut short, or another folder of "
                         "that name): move it away or delete it, then pull again")
    with prepared(entry.name, progress=progress) as (params, meta):
        try:
            return PullResult(install_model(root, entry.name, meta, params), already=False)
        except (ModelError, OSError):
            if _pulled(dest):   # another pull of the same detector finished first: that is success
                return PullResult(dest, already=True)
            raise


def import_model(path: str, name: str, out: str) -> str:
    """Convert the file ``path`` (a copy of catalogue entry ``name``'s weights: ``.pth``, ``.safetensors``
    or GluonCV ``.params``) into the new model folder ``out`` (as a pull would; it must not exist yet)."""
    from ssd.models.pretrained import imported

    out = os.path.abspath(out)
    with imported(name, path) as (params, meta):
        return install_model(os.path.dirname(out), os.path.basename(out), meta, params)
