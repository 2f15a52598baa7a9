"""A season of 10^6 files, in the parts around the network: the walk's order (whatever the names,
however deep the folders), the progress a ten-hour run logs, the table printed at the end.

Why these: the walk lists each folder once, sorted, depth first (``folders._walk``) instead of
sorting the whole season's names at the end, which must give exactly the order of ``sort_key``;
the progress and the table must stay readable and flat in memory at that size (figures in
docs/SCALING.md).
"""
import os

import pytest

from ssd.camtrap.folders import list_inputs, shard
from ssd.camtrap.megadetector import sort_key

# names whose order as one string differs from their order by path components
TRICKY = ["a/x.jpg", "a.b.jpg", "a-b/y.jpg", "a b.jpg", "A/z.jpg", "b/c/d/e.jpg", "b/c.jpg", "b/cc/r.jpg",
          "b/c/f.JPG", "b0.jpg", "b/c-/g.jpg", "\u00e9/h.jpg", "e/i.jpg", "IMG_0010.JPG", "IMG_0009.JPG"]


def test_the_walk_lists_files_in_path_component_order(tmp_path):
    for rel in TRICKY:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    files = list_inputs([str(tmp_path)], recursive=True)
    assert files.names == sorted(TRICKY, key=sort_key)
    assert files.names[:3] == ["A/z.jpg", "IMG_0009.JPG", "IMG_0010.JPG"]
    assert files.names.index("b/c/f.JPG") < files.names.index("b/c-/g.jpg") < files.names.index("b/c.jpg")
    assert files.paths == [os.path.join(str(tmp_path), n) for n in files.names]
    assert shard(files, 2, 3).names == files.names[1::3]


def _chain(top, depth: int) -> None:
    """``top/d/d/…/d/deep.jpg``, ``depth`` folders, made one level at a time (relative to its parent)."""
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.close(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)


def _remove_chain(top) -> None:
    """Remove what ``_chain`` made, bottom up: pytest's own clean-up (``shutil.rmtree``) recurses
    per level and would fail on it, in every later session that shares the temporary folder."""
    fds = [os.open(top, os.O_RDONLY)]
    while "d" in os.listdir(fds[-1]):
        fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
    os.unlink("deep.jpg", dir_fd=fds[-1])
    for k in range(len(fds) - 1, 0, -1):
        os.close(fds[k])
        os.rmdir("d", dir_fd=fds[k - 1])
    os.close(fds[0])


def test_folders_nested_deeper_than_the_recursion_limit_are_walked(tmp_path):
    """A walk that recursed per level (``os.walk`` does on Python 3.11) stopped with RecursionError."""
    import sys

    depth = sys.getrecursionlimit() + 50
    _chain(tmp_path, depth)
    try:
        (tmp_path / "top.jpg").write_bytes(b"")
        files = list_inputs([str(tmp_path)], recursive=True)
        assert files.names == ["d/" * depth + "deep.jpg", "top.jpg"] and not files.failures
    finally:
        _remove_chain(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["top.jpg"]


# ------------------------------------------------------------------ progress over a long run

class _Clock:
    """``time.time`` for the progress reporter, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class _Log:
    """A log file: what a run's stderr is under ``nohup``, SLURM or a scheduler (not a terminal)."""

    def __init__(self, tty: bool) -> None:
        self.lines, self.tty = [], tty

    def write(self, text: str) -> None:
        self.lines.extend(t for t in text.splitlines() if t)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty


def _ten_hours(monkeypatch, tty: bool):
    """A season of 10^6 images at 27.8 images/s, reported after every image as ``_process`` does."""
    from ssd.camtrap import progress as reporter

    clock = _Clock()
    monkeypatch.setattr(reporter.time, "time", clock)
    log = _Log(tty)
    progress = reporter.Progress(1_000_000, 0, log, None)
    for _ in range(36_000):                 # ten hours, reported every second (28 images each)
        clock.now += 1.0
        progress.done += 28
        progress.report()
    return log.lines


def test_a_long_run_logs_a_line_a_minute_with_a_readable_eta(monkeypatch):
    lines = _ten_hours(monkeypatch, tty=False)
    assert 550 <= len(lines) <= 610              # one a minute, not one every 2 s (18,000 lines)
    assert lines[0].startswith("running: 1680/1000000 images") and "ETA 9:54:1" in lines[0]
    assert "ETA 0:00:00" in lines[-1] or "ETA 0:0" in lines[-1]
    assert all(" s," not in line for line in lines)   # never "ETA 35693 s"


def test_a_terminal_still_sees_progress_every_two_seconds(monkeypatch):
    lines = _ten_hours(monkeypatch, tty=True)
    assert 17_000 <= len(lines) <= 18_001
    assert "ETA 9:55:" in lines[0]


# ------------------------------------------------------------------ the table printed after a run

def _results_file(path, n: int) -> None:
    """A batch run's results file of ``n`` entries (as ``write_json_with_images`` streams them)."""
    from ssd.camtrap.megadetector import results_document
    from ssd.camtrap.run_checkpoint import write_json_with_images

    head = results_document([], ["animal", "person"], "m", 0.2)
    head.pop("images")
    entries = ({"file": f"cam{k % 7}/IMG_{k:05d}.JPG", "width": 64, "height": 48,
                "detections": [] if k % 5 == 0 else [{"category": "1", "conf": round(0.1 + (k % 9) / 10, 3),
                                                       "bbox": [0.1, 0.2, 0.3, 0.4]}],
                "failure": None} if k % 11 else {"file": f"bad{k}.jpg", "detections": None, "failure": "unreadable"}
               for k in range(n))
    write_json_with_images(str(path), head, entries)


def test_the_table_after_a_run_is_streamed_from_the_results_file(tmp_path):
    """Printing the table after a season's run parsed the whole results document first: 3.1 GB and
    18 s at 10^6 photos of 3 boxes (tens of GB with every box to the floor)."""
    import io
    import json
    import tracemalloc

    from ssd.camtrap.results import text_table, write_text_table
    from ssd.camtrap.run_checkpoint import read_images_json

    small, big = tmp_path / "small.json", tmp_path / "big.json"
    _results_file(small, 300)
    doc = json.loads(small.read_text())
    with open(small, encoding="utf-8") as fh:
        assert list(read_images_json(fh)) == doc["images"]
    out = io.StringIO()
    write_text_table(out, doc["detection_categories"], lambda: iter(doc["images"]), 0.2)
    assert out.getvalue() == text_table(doc, 0.2) + "\n"

    _results_file(big, 40_000)                                  # 4.4 MB of results
    sink = type("Sink", (), {"write": lambda self, text: len(text)})()

    def entries():
        with open(big, encoding="utf-8") as fh:
            yield from read_images_json(fh)

    tracemalloc.start()
    write_text_table(sink, doc["detection_categories"], entries, 0.2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000, peak                              # the document parsed: ~40 MB


def test_detect_prints_its_table_and_csv_without_parsing_the_document(tmp_path, capsys, monkeypatch):
    """``detect`` without ``--quiet`` (as the README's season command runs), ``--csv -`` and ``--json -``."""
    import json

    from PIL import Image

    from ssd.camtrap.batch_run import BatchResult
    from ssd.camtrap.results import results_csv, text_table
    from ssd.cli.main import main

    model = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "tiny-pikachu")
    for k in range(5):
        (tmp_path / "season" / f"cam{k % 2}").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (96, 72), (40 * k, 200 - 30 * k, 90)).save(tmp_path / "season" / f"cam{k % 2}" / f"{k}.jpg")
    (tmp_path / "season" / "cam0" / "notes.txt").write_text("not a photo")
    monkeypatch.setattr(BatchResult, "document", property(lambda self: pytest.fail("document parsed")))
    out = tmp_path / "season.json"
    args = ["detect", "--model", model, str(tmp_path / "season"), "--recursive", "--threshold", "0.01"]
    assert main([*args, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    table = capsys.readouterr().out
    assert table == text_table(doc, 0.01) + "\n" and table.count("\n") >= 5
    assert main([*args, "--csv", "-"]) == 0
    assert capsys.readouterr().out == results_csv(doc)
    assert main([*args, "--json", "-"]) == 0
    piped = json.loads(capsys.readouterr().out)
    assert piped["images"] == doc["images"] and piped["detection_categories"] == doc["detection_categories"]
