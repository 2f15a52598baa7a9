"""ssd.base.memory: the garbage collector's freeze happens after a burst of imports, not on every run."""
from __future__ import annotations

import gc
import sys
import types

from ssd.base import memory


def test_freeze_only_after_enough_new_modules(monkeypatch):
    calls = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(memory, "_modules_when_frozen", len(sys.modules))
    assert memory.freeze_after_imports(new_modules=3) is False          # nothing new imported
    for i in range(3):
        monkeypatch.setitem(sys.modules, f"_ssd_fake_module_{i}", types.ModuleType(f"_ssd_fake_module_{i}"))
    assert memory.freeze_after_imports(new_modules=3) is True
    assert calls == ["collect", "freeze"]
    assert memory.freeze_after_imports(new_modules=3) is False          # a rerun imports nothing: no second pass
    assert calls == ["collect", "freeze"]

