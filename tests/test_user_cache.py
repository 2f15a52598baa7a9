"""The user's cache folder is named once: weights and ONNX verdicts follow $SSD_CACHE_DIR together."""
from __future__ import annotations

import os

from ssd.inference.onnx_trust import verdict_dir
from ssd.models.weights.fetch import weights_dir


def test_weights_and_verdicts_share_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("SSD_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("SSD_CACHE_DIR", str(tmp_path / "c"))
    assert os.path.dirname(weights_dir()) == os.path.dirname(verdict_dir()) == str(tmp_path / "c")
    monkeypatch.setenv("SSD_WEIGHTS_DIR", str(tmp_path / "w"))     # weights alone elsewhere, as before
    assert weights_dir() == str(tmp_path / "w") and verdict_dir().startswith(str(tmp_path / "c"))
    monkeypatch.delenv("SSD_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert verdict_dir() == str(tmp_path / "home" / ".cache" / "ssd-studio" / "onnx-verified")
