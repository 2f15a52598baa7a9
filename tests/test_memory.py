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


def test_the_collector_is_paused_for_the_block_and_then_as_it_was():
    was = gc.isenabled()
    try:
        gc.enable()
        with memory.collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()                                     # a caller that had it off keeps it off
        with memory.collector_paused():
            pass
        assert not gc.isenabled()
        gc.enable()
        try:
            with memory.collector_paused():
                raise KeyError("x")
        except KeyError:
            pass
        assert gc.isenabled()                            # back on after an error in the block
    finally:
        (gc.enable if was else gc.disable)()


def test_overlapping_pauses_in_two_threads_end_with_the_last():
    import threading

    entered, leave = threading.Event(), threading.Event()

    def other() -> None:
        with memory.collector_paused():
            entered.set()
            leave.wait(10)

    gc.enable()
    t = threading.Thread(target=other)
    t.start()
    entered.wait(10)
    with memory.collector_paused():
        pass
    assert not gc.isenabled()                            # the other thread's block is still running
    leave.set()
    t.join()
    assert gc.isenabled()


def test_a_large_json_file_held_is_frozen_and_reads_as_without(tmp_path, monkeypatch):
    import json

    from ssd.base import json_file
    from ssd.base.json_file import read_json_file

    doc = {"images": [{"file": f"{k}.jpg", "detections": [{"conf": 0.5, "bbox": [0.1, 0.2, 0.3, 0.4]}]}
                      for k in range(5_000)]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    before = gc.get_freeze_count()
    assert read_json_file(str(path), 10**8, hold=True) == doc
    assert gc.get_freeze_count() == before                      # small: nothing frozen for it
    monkeypatch.setattr(json_file, "FREEZE_CHARS", 1000)       # as if the file were large
    try:
        held = read_json_file(str(path), 10**8, hold=True)
        assert held == doc == read_json_file(str(path), 10**8)
        assert gc.get_freeze_count() >= before + 3 * 5_000        # out of every later collection
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def test_reading_a_small_json_file_asks_for_memory_in_proportion_to_it(tmp_path):
    """``read_regular`` read ``max_bytes + 1``: Python allocates a read's whole size before the file
    answers, so every results file, however small, asked for 2 GiB (``MAX_RESULTS_BYTES``), and every
    state file for 256 MiB: under a virtual-memory limit (``ulimit -v`` on a shared server) reading a
    100-byte results file ended in MemoryError. A file that grows while read is still capped."""
    import tracemalloc

    from ssd.base.json_file import JSONFileError, read_regular

    path = tmp_path / "small.json"
    path.write_bytes(b'{"images": []}')
    tracemalloc.start()
    try:
        assert read_regular(str(path), 2 * 1024 ** 3) == b'{"images": []}'
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20, f"{peak / 2 ** 20:.0f} MiB asked to read 14 bytes"
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 5000)
    try:
        read_regular(str(big), 4999)
    except JSONFileError as err:
        assert "4,999" in str(err)
    else:
        raise AssertionError("a file over the cap was read")
