"""``results export --format csv`` and the page's CSV download hold a chunk of entries, not the file.

Why: the CSV lists every box down to the results floor, ~84 an image; a season of 100,000 images
parsed whole needed ~4.3 GB to write it. Read a chunk at a time and written as it goes, the export
holds a few MB whatever the season's size (the page's bytes: the CSV's own size besides).
"""
from __future__ import annotations

import tracemalloc

from ssd.cli.main import main
from tests.test_results_compare_memory import BOXES, IMAGES, _season

#: What the command may hold at its peak, whatever the number of images: reading buffers and one
#: chunk of entries parsed. The whole-file CSV (``results_csv(read_results(...))``) peaked at
#: 90 MiB here.
FIXED_BYTES = 12 * 2 ** 20


def _peak(call):
    tracemalloc.start()
    try:
        value = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, peak


def test_the_export_holds_a_chunk_not_the_season(tmp_path, capsys):
    path = tmp_path / "a.json"
    _season(path, 0)
    out = tmp_path / "a.csv"
    rc, peak = _peak(lambda: main(["results", "export", str(path), "--format", "csv", "--out", str(out)]))
    assert rc == 0, capsys.readouterr().err
    with open(out, encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == 1 + IMAGES * BOXES
    assert peak < FIXED_BYTES, f"peak {peak / 2 ** 20:.0f} MiB for {IMAGES} images of {BOXES} boxes"


def test_the_page_download_holds_the_csv_bytes_and_a_chunk(tmp_path):
    from ssd.camtrap.results_csv import results_csv_bytes

    path = tmp_path / "a.json"
    _season(path, 0)
    data, peak = _peak(lambda: results_csv_bytes(str(path)))
    assert data.count(b"\n") == 1 + IMAGES * BOXES
    assert peak < FIXED_BYTES + 1.1 * len(data), (f"peak {peak / 2 ** 20:.0f} MiB for a CSV of "
                                                 f"{len(data) / 2 ** 20:.0f} MiB")
