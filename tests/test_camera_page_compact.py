"""The Camera traps page's file held as compact records (``ssd.camtrap.page_results``): memory in
proportion to images, not boxes, and the very outputs pinned from the code that held the file
parsed whole (``tests/test_camera_page_pinned.py``): images shown, counts, episodes, sweep, and the
boxes, captions and tables of the images a page shows, read back from the file."""
from __future__ import annotations

import tracemalloc

import pytest

import ssd.camtrap.results_stream as results_stream
from ssd.camtrap.page_results import in_full, open_compact
from tests.test_camera_page_pinned import assert_pinned, outputs
from tests.test_results_compare_memory import IMAGES, _season

FIXED_BYTES = 12 * 2 ** 20          # reading buffers and one chunk of entries parsed
PER_IMAGE_BYTES = 2048              # a record, a list of 84 shared boxless detections, 24 bytes of index


def _compact(path: str):
    doc, index = open_compact(path)
    assert index is not None
    return doc, lambda shown_doc: (lambda entries: in_full(shown_doc, index, entries))


@pytest.mark.parametrize("read_chars", [7, 2 ** 20])
def test_outputs_are_those_pinned(tmp_path, monkeypatch, read_chars):
    monkeypatch.setattr(results_stream, "READ_CHARS", read_chars)
    assert_pinned(outputs(tmp_path, _compact))


def test_opening_holds_memory_in_proportion_to_images_not_boxes(tmp_path):
    path = tmp_path / "a.json"
    _season(path, 0)                    # 2,000 images of 84 boxes (the whole file parsed: ~77 MiB)
    tracemalloc.start()
    try:
        doc, index = open_compact(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(doc["images"]) == len(index) == IMAGES
    assert all(len(im["detections"]) == 84 and "bbox" not in im["detections"][0] for im in doc["images"])
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {IMAGES} images"
    last = in_full(doc, index, doc["images"][-1:])[0]
    assert len(last["detections"]) == 84 and len(last["detections"][0]["bbox"]) == 4


def test_the_whole_document_for_downloads_and_exports_is_the_file_parsed(tmp_path):
    """The JSON and CSV downloads, the exports, a split and a cleaned file are made of ``whole_doc``:
    every entry as ``read_results`` parses it, and regrouped as the parsed file regroups."""
    from ssd.camtrap.cameras import CameraRule
    from ssd.camtrap.episodes import regrouped
    from ssd.camtrap.megadetector import read_results
    from ssd.camtrap.page_results import whole_doc
    from tests.test_camera_page_pinned import fixtures

    for path in fixtures(tmp_path).values():
        doc, index = open_compact(path)
        parsed = read_results(path)
        assert whole_doc(doc, index) == parsed
        assert whole_doc(regrouped(doc, 30.0, CameraRule(1)), index) == regrouped(parsed, 30.0, CameraRule(1))


def _exports(doc, shown, root):
    """What the page's export buttons make of ``doc``: the COCO file, the workbook's cells (less the
    moment of the export) and the Camtrap DP zip's tables, or each one's refusal."""
    import io
    import zipfile

    from openpyxl import load_workbook

    from ssd.base.errors import SSDError
    from ssd.camtrap.camtrap_dp import PackageOptions, camtrap_dp_zip
    from ssd.camtrap.coco_export import coco_bytes
    from ssd.camtrap.spreadsheet import xlsx_bytes

    out = {}
    for name, make in (("coco", lambda: coco_bytes(doc, shown, root)[0]),
                       ("xlsx", lambda: [[list(r) for r in ws.iter_rows(values_only=True) if r[0] != "exported"]
                                         for ws in load_workbook(io.BytesIO(xlsx_bytes(doc, shown))).worksheets]),
                       ("zip", lambda: {n: z.read(n) for z in [zipfile.ZipFile(io.BytesIO(camtrap_dp_zip(
                           doc, shown, PackageOptions(default_location=(52.1, 4.3), image_root=root))))]
                           for n in z.namelist() if n.endswith(".csv")})):
        try:
            out[name] = make()
        except SSDError as err:
            out[name] = f"refused: {err}"
    return out


def test_the_exports_of_the_shown_document_are_those_of_the_whole(tmp_path):
    """``shown_doc`` (each entry read back with its boxes at the threshold only) makes the very files
    ``whole_doc`` made, at the thresholds a page can set."""
    from ssd.camtrap.page_results import shown_doc, whole_doc
    from ssd.inference.filtering import ShownFilter
    from tests.test_camera_page_pinned import fixtures

    filters = [ShownFilter.of(0.2), ShownFilter.of(0.05, hide_suspect=False),
               ShownFilter.of(0.5, per_class={"person": 0.1})]
    for path in fixtures(tmp_path).values():
        doc, index = open_compact(path)
        for shown in filters:
            assert _exports(shown_doc(doc, index, shown.lowest()), shown, str(tmp_path)) == \
                _exports(whole_doc(doc, index), shown, str(tmp_path)), (path, shown)


def test_the_shown_document_holds_memory_in_proportion_to_images_not_boxes(tmp_path):
    """The page's exports (Camtrap DP, XLSX, COCO) read the season back with only the boxes shown:
    ``whole_doc`` held all 84 an image (~77 MiB here)."""
    from ssd.camtrap.page_results import shown_doc
    from ssd.inference.filtering import ShownFilter

    path = tmp_path / "a.json"
    _season(path, 0)
    doc, index = open_compact(str(path))
    shown = ShownFilter.of(0.2)
    tracemalloc.start()
    try:
        made = shown_doc(doc, index, shown.lowest())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    boxes = sum(len(im["detections"]) for im in made["images"])
    assert len(made["images"]) == IMAGES and 0 < boxes < IMAGES * 84
    bound = FIXED_BYTES + PER_IMAGE_BYTES * IMAGES + 300 * boxes
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {IMAGES} images"


def test_the_json_download_is_the_whole_document_written_an_entry_at_a_time(tmp_path):
    """The page's JSON download is ``whole_doc`` (its names below a path prefix, its episodes as
    regrouped), written an entry at a time: the same document, parsed back."""
    import json

    from ssd.camtrap.cameras import CameraRule
    from ssd.camtrap.episodes import regrouped
    from ssd.camtrap.page_results import whole_doc, whole_json_bytes
    from tests.test_camera_page_pinned import fixtures

    for path in fixtures(tmp_path).values():
        doc, index = open_compact(path)
        for shown in (doc, regrouped(doc, 30.0, CameraRule(1))):
            assert json.loads(whole_json_bytes(shown, index)) == whole_doc(shown, index), path


def test_the_csv_download_is_the_csv_of_the_whole_document(tmp_path):
    """The page's CSV download comes from the file on disk (``results_csv``, the command's code):
    the CSV the whole document made."""
    from ssd.camtrap.page_results import whole_doc
    from ssd.camtrap.results import results_csv
    from ssd.camtrap.results_csv import results_csv_bytes
    from tests.test_camera_page_pinned import fixtures

    for path in fixtures(tmp_path).values():
        doc, index = open_compact(path)
        assert results_csv_bytes(path) == results_csv(whole_doc(doc, index)).encode("utf-8"), path


def test_the_json_download_holds_its_bytes_not_the_season(tmp_path):
    """``json.dumps(whole_doc(...))`` held every box of the season at once (~150 MiB here)."""
    from ssd.camtrap.page_results import whole_json_bytes

    path = tmp_path / "a.json"
    _season(path, 0)
    doc, index = open_compact(str(path))
    tracemalloc.start()
    try:
        data = whole_json_bytes(doc, index)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.count(b'"bbox"') == IMAGES * 84
    bound = FIXED_BYTES + 1.1 * len(data)
    assert peak < bound, f"peak {peak / 2 ** 20:.0f} MiB over {bound / 2 ** 20:.0f} MiB for {len(data)} bytes"


def test_the_json_download_of_the_file_as_opened_is_its_bytes_and_a_changed_file_refused(tmp_path):
    """Without a path prefix or regrouped episodes the download is the file itself: its bytes, not
    parsed and written again (~8 s at 20,000 images of 84 boxes), checked to be the version opened."""
    import os

    from ssd.camtrap.cameras import CameraRule
    from ssd.camtrap.episodes import regrouped
    from ssd.camtrap.page_results import results_json_bytes, whole_json_bytes
    from ssd.camtrap.results_index import ResultsChanged

    path = tmp_path / "a.json"
    _season(path, 0)
    doc, index = open_compact(str(path))
    assert results_json_bytes(doc, index, as_opened=True) == path.read_bytes()
    other = regrouped(doc, 30.0, CameraRule(1))
    assert results_json_bytes(other, index, as_opened=False) == whole_json_bytes(other, index)
    text = path.read_bytes()
    stat = os.stat(path)
    path.write_bytes(text.replace(b"IMG_000007", b"IMG_000008", 1))      # same size, time put back
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ResultsChanged):
        results_json_bytes(doc, index, as_opened=True)
