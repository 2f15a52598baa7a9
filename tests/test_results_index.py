"""``results_index``: a results file read as it goes, each entry read back from where it lies.

Why: the Camera traps page is to keep a compact record per image and read the boxes of only the
images it shows, so an entry read back must be exactly the entry ``read_results`` parses (BOM,
names beyond ASCII, any place the reading buffer cuts the text, MegaDetector's order with the
categories after the images), a changed file must be refused (never another version's boxes), and
opening must hold memory in proportion to images, not boxes.
"""
from __future__ import annotations

import json
import os
import tracemalloc

import pytest

import ssd.camtrap.results_stream as results_stream
from ssd.camtrap.megadetector import read_results
from ssd.camtrap.results_index import ResultsChanged, read_results_indexed
from tests.test_results_compare_memory import IMAGES, _season
from tests.test_results_compare_pinned import _det, _doc, _fail, _ok

FIXED_BYTES = 12 * 2 ** 20          # as the CLI's memory tests: buffers and one chunk parsed
PER_IMAGE_BYTES = 1500              # a name kept, and 24 bytes of index


def _names(head):
    return lambda entry: entry["file"]


def _images():
    return [_ok("siteA/cam1/é ü 😀.jpg", _det("1", 0.9), _det("2", 0.01, suspect=True), datetime="2024:06:01 10:00:00"),
            _fail("siteA/cam1/b.jpg"),
            _ok("siteA/cam1/c \\\"quoted\\\" \\\\ back.jpg"),
            _ok("site B/日本.jpg", *[_det("3", k / 100) for k in range(40)])]


def _write(path, doc, *, bom=False, indent=None, categories_last=False):
    if categories_last:                 # MegaDetector's own order: read in a second pass
        doc = {k: v for k, v in doc.items() if k != "detection_categories"} | {
            "detection_categories": doc["detection_categories"]}
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


@pytest.mark.parametrize("read_chars", [7, 2 ** 20])
@pytest.mark.parametrize("bom,indent,categories_last", [(False, None, False), (True, 1, False), (False, 2, True)])
def test_each_entry_read_back_is_the_entry_parsed(tmp_path, monkeypatch, read_chars, bom, indent, categories_last):
    monkeypatch.setattr(results_stream, "READ_CHARS", read_chars)
    path = tmp_path / "r.json"
    _write(path, _doc(_images()), bom=bom, indent=indent, categories_last=categories_last)
    doc, index = read_results_indexed(str(path), _names)
    whole = read_results(str(path))
    assert index is not None and len(index) == len(whole["images"])
    assert doc["images"] == [im["file"] for im in whole["images"]]
    assert [index.entry(k) for k in range(len(index))] == whole["images"]
    assert {k: v for k, v in doc.items() if k != "images"} == {k: v for k, v in whole.items() if k != "images"}


def test_a_file_read_whole_has_no_index(tmp_path):
    """A file ``read_results`` reads but the stream hands on (a top-level key twice): no spans."""
    path = tmp_path / "r.json"
    text = json.dumps(_doc(_images()))
    path.write_text('{"info": {}, ' + text[1:], encoding="utf-8")
    doc, index = read_results_indexed(str(path), _names)
    assert index is None
    assert doc["images"] == [im["file"] for im in read_results(str(path))["images"]]


@pytest.mark.parametrize("change", ["rewritten", "same size and time", "removed", "a folder now"])
def test_a_changed_file_is_refused_not_read(tmp_path, change):
    path = tmp_path / "r.json"
    _write(path, _doc(_images()))
    _, index = read_results_indexed(str(path), _names)
    assert index.entry(3)["file"] == "site B/日本.jpg"
    st = os.stat(path)
    if change in ("removed", "a folder now"):
        path.unlink()
        if change == "a folder now":
            path.mkdir()
    else:
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"conf": 0.39', '"conf": 0.93'), encoding="utf-8")     # same length
        assert os.path.getsize(path) == st.st_size
        if change == "same size and time":
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ResultsChanged, match="changed since it was opened"):
        index.entry(3)


def test_opening_holds_memory_in_proportion_to_images_not_boxes(tmp_path):
    path = tmp_path / "a.json"
    _season(path, 0)                    # 2,000 images of 84 boxes
    tracemalloc.start()
    try:
        doc, index = read_results_indexed(str(path), _names)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(doc["images"]) == len(index) == IMAGES
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {IMAGES} images"
    assert len(index.entry(IMAGES - 1)["detections"]) == 84
