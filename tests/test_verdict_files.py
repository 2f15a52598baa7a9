"""Verdicts on model folders' graphs (is this INT8 graph the quantization of these weights? is this
model.onnx their export?) let a graph run unchecked, so only this user's own records are believed: not
one planted in a cache folder anyone can write, not a link, not a record renamed to another graph's
key, and a huge or deeply nested file is not read into memory or into a traceback."""
from __future__ import annotations

import json
import os

import pytest

from ssd.inference import int8_trust, onnx_trust


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SSD_CACHE_DIR", str(tmp_path / "cache"))


def _folder(tmp_path, name="m", graph=b"graph") -> str:
    path = tmp_path / name
    path.mkdir()
    for f, data in ((onnx_trust.INT8_ONNX_FILE, graph), ("model.params", b"weights"), ("meta.json", b"{}")):
        (path / f).write_bytes(data)
    return str(path)


def _verdict(folder: str, proofs: list):
    return int8_trust.int8_verdict(folder, "onnxruntime", prove=lambda d: proofs.append(d) or "tampered")


def _planted_pass(folder: str) -> str:
    found = int8_trust.digests(folder, "onnxruntime")
    path = int8_trust._verdict_path("onnxruntime", found)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump({"ok": True, "why": "planted", "kind": "onnxruntime", "files": found}, fh)
    return path


def test_a_remembered_verdict_is_used_once_proven(tmp_path):
    folder, proofs = _folder(tmp_path), []
    assert _verdict(folder, proofs) == (False, "tampered")
    assert _verdict(folder, proofs) == (False, "tampered") and len(proofs) == 1


def test_a_pass_planted_in_a_cache_folder_everyone_can_write_is_not_believed(tmp_path):
    folder, proofs = _folder(tmp_path), []
    path = _planted_pass(folder)
    os.chmod(os.path.dirname(path), 0o777)
    assert _verdict(folder, proofs) == (False, "tampered") and proofs == [folder]


def test_a_pass_owned_by_another_user_is_not_believed(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    folder, proofs = _folder(tmp_path), []
    os.chown(_planted_pass(folder), 12345, 12345)
    assert _verdict(folder, proofs) == (False, "tampered") and proofs == [folder]


def test_a_verdict_that_is_a_link_huge_nested_or_another_graphs_is_not_believed(tmp_path):
    folder, proofs = _folder(tmp_path), []
    path = _planted_pass(folder)
    other = _folder(tmp_path, "other", b"another graph")
    good = json.load(open(path))
    bodies = [json.dumps(dict(good, files=int8_trust.digests(other, "onnxruntime"))),   # renamed from another
              "[" * 100_000 + "]" * 100_000,                                               # deeply nested
              json.dumps(dict(good, pad="x" * (onnx_trust.MAX_VERDICT_BYTES + 1)))]       # huge
    for body in bodies:
        with open(path, "w") as fh:
            fh.write(body)
        assert _verdict(folder, proofs) == (False, "tampered")
        os.remove(path)
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps(good))
    os.symlink(target, path)
    assert _verdict(folder, proofs) == (False, "tampered") and len(proofs) == 4


def test_an_onnx_export_record_names_its_own_key(tmp_path):
    onnx_trust.remember_export("a" * 64, str(tmp_path))
    assert onnx_trust.known_export("a" * 64)
    os.rename(os.path.join(onnx_trust.verdict_dir(), "a" * 64 + ".json"),
              os.path.join(onnx_trust.verdict_dir(), "b" * 64 + ".json"))
    assert not onnx_trust.known_export("b" * 64)
    open(os.path.join(onnx_trust.verdict_dir(), "c" * 64 + ".json"), "w").write(json.dumps({"key": "c" * 64}))
    os.chmod(onnx_trust.verdict_dir(), 0o777)
    assert not onnx_trust.known_export("c" * 64)
