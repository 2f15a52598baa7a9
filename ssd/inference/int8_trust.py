"""INT8 graphs from a model folder, held to the folder's weights before they run under its name.

A folder's INT8 files and their records (``model-int8.onnx`` + ``onnx-int8.json`` for ONNX Runtime,
``int8-symbol.json`` + ``int8-0000.params`` + ``int8.json`` for MXNet) are claims anyone can write:
the record's weights hash says nothing about the graph beside it, so a folder could run another
network under this model's name, and its ``recommended: int8`` made ``auto`` pick it. The rule:

* **ONNX Runtime INT8** is used when its graph is proven to be the quantization of the folder's
  ``model.params`` (``int8_match``: the fresh fp32 conversion, BatchNorm folded as quantize folds
  it, against the INT8 graph: same operators, attributes and wiring, every weight within half a
  quantization step) and whose outputs agree with the fp32 graph's on a few fixed images
  (``int8_behaviour``: the activations' ranges from calibration, which the weights cannot prove).
  Proven, the record's evaluation (mAP of both precisions, hence ``recommended``) is accepted.
* **MXNet INT8** graphs are oneDNN-fused and cannot be compared with the weights this way: they are
  used only when made on this machine (``python -m ssd quantize`` remembers them) or when they are
  the shipped model's own files.
* **The shipped model** (``ssd.models.shipped_int8``): files whose sha256 match the library's
  manifest need no check (a test proves the manifest's ONNX INT8 graph against its weights), so
  the default model's first detection stays fast and MXNet-free.

Verdicts are kept outside the folder (``onnx_trust.verdict_dir``), keyed by the files' content:
one check per folder version, then a hash. A folder's files never vouch for themselves.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Callable, Dict, Optional, Tuple

from ssd.base.errors import SSDError
from ssd.base.file_digest import file_digest
from ssd.inference.onnx_trust import INT8_ONNX_FILE, read_verdict, verdict_dir, write_verdict
from ssd.models.shipped_int8 import SHIPPED
from ssd.store import META_FILE, ONNX_FILE, PARAMS_FILE, is_onnx, read_meta

#: The files each engine's INT8 verdict rests on (a folder exported as ONNX: its model.onnx is the weights).
KINDS = {"onnxruntime": (INT8_ONNX_FILE, PARAMS_FILE, META_FILE),
         "onnx-folder": (INT8_ONNX_FILE, ONNX_FILE, META_FILE),
         "mxnet": ("int8-symbol.json", "int8-0000.params", "int8.json", PARAMS_FILE, META_FILE)}


def digests(model_dir: str, kind: str) -> Optional[Dict[str, str]]:
    """The sha256 of each file an INT8 verdict of ``kind`` rests on, or ``None`` when one is missing."""
    try:
        return {name: file_digest(os.path.join(model_dir, name)) for name in KINDS[kind]}
    except OSError:
        return None


def is_shipped(found: Optional[Dict[str, str]], kind: str) -> bool:
    return found is not None and any(entry.get(kind) == found for entry in SHIPPED.values())


def _verdict_path(kind: str, found: Dict[str, str]) -> str:
    key = hashlib.sha256(json.dumps([kind, found], sort_keys=True).encode()).hexdigest()
    return os.path.join(verdict_dir(), f"int8-{key}.json")


def _read_verdict(kind: str, found: Dict[str, str]) -> Optional[Tuple[bool, str]]:
    """The remembered verdict on these files (``read_verdict``: this user's own record), when it names
    them: a pass renamed to another folder's key proves nothing."""
    rec = read_verdict(_verdict_path(kind, found))
    if rec is None or rec.get("kind") != kind or rec.get("files") != found or not isinstance(rec.get("ok"), bool):
        return None
    return rec["ok"], str(rec.get("why"))[:500]


def _remember(kind: str, found: Dict[str, str], ok: bool, why: str, model_dir: str) -> None:
    """Best effort: no cache folder, no record (the check runs again next time)."""
    write_verdict(_verdict_path(kind, found), {"ok": ok, "why": why, "kind": kind, "files": found,
                                               "model_dir": os.path.abspath(model_dir)})


def _kind(model_dir: str, engine: str) -> str:
    if engine == "onnxruntime" and not os.path.exists(os.path.join(model_dir, PARAMS_FILE)):
        try:
            return "onnx-folder" if is_onnx(read_meta(model_dir)) else engine
        except (SSDError, OSError):   # an unreadable meta.json: the load that follows says so
            return engine
    return engine


def remember_made_here(model_dir: str, kind: str) -> None:
    """``python -m ssd quantize`` made these INT8 files from these weights on this machine."""
    kind = _kind(model_dir, kind)
    found = digests(model_dir, kind)
    if found is not None:
        _remember(kind, found, True, "quantized on this machine", model_dir)


def int8_verdict(model_dir: str, kind: str,
                 prove: Optional[Callable[[str], Optional[str]]] = None) -> Tuple[bool, str]:
    """(trusted, why not): may the folder's INT8 graph for ``kind`` (an engine) run under this model's name?

    ``prove(model_dir)``: the full check (``int8_match.onnx_int8_mismatch``: ``None`` or why not), run
    once per folder version when neither the manifest nor a remembered verdict decides."""
    kind = _kind(model_dir, kind)
    found = digests(model_dir, kind)
    if found is None:
        return False, f"{model_dir} lacks one of {', '.join(KINDS[kind])}"
    if is_shipped(found, kind):
        return True, "the shipped model's own files"
    known = _read_verdict(kind, found)
    if known is not None:
        return known
    if prove is None:
        return False, ("it was not made on this machine and is not the shipped model's, and an "
                       "MXNet INT8 graph cannot be compared with the weights")
    why = prove(model_dir)
    verdict = (why is None, why or "proven the quantization of the weights")
    _remember(kind, found, *verdict, model_dir)
    return verdict


def refusal(model_dir: str, kind: str, why: str) -> str:
    """The one-line reason an INT8 graph is not used, with what to do."""
    what = "MXNet INT8 graph" if kind == "mxnet" else INT8_ONNX_FILE
    return (f"{model_dir}: its {what} is not used: {why}; rebuild it from the weights with: "
            f"python -m ssd quantize --model {model_dir}")

