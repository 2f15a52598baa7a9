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



def test_a_loaded_document_leaves_the_full_collections_and_is_still_freed():
    import gc

    from ssd.base.memory import freeze_loaded_data

    try:
        doc = {"images": [{"file": f"{k}.jpg", "detections": [{"conf": 0.1, "bbox": [0.1, 0.2, 0.3, 0.4]}]}
                          for k in range(20_000)]}
        before = gc.get_freeze_count()
        frozen = freeze_loaded_data()
        assert frozen >= before + 3 * 20_000               # each entry, its list, its detection, its box
        first = doc["images"][0]
        assert not any(o is first for g in range(3) for o in gc.get_objects(g))    # no full pass walks it
        del first
        del doc                                            # no cycles: reference counting frees it, frozen
        assert gc.get_freeze_count() <= frozen - 3 * 20_000
    finally:
        gc.unfreeze()
