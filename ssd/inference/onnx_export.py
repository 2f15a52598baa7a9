"""A model as an ONNX graph that plain ONNX Runtime runs: ``model.onnx``, anchors as constants.

Two ways in, one conversion:

* ``python -m ssd export --model M --format onnx --out DIR`` (``export_onnx_folder``) writes
  ``DIR/model.onnx`` and the model's ``meta.json`` with ``"format": "onnx"``; the folder is a
  model folder the ONNX engine opens (MXNet cannot: the graph is not an MXNet one).
* ``ensure_onnx`` makes ``model.onnx`` inside a model folder on first use by the ONNX engine,
  with its record ``onnx.json`` (written last: a folder with a current record has a complete
  file), and makes it again when the weights change.

The conversion (``convert``): the recipe's graph form of the network (``export_outputs``: in-graph
NMS taken out, as for MXNet's own export) is exported by MXNet, every operator that depends only
on the input size and has no ONNX counterpart (``MultiBoxPrior``) is replaced by its value at the
model's input size, and MXNet's ONNX exporter (``mx.onnx.export_model``, batch dimension left
free) writes the graph. The weights are then taken out of the graph's inputs (ONNX Runtime treats
an initializer that is also an input as overridable and will not fold it), the outputs get the
recipe's names, and ``onnx.checker`` checks the result. Decoding and NMS run after the graph, in
numpy (``ssd.models.array_decode``), named in the record by the recipe: that keeps the NMS
threshold adjustable and the results the MXNet Detector's (and was faster here than ONNX's
``NonMaxSuppression``, which also cannot express MXNet's one-class-per-anchor rule).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from typing import Any, Dict, Optional, Tuple

from ssd.base.atomic import atomic_path, atomic_write_json
from ssd.base.errors import ModelError, SSDError, error_gist
from ssd.base.params_file import load_arrays
from ssd.inference.onnx_trust import INT8_ONNX_FILE, known_export, remember_export, same_graph, verdict_key
from ssd.models.registry import recipe_for
from ssd.store import (INPUT_NAME, META_FILE, ONNX_FILE, ONNX_FORMAT, PARAMS_FILE, is_exported, is_onnx,
                       load_model, read_meta, save_model)

ONNX_RECORD = "onnx.json"
INT8_ONNX_RECORD = "onnx-int8.json"     # with INT8_ONNX_FILE, what ssd.inference.onnx_quantize writes
__all__ = ["INT8_ONNX_FILE"]   # named here too: where callers look for the graph files
SIZE_ONLY_OPS = ("_contrib_MultiBoxPrior",)   # no ONNX operator; the value depends on the input size only
BATCH_DIM = "batch"
OPSET = 17          # ONNX Runtime 1.14+ (and onnxruntime-gpu 1.26) run it


def graph_description(net, meta: Dict[str, Any]) -> Dict[str, Any]:
    """The recipe's description of the graph form (outputs, decoding scheme), ``net`` made into it."""
    recipe = recipe_for(meta["arch"])
    if is_exported(meta):
        described = dict(meta.get("export") or {})
        if not described.get("array_decode"):
            described.update(recipe.export_outputs(recipe.build(meta)))   # an older export
    else:
        described = dict(recipe.export_outputs(net))
    scheme = recipe.array_decode(meta)
    if scheme and scheme != described.get("array_decode"):     # e.g. a converted torchvision SSD300
        described["decode"] = f"ssd.models.array_decode, scheme {scheme!r}, on the outputs"
    return {**described, "array_decode": scheme} if scheme else described


def _mxnet_graph(net, size: int, staging: str):
    """Symbol and parameters of the hybridized ``net`` (MXNet's own export, read back)."""
    import mxnet as mx

    net.hybridize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net(mx.nd.zeros((1, 3, size, size), dtype="float32"))
        net.export(os.path.join(staging, "graph"), epoch=0)
        sym = mx.sym.load(os.path.join(staging, "graph-symbol.json"))
        saved = load_arrays(os.path.join(staging, "graph-0000.params"))
    return sym, {k.split(":", 1)[-1]: v for k, v in saved.items()}


def fold_size_only_ops(sym, params: Dict[str, Any], size: int):
    """Replace each ``SIZE_ONLY_OPS`` node by a constant: its value for a ``size``² input."""
    import mxnet as mx

    graph = json.loads(sym.tojson())
    internals = sym.get_internals()
    for node in graph["nodes"]:
        if node["op"] not in SIZE_ONLY_OPS:
            continue
        out = internals[node["name"] + "_output"]
        args = {k: params[k] for k in out.list_arguments() if k in params}
        args[INPUT_NAME] = mx.nd.zeros((1, 3, size, size))
        aux = {k: params[k] for k in out.list_auxiliary_states()}
        value = out.bind(mx.cpu(), args, aux_states=aux).forward()[0].copy()   # quietly: ssd/__init__.py
        name = node["name"] + "_constant"
        params[name] = value
        node.clear()
        node.update({"op": "null", "name": name, "inputs": []})
    folded = mx.sym.load_json(json.dumps(graph))
    used = set(folded.list_arguments()) | set(folded.list_auxiliary_states())
    return folded, {k: v for k, v in params.items() if k in used}


def _tidy(model, output_names, described: Dict[str, Any], meta: Dict[str, Any]):
    """Weights out of the inputs, outputs named, the batch dimension named, what to know attached."""
    used = {name for node in model.graph.node for name in node.input}
    kept_inits = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept_inits)
    inits = {i.name for i in kept_inits}
    keep = [i for i in model.graph.input if i.name not in inits and i.name in used]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    for out, new in zip(list(model.graph.output), output_names):
        for node in model.graph.node:
            node.output[:] = [new if o == out.name else o for o in node.output]
            node.input[:] = [new if i == out.name else i for i in node.input]
        out.name = new
    for out in model.graph.output:
        if out.type.tensor_type.shape.dim and out.name != "anchors":
            out.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    about = {"classes": list(meta["classes"]), "input_size": int(meta["input_size"]),
             "normalize": meta.get("normalize"), "arch": meta["arch"], "array_decode": described["array_decode"]}
    entry = model.metadata_props.add()
    entry.key, entry.value = "ssd", json.dumps(about)
    model.producer_name = "ssd-studio"
    return model


def _to_onnx(sym, params: Dict[str, Any], size: int):
    """MXNet's exporter at ``OPSET`` (its own default is the newest opset the onnx package knows,
    where its Split conversion lacks the ``num_outputs`` that opset 18 made mandatory), batch free."""
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from onnx import TensorProto, helper

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = MXNetGraph().create_onnx_graph_proto(sym, params, [(1, 3, size, size)], [TensorProto.FLOAT],
                                                     opset_version=OPSET, dynamic=True,
                                                     dynamic_input_shapes=[(None, 3, size, size)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def convert(net, meta: Dict[str, Any], dest: str) -> Dict[str, Any]:
    """Write ``net`` (of a model with ``meta``) to ``dest`` as ONNX; returns the graph's description."""
    import onnx

    size = int(meta["input_size"])
    described = graph_description(net, meta)
    if not described.get("array_decode"):
        raise ModelError(f"architecture {meta['arch']!r} names no numpy decoder for its graph "
                         "(the recipe's export_outputs 'array_decode'); it cannot run on ONNX Runtime")
    # MXNet's export is staged in the system's temporary folder, not beside ``dest``: a run killed
    # there left megabytes in the model folder for ever (only ``atomic_path`` writes beside it)
    staging = tempfile.mkdtemp(prefix="ssd-onnx-")
    try:
        sym, params = _mxnet_graph(net, size, staging)
        sym, params = fold_size_only_ops(sym, params, size)
        model = _tidy(_to_onnx(sym, params, size), described["outputs"], described, meta)
        onnx.checker.check_model(model)
        with atomic_path(dest) as tmp:
            onnx.save(model, tmp)
    except (SSDError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as err:  # an operator the exporter lacks, a checker complaint
        raise ModelError(f"{meta['arch']}: the network could not be converted to ONNX ({error_gist(err)})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"outputs": list(described["outputs"]), "array_decode": described["array_decode"],
            "opset": opset_of(dest), "input": INPUT_NAME, "input_shape": [BATCH_DIM, 3, size, size],
            "dtype": "float32", "anchors": "constants (MultiBoxPrior folded at the input size)",
            "decode": described.get("decode", ""), "nms_in_graph": False}


def opset_of(path: str) -> int:
    """The default-domain opset an ONNX file declares."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return int(next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0))


# ---------------------------------------------------------------------------------------------
# the cached graph of a model folder, and the export command's folder
# ---------------------------------------------------------------------------------------------
def read_onnx_record(model_dir: str, name: str = ONNX_RECORD) -> Optional[Dict[str, Any]]:
    """A graph record (``onnx.json`` …), or ``None`` when absent or unreadable."""
    from ssd.inference.precision import read_folder_record

    rec = read_folder_record(model_dir, name)
    if rec is None or not isinstance(rec.get("file"), str):
        return None
    # the record names a file of this folder: one that reaches elsewhere ("../x.onnx") is not ours
    return rec if rec["file"] == os.path.basename(rec["file"]) and rec["file"] not in ("", ".", "..") else None


def onnx_status(model_dir: str, meta: Dict[str, Any], record: str = ONNX_RECORD) -> Tuple[bool, str]:
    """(current, why not): is there a graph for this model's current weights?"""
    from ssd.inference.precision import params_digest

    if is_onnx(meta) and record == ONNX_RECORD:     # an exported folder: the graph is the model
        return os.path.isfile(os.path.join(model_dir, ONNX_FILE)), f"{model_dir} lacks {ONNX_FILE}"
    rec = read_onnx_record(model_dir, record)
    if rec is None:
        return False, f"{model_dir} has no {record}"
    if not os.path.isfile(os.path.join(model_dir, os.path.basename(str(rec.get("file", ""))))):
        return False, f"{model_dir}: {record} names a file that is not there"
    if rec.get("source_params_sha1") != params_digest(model_dir, meta):
        return False, f"{model_dir}: the ONNX graph was made from other weights (the model was retrained since)"
    return True, "ok"


def ensure_onnx(model_dir: str, log=lambda s: None, force: bool = False) -> Dict[str, Any]:
    """The record of the model's fp32 ONNX graph, converting it first when absent or stale (or ``force``:
    the cached file does not load)."""
    from ssd.inference.precision import params_digest

    meta = read_meta(model_dir)
    if is_onnx(meta):
        return dict(meta.get("onnx") or {}, file=ONNX_FILE)
    why = "the ONNX graph cannot be written there"
    if not force and onnx_status(model_dir, meta)[0]:
        if cache_is_export(model_dir, meta):
            return read_onnx_record(model_dir) or {}
        why = f"its {ONNX_FILE} is not the conversion of its {PARAMS_FILE}, and a new one cannot be written there"
        log(f"{model_dir}: {ONNX_FILE} is not the conversion of {PARAMS_FILE} (another network's graph, or "
            "edited); converting again")
    log(f"converting {model_dir} to ONNX (once; cached as {ONNX_FILE})")
    record_path = os.path.join(model_dir, ONNX_RECORD)
    t0 = time.perf_counter()
    try:
        if os.path.exists(record_path):       # until the new record lands, the cached graph is not current
            os.remove(record_path)
        net, meta = load_model(model_dir)
        graph = convert(net, meta, os.path.join(model_dir, ONNX_FILE))
        record = {"file": ONNX_FILE, "precision": "fp32", **graph,
                  "source_params_sha1": params_digest(model_dir, meta),
                  "convert_s": round(time.perf_counter() - t0, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_json(record_path, record)
        remember_export(_cache_key(model_dir, read_meta(model_dir)), model_dir)
    except OSError as err:   # a read-only model folder: the caller (auto) falls back to MXNet
        raise ModelError(f"{model_dir}: {why} ({error_gist(err)}); export it "
                         f"elsewhere with python -m ssd export --format onnx") from None
    return record


def _cache_key(model_dir: str, meta: Dict[str, Any]) -> str:
    from ssd.inference.precision import params_digest

    return verdict_key(os.path.join(model_dir, ONNX_FILE), params_digest(model_dir, meta), meta)


def cache_is_export(model_dir: str, meta: Dict[str, Any]) -> bool:
    """Is the folder's ``model.onnx`` the conversion of its ``model.params`` (``onnx_trust``)?

    Why: ``onnx.json``'s weights hash is a claim anyone can write, so a folder could pair its weights
    with another network's graph and Detect would show that network's results under this model's name.
    A mismatch is our cache gone wrong, not the user's file: ``ensure_onnx`` converts again (or, in a
    read-only folder, refuses the ONNX engine with the reason, and ``auto`` runs MXNet on the weights).
    Costs one conversion per folder version (3 s for the shipped model, mostly MXNet's import), then a hash.
    """
    key = _cache_key(model_dir, meta)
    if known_export(key):
        return True
    staging = tempfile.mkdtemp(prefix="ssd-onnx-check-")
    try:
        net, meta = load_model(model_dir)
        fresh = os.path.join(staging, ONNX_FILE)
        convert(net, meta, fresh)
        same = same_graph(os.path.join(model_dir, ONNX_FILE), fresh)
    except ModelError:        # a cached file that fails the file checks is not ours either
        same = False
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if same:
        remember_export(key, model_dir)
    return same


def export_onnx_folder(model_dir: str, out_dir: str) -> Dict[str, Any]:
    """``DIR/model.onnx`` + ``DIR/meta.json`` (``"format": "onnx"``, the graph under ``"onnx"``)."""
    from ssd.inference.export import check_export_target

    check_export_target(model_dir, out_dir, ONNX_FORMAT)
    net, meta = load_model(model_dir)
    os.makedirs(out_dir, exist_ok=True)
    old_meta = os.path.join(out_dir, META_FILE)
    if os.path.exists(old_meta):
        os.remove(old_meta)       # the folder is incomplete until the new meta.json lands
    graph = convert(net, meta, os.path.join(out_dir, ONNX_FILE))
    new = {k: v for k, v in meta.items() if k not in ("name", "saved", "default", "versions", "export", "format")}
    new.update({"source_versions": meta.get("versions"), "format": ONNX_FORMAT, "default": False,
                "exported_from": os.path.abspath(model_dir), "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "onnx": {"file": ONNX_FILE, **graph}})
    save_model(out_dir, None, new)
    return new
