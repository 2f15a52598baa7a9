"""ONNX files from outside, checked before ONNX Runtime sees them, and a cached graph held to its weights.

A model folder is untrusted data (a colleague's zip, a download). Two guarantees:

* ``check_onnx_file`` — before any ``InferenceSession``: a regular file within ``MAX_ONNX_BYTES``,
  a parseable ONNX protobuf, no external data (``location`` could name files outside the folder,
  and ``onnx.load`` follows a symlink out of it; our exports never use external data), no local
  functions or control-flow subgraphs (``If``/``Loop``/``Scan``: a loop's trip count is the file's
  to choose), no operator outside ONNX's and ONNX Runtime's own domains, and no initializer that
  declares more elements than the file could hold. Each failure is one line (``ModelError``).
* ``graph_is_export`` — a ``model.onnx`` beside ``model.params`` is our cache of the weights'
  conversion, and its record (``onnx.json``) is a claim anyone can write. The graph is compared with
  a fresh conversion of the weights (same operators, attributes, wiring and initializer bytes, names
  aside: MXNet numbers its blocks per process). The verdict is remembered outside the folder
  (``verdict_dir``), keyed by the graph's, the weights' and meta.json's content, so each folder
  costs one conversion once; a folder's own files can never vouch for themselves.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ssd.base.atomic import atomic_write_json
from ssd.base.errors import ModelError, OutputError, error_gist
from ssd.base.user_cache import user_cache_dir

#: The largest ONNX file opened. The biggest network here (SSD300 on VGG16, ~27 M parameters)
#: converts to ~110 MB; 4x that leaves room for larger inputs' anchor constants.
MAX_ONNX_BYTES = 512 << 20
#: Operator domains a graph may use: ONNX's own, and ONNX Runtime's built-in contrib operators
#: (its quantizer writes ``com.microsoft.QLinearConcat``). Nothing that needs a custom-op library.
ALLOWED_DOMAINS = ("", "ai.onnx", "com.microsoft")
SUBGRAPH_OPS = ("If", "Loop", "Scan")
INT8_ONNX_FILE = "model-int8.onnx"      # ssd.inference.onnx_quantize writes it
#: The largest verdict record read: ours are a few hundred bytes.
MAX_VERDICT_BYTES = 64 << 10
_ELEMENT_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def check_onnx_file(path: str, max_bytes: int = MAX_ONNX_BYTES):
    """The parsed ``onnx.ModelProto`` of ``path`` once it passes the checks above; ``ModelError`` else."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise ModelError(f"{path}: cannot read it ({err.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{path}: not a regular file")
    if st.st_size > max_bytes:
        raise ModelError(f"{path}: {st.st_size / 2**20:.0f} MB, more than any model here needs "
                         f"({max_bytes / 2**20:.0f} MB at most); not opened")
    model = _parse(path)
    problem = next(_problems(model, st.st_size), None)
    if problem:
        raise ModelError(f"{path}: {problem}; not opened")
    return model


def _parse(path: str):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(path, load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as err:
        raise ModelError(f"{path}: not an ONNX graph (truncated or another kind of file: "
                         f"{error_gist(err, 120)})") from None


def _problems(model, file_size: int) -> Iterable[str]:
    """Why the graph is refused, first reason first."""
    if model.functions:
        yield f"it defines {len(model.functions)} local function(s), which our exports never use"
    for node in model.graph.node:
        if node.op_type in SUBGRAPH_OPS or any(a.g.node or a.graphs for a in node.attribute):
            yield f"it holds a control-flow subgraph ({node.op_type} {node.name!r}), which our exports never use"
        if node.domain not in ALLOWED_DOMAINS:
            yield f"operator {node.op_type!r} of custom domain {node.domain!r} (a custom-op library is never loaded)"
    for init in list(model.graph.initializer) + list(model.graph.sparse_initializer):
        tensor = getattr(init, "values", init)
        if tensor.data_location == 1 or tensor.external_data:     # TensorProto.EXTERNAL
            yield (f"initializer {tensor.name!r} keeps its data in another file "
                   f"({_location(tensor)}); our exports never use external data")
        count = 1
        for d in tensor.dims:
            count *= max(int(d), 0)
        if count * _ELEMENT_BYTES.get(tensor.data_type, 1) > file_size:
            yield f"initializer {tensor.name!r} declares {list(tensor.dims)} elements, more than the file holds"


def _location(tensor) -> str:
    where = next((e.value for e in tensor.external_data if e.key == "location"), "")
    return repr(where[:80])


# ---------------------------------------------------------------------------------------------
# is a cached model.onnx the conversion of model.params?
# ---------------------------------------------------------------------------------------------
def verdict_dir() -> str:
    """Where verdicts are kept: ``$SSD_CACHE_DIR/onnx-verified`` (default ``~/.cache/ssd-studio``) —
    the user's own, never the model folder's."""
    return os.path.join(user_cache_dir(), "onnx-verified")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verdict_key(graph_path: str, params_sha1: str, meta: Dict[str, Any]) -> str:
    """The graph's, the weights' and meta.json's content, in one name."""
    about = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()
    return hashlib.sha256(f"{_sha256(graph_path)}|{params_sha1}|{about}".encode()).hexdigest()


def _own(st: os.stat_result) -> bool:
    """Written by this user and by nobody else since: owned by us, not writable by everyone."""
    return st.st_uid == os.geteuid() and not st.st_mode & stat.S_IWOTH


def read_verdict(path: str) -> Optional[Dict[str, Any]]:
    """The verdict record at ``path`` when this user wrote it, else ``None`` (then the check runs again).

    A verdict lets a graph run unchecked, so the file is believed only when it is a regular file
    (not a link), within ``MAX_VERDICT_BYTES``, owned by this user and not writable by everyone, in a
    folder not writable by everyone (a shared or ``/tmp`` cache: anyone could plant a pass there)."""
    try:
        folder, st = os.stat(os.path.dirname(path)), os.lstat(path)
        if not (_own(folder) and stat.S_ISREG(st.st_mode) and _own(st) and st.st_size <= MAX_VERDICT_BYTES):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            rec = json.loads(fh.read(MAX_VERDICT_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        return None
    return rec if isinstance(rec, dict) else None


def write_verdict(path: str, record: Dict[str, Any]) -> None:
    """Best effort: no cache folder, or a link or folder where the record goes (``OutputError``), no
    record (the check runs again next time)."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write_json(path, record)
    except (OSError, OutputError):
        pass


def known_export(key: str) -> bool:
    """Was the graph of ``key`` proven the weights' export here? The record must name ``key`` itself:
    a pass renamed to another graph's key proves nothing."""
    rec = read_verdict(os.path.join(verdict_dir(), key + ".json"))
    return rec is not None and rec.get("key") == key


def remember_export(key: str, model_dir: str) -> None:
    """Record that the graph of ``key`` is the weights' export (best effort: no cache folder, no record)."""
    write_verdict(os.path.join(verdict_dir(), key + ".json"), {"key": key, "model_dir": os.path.abspath(model_dir)})


def canonical(model) -> Tuple[Any, ...]:
    """The graph with its tensor names replaced by their order of first use: what it computes, from what."""
    names: Dict[str, int] = {}

    def n(name: str) -> Any:
        return names.setdefault(name, len(names)) if name else ""

    inits = {i.name: i for i in model.graph.initializer}
    ins = [(n(i.name), i.type.SerializeToString()) for i in model.graph.input]
    nodes: List[Any] = []
    for node in model.graph.node:
        attrs = []
        for a in sorted(node.attribute, key=lambda a: a.name):
            a = type(a).FromString(a.SerializeToString())
            a.t.name = ""
            attrs.append(a.SerializeToString())
        nodes.append((node.domain, node.op_type, tuple(attrs), tuple(n(i) for i in node.input),
                      tuple(n(o) for o in node.output)))
    weights = sorted((names[k], tuple(v.dims), v.data_type, _tensor_bytes(v)) for k, v in inits.items()
                     if k in names)
    outs = [(o.name, n(o.name), o.type.SerializeToString()) for o in model.graph.output]
    meta = sorted((p.key, p.value) for p in model.metadata_props)
    return tuple(ins), tuple(nodes), tuple(weights), tuple(outs), tuple(meta), len(inits)


def _tensor_bytes(tensor) -> bytes:
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor).tobytes()


def same_graph(path_a: str, path_b: str) -> bool:
    """Do the two ONNX files compute the same thing from the same weights (names aside)?"""
    return canonical(check_onnx_file(path_a)) == canonical(check_onnx_file(path_b))
