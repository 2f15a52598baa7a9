"""A season's batch run against careless and hostile conditions: a wrong --checkpoint, a full disk,
file names that are not UTF-8 or carry terminal escapes or formulas, unreadable subfolders, a
killed writer's temp files. Each test failed before its fix."""
from __future__ import annotations

import csv
import errno
import glob
import io
import json
import os
import subprocess
import sys
import threading

import pytest
from PIL import Image

from ssd.camtrap.batch_run import run_batch
from ssd.camtrap.settings import RunSettings
from ssd.cli.main import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")


@pytest.fixture(scope="module")
def detector():
    from ssd.inference.detector import Detector

    return Detector.load(MODEL)


def _photo(path, shade: int = 80, size=(96, 72)) -> None:
    Image.new("RGB", size, (shade, 120, 255 - shade)).save(path)


def _photos(folder, n: int, prefix: str = "img") -> None:
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        _photo(os.path.join(folder, f"{prefix}{i:05d}.jpg"), 10 * i % 250)


def _without_times(doc):
    doc = json.loads(json.dumps(doc))
    doc["info"].pop("detection_completion_time", None)
    return doc


class _StopAfter(threading.Event):
    """A stop request that arrives after ``n`` images (what Ctrl-C does mid-run)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        return self.n < 0


# ------------------------------------------------------------------ --checkpoint must be ours

@pytest.mark.parametrize("which", ["an image being processed", "another file"])
def test_a_checkpoint_path_that_is_not_a_journal_is_refused_and_left_alone(tmp_path, capsys, which):
    photos = tmp_path / "photos"
    _photos(photos, 5)
    target = photos / "img00003.jpg" if which.startswith("an image") else tmp_path / "notes.txt"
    if not target.exists():
        target.write_text("my notes")
    before = target.read_bytes()
    rc = main(["detect", "--model", MODEL, str(photos), "--checkpoint", str(target),
               "--json", str(tmp_path / "out.json"), "--quiet"])
    err = capsys.readouterr().err
    why = "it is an image or video" if which.startswith("an image") else "not a batch journal"
    assert rc == 2 and why in err and target.name in err
    assert target.read_bytes() == before and not (tmp_path / "out.json").exists()
    assert not glob.glob(str(target.parent / ".*.tmp"))


# ------------------------------------------------------------------ a full disk

def _can_mount_tmpfs(path) -> bool:
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_is_one_error_line_leaves_no_litter_and_resumes(tmp_path):
    full = tmp_path / "F"
    if not _can_mount_tmpfs(full):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        photos = tmp_path / "photos"
        _photos(photos, 60)
        argv = [sys.executable, "-m", "ssd", "detect", "--model", MODEL, str(photos), "--json",
                str(full / "out.json"), "--floor", "0.005", "--checkpoint-every", "5", "--quiet"]
        r = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and r.stderr.count("error:") == 1, r.stderr
        assert "No space left" in r.stderr and "--resume" in r.stderr
        left = os.listdir(full)
        assert not [n for n in left if n.endswith(".tmp")] and "out.json" not in left, left
        subprocess.run(["mount", "-o", "remount,size=20m", str(full)], check=True)
        r = subprocess.run(argv + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        resumed = json.loads((full / "out.json").read_text())
        r = subprocess.run(argv[:8] + [str(tmp_path / "clean.json")] + argv[9:], cwd=REPO, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        assert _without_times(resumed) == _without_times(json.loads((tmp_path / "clean.json").read_text()))
        assert sorted(os.listdir(full)) == ["out.json"]
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)


def test_a_full_disk_while_the_journal_is_written_keeps_the_journal_clean(tmp_path, detector, monkeypatch):
    """The same without root: the journal's writes fail with ENOSPC after a checkpoint."""
    from ssd.base.errors import OutputError
    from ssd.camtrap import run_store

    photos = tmp_path / "photos"
    _photos(photos, 12)
    opts = RunSettings(model=MODEL, inputs=(str(photos),), out_json=str(tmp_path / "out.json"), checkpoint_every=4)
    real_add = run_store.RunStore.add
    calls = {"n": 0}

    def add_until_full(self, i, text):
        calls["n"] += 1
        if calls["n"] > 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_add(self, i, text)

    monkeypatch.setattr(run_store.RunStore, "add", add_until_full)
    with pytest.raises(OutputError, match="No space left.*--resume"):
        run_batch(opts, detector, stream=None)
    monkeypatch.setattr(run_store.RunStore, "add", real_add)
    assert not glob.glob(str(tmp_path / ".*.tmp")) and not (tmp_path / "out.json").exists()
    resumed = run_batch(RunSettings(**{**opts.to_dict(), "inputs": (str(photos),), "resume": True}), detector,
                        stream=None)
    assert resumed.processed == 12 and resumed.failures == 0


# ------------------------------------------------------------------ names: bytes, escapes, formulas

BAD_BYTES = b"bad\xff\xfe.jpg"
ESCAPES = "\x1b]0;PWNED\x07\x1b[2Jx.jpg"
FORMULA = '=HYPERLINK("http:||evil","c").jpg'


@pytest.fixture
def odd_names(tmp_path):
    photos = tmp_path / "photos"
    _photos(photos, 3)
    _photo(os.path.join(os.fsencode(photos), BAD_BYTES), 30)
    _photo(photos / ESCAPES, 60)
    _photo(photos / FORMULA, 90)
    _photo(photos / "+cmd.jpg", 120)
    return photos


def test_non_utf8_names_are_written_escaped_the_same_in_json_csv_and_journal(odd_names, tmp_path, detector):
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    opts = RunSettings(model=MODEL, inputs=(str(odd_names),), out_json=str(out_json), out_csv=str(out_csv),
                       checkpoint_every=1)
    stopped = run_batch(opts, detector, stop=_StopAfter(4), stream=None)
    assert stopped.stopped and stopped.processed == 5
    journal = (tmp_path / "out.checkpoint.jsonl").read_bytes()
    lines = [json.loads(line) for line in journal.decode("utf-8").splitlines()]   # strict UTF-8: no lone surrogates
    assert "bad\\xff\\xfe.jpg" in [e.get("file") for e in lines]
    progress = io.StringIO()
    run_batch(RunSettings(**{**opts.to_dict(), "inputs": (str(odd_names),), "resume": True}), detector,
              stream=progress)
    first = next(l for l in progress.getvalue().splitlines() if l.startswith("running:"))
    assert first.startswith("running: 5/7 images")   # the 5 done, the odd names among them, not redone
    text = out_json.read_text(encoding="utf-8")
    names = [im["file"] for im in json.loads(text)["images"]]
    assert "bad\\xff\\xfe.jpg" in names and "\\ud" not in text
    rows = list(csv.reader(out_csv.open(encoding="utf-8", newline="")))
    assert "bad\\xff\\xfe.jpg" in {r[0] for r in rows}
    assert all(im["failure"] is None for im in json.loads(text)["images"])


def test_csv_cells_never_start_a_formula(odd_names, tmp_path, capsys):
    out_csv = tmp_path / "out.csv"
    assert main(["detect", "--model", MODEL, str(odd_names), "--csv", str(out_csv), "--quiet"]) == 0
    rows = list(csv.reader(out_csv.open(encoding="utf-8", newline="")))
    files = {r[0] for r in rows[1:]}
    assert "'" + FORMULA in files and "'+cmd.jpg" in files and FORMULA not in files
    assert not [c for r in rows for c in r if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    from ssd.camtrap.results import results_csv

    doc = {"detection_categories": {"1": "@SUM(A1)"}, "images": [
        {"file": "-a.jpg", "width": 10, "height": 10, "failure": None,
         "detections": [{"category": "1", "conf": 0.5, "bbox": [0.1, 0.1, 0.2, 0.2]}]},
        {"file": "b.jpg", "failure": "=cmd|' /C calc'!A0", "detections": None}]}
    cells = [c for r in csv.reader(results_csv(doc).splitlines()) for c in r]
    assert "'-a.jpg" in cells and "'@SUM(A1)" in cells and "'=cmd|' /C calc'!A0" in cells


def test_the_terminal_never_gets_control_characters_from_a_name(odd_names, tmp_path, capsys):
    (odd_names / "\x1b[31mnot-an-image\x07.jpg").write_text("text")
    rc = main(["detect", "--model", MODEL, str(odd_names), "--threshold", "0"])
    cap = capsys.readouterr()
    printed = cap.out + cap.err
    assert rc == 0                                  # completed: the failures are entries
    assert not [c for c in printed if ord(c) < 32 and c not in "\n" or 0x7f <= ord(c) < 0xa0]
    assert "\\x1b]0;PWNED\\x07\\x1b[2Jx.jpg" in cap.out and "\\x1b[31mnot-an-image\\x07.jpg" in cap.err
    assert "bad\\xff\\xfe.jpg" in cap.out


# ------------------------------------------------------------------ folders that cannot be listed

def _deep_folder(root, length: int = 4200) -> str:
    """A folder whose path is longer than PATH_MAX (made one level at a time, relative to its parent)."""
    name = "d" * 200
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(length // 201 + 1):
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        made = os.open("x.jpg", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.close(made)
    finally:
        os.close(fd)
    return name


def test_an_unlistable_subfolder_is_a_named_failure_and_the_rest_is_processed(tmp_path, capsys, monkeypatch):
    photos = tmp_path / "photos"
    _photos(photos / "cam1", 2)
    _photos(photos / "cam2", 2)
    _photos(photos / "locked", 1)
    _deep_folder(str(photos / "cam2"))
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):          # what a folder without read permission does
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "out.json"
    rc = main(["detect", "--model", MODEL, str(photos), "--recursive", "--json", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0
    doc = json.loads(out.read_text())
    failed = {im["file"]: im["failure"] for im in doc["images"] if im["failure"]}
    assert "locked/" in failed and "Permission denied" in failed["locked/"]
    deep = [f for f in failed if f.startswith("cam2/ddd")]
    assert len(deep) == 1 and "too long" in failed[deep[0]]
    assert sum(1 for im in doc["images"] if im["failure"] is None) == 4
    assert "locked" in err and str(photos) + ":" not in err


# ------------------------------------------------------------------ a killed writer's temp files

def test_temp_files_a_killed_run_left_beside_its_outputs_are_removed(tmp_path, detector):
    photos = tmp_path / "photos"
    _photos(photos, 2)
    for stale in (".k600.csv.ab12cd_9.tmp", ".k600.json.zz0011aa.tmp", ".k600.checkpoint.jsonl.q1w2e3r4.tmp"):
        (tmp_path / stale).write_text("half a file")
    (tmp_path / ".other.csv.ab12cd_9.tmp").write_text("not ours")
    opts = RunSettings(model=MODEL, inputs=(str(photos),), out_json=str(tmp_path / "k600.json"),
                       out_csv=str(tmp_path / "k600.csv"))
    run_batch(opts, detector, stream=None)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".tmp")) == [".other.csv.ab12cd_9.tmp"]


# ------------------------------------------------------------------ linked folders and names with CR

def test_a_linked_camera_folder_is_walked_and_a_link_loop_ends(tmp_path):
    """A card's folder linked into the season (common on a shared drive) is part of the run, as in
    MegaDetector's walk; a link back to a folder above is followed once, never round and round."""
    from ssd.camtrap.folders import list_inputs

    season, card = tmp_path / "season", tmp_path / "card-07"
    _photos(season / "cam1", 2)
    _photos(card, 3)
    os.symlink(card, season / "cam2")
    os.symlink(season, season / "cam1" / "back-up")             # a loop
    files = list_inputs([str(season)], recursive=True)
    ok = [n for i, n in enumerate(files.names) if i not in files.failures]
    assert ok == ["cam1/img00000.jpg", "cam1/img00001.jpg", "cam2/img00000.jpg", "cam2/img00001.jpg",
                  "cam2/img00002.jpg"]
    assert [files.names[i] for i in files.failures] == ["cam1/back-up/"]
    assert "loop" in files.failures[next(iter(files.failures))]
    os.symlink(season / "cam1", card / "to-cam1")                # a loop through two links, neither
    os.symlink(card, season / "cam1" / "to-card")                # leading to a folder above itself
    files = list_inputs([str(season)], recursive=True)
    assert sorted(files.names[i] for i in files.failures) == [
        "cam1/back-up/", "cam1/to-card/to-cam1/", "cam2/to-cam1/back-up/", "cam2/to-cam1/to-card/"]
    assert len(files.names) == 4 + 2 + 3 + 3 + 2


def test_a_carriage_return_in_a_name_keeps_every_csv_row_whole(tmp_path):
    """A name with a CR (a file copied from an old Mac card) is one cell, not a broken row, in the
    detections CSV and in Camtrap DP's tables."""
    from ssd.camtrap.camtrap_dp import write_table
    from ssd.camtrap.results import results_csv

    name = "cam1/odd\rname.jpg"
    doc = {"detection_categories": {"1": "animal"}, "images": [
        {"file": name, "width": 10, "height": 10, "failure": None,
         "detections": [{"category": "1", "conf": 0.5, "bbox": [0.1, 0.1, 0.2, 0.2]}]},
        {"file": "cam1/b.jpg", "width": 10, "height": 10, "failure": None, "detections": []}]}
    rows = list(csv.reader(io.StringIO(results_csv(doc), newline="")))
    assert [r[0] for r in rows[1:]] == [name, "cam1/b.jpg"] and len({len(r) for r in rows}) == 1
    buf = io.StringIO(newline="")
    write_table(buf, "media", [{"mediaID": name, "filePath": name}, {"mediaID": "b", "filePath": "b"}])
    rows = list(csv.reader(io.StringIO(buf.getvalue(), newline="")))
    assert [r[0] for r in rows[1:]] == [name, "b"] and len({len(r) for r in rows}) == 1


def test_the_workbook_takes_a_name_with_control_characters(tmp_path):
    """XLSX (XML) cannot hold most control characters: such a name is written escaped, as the
    terminal shows it, instead of stopping the export with a traceback."""
    from openpyxl import load_workbook

    from ssd.camtrap.spreadsheet import write_xlsx

    doc = {"info": {"detector": "x"}, "detection_categories": {"1": "animal"}, "images": [
        {"file": ESCAPES, "width": 10, "height": 10, "failure": None,
         "detections": [{"category": "1", "conf": 0.5, "bbox": [0.1, 0.1, 0.2, 0.2]}]},
        {"file": "b\x00.jpg", "failure": "bad\x07 file", "detections": None}]}
    write_xlsx(doc, str(tmp_path / "r.xlsx"), 0.2)
    rows = list(load_workbook(tmp_path / "r.xlsx")["images"].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["\\x1b]0;PWNED\\x07\\x1b[2Jx.jpg", "b\\x00.jpg"]
