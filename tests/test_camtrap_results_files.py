"""Which ``.json`` files of a run folder the Camera traps page offers as results: only those whose
first few kilobytes have the MegaDetector results document's shape, sniffed once per file version."""
import json
import os
import tracemalloc

from ssd.camtrap import results_files
from ssd.camtrap.results_files import is_results_file
from ssd.jobs.camera import BATCH_SETTINGS, run_results_files

CATS = {"1": "animal", "2": "person"}
ENTRY = {"file": "cam1/a.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}]}


def _run_folder(root):
    run = root / "season"
    run.mkdir(parents=True)
    (run / BATCH_SETTINGS).write_text("{}")
    write = lambda name, doc: (run / name).write_text(json.dumps(doc, indent=1))   # noqa: E731
    write("results.json", {"info": {"format_version": "1.6"}, "detection_categories": CATS, "images": [ENTRY]})
    write("megadetector.json", {"images": [ENTRY] * 200, "detection_categories": CATS, "info": {}})  # images first
    write("results.reviewed.json", {"images": [], "detection_categories": CATS, "info": {}})
    write("coco.json", {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [], "categories": []})
    write("notes.json", {"note": "not results", "images_seen": 3})
    write("list.json", [ENTRY])
    (run / "big.json").write_bytes(b'{"blob": "' + b"x" * 6_000_000 + b'", "images": [{"file": "a.jpg"}]}')
    (run / "broken.json").write_bytes(b"\xff\xfe\x00garbage")
    return run


def test_only_megadetector_results_are_listed(tmp_path):
    results_files.is_results_file.cache_clear()
    run = _run_folder(tmp_path)
    tracemalloc.start()
    listed = run_results_files(str(tmp_path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sorted(os.path.basename(p) for p in listed) == ["megadetector.json", "results.json",
                                                            "results.reviewed.json"]
    assert peak < 1_000_000, peak               # big.json (6 MB) was never read whole


def test_a_rerun_reads_no_file_until_one_changes(tmp_path, monkeypatch):
    results_files.is_results_file.cache_clear()
    run = _run_folder(tmp_path)
    reads = []
    real = results_files._prefix
    monkeypatch.setattr(results_files, "_prefix", lambda path: reads.append(path) or real(path))
    first = run_results_files(str(tmp_path))
    assert len(reads) == 8
    assert run_results_files(str(tmp_path)) == first and len(reads) == 8     # cached by (path, size, mtime_ns)
    (run / "notes.json").write_text(json.dumps({"detection_categories": CATS, "images": [ENTRY]}))
    assert str(run / "notes.json") in run_results_files(str(tmp_path))
    assert reads[8:] == [str(run / "notes.json")]


def test_is_results_file_on_odd_files(tmp_path):
    results_files.is_results_file.cache_clear()
    assert not is_results_file(str(tmp_path / "missing.json"))
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert not is_results_file(str(empty))
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({"images": [ENTRY]}).encode())
    assert is_results_file(str(bom))
