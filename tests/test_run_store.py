"""The batch run's append-only entry store: crash repair, old checkpoints, flat checkpoint cost.

A fake detector (deterministic boxes from each picture's mean colour, a "rock" at the same place
in every picture for repeat flagging) makes runs of hundreds of tiny JPEGs take a second or two.
"""
import csv
import io
import json
import os
import threading
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from ssd.camtrap.batch_run import run_batch
from ssd.camtrap.settings import RunSettings
from ssd.camtrap.megadetector import ResultsError
from ssd.camtrap.run_store import RunStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")     # only named in the settings: never loaded here


class FakeDetector:
    """``predict_arrays`` without a network: three boxes per picture, one always at the same place
    (``extra`` more near the floor, for entries of a few kilobytes as real ones are)."""

    input_size = 32
    classes = ["animal", "person"]

    def __init__(self, on_batch=None, extra=0):
        self.images, self.on_batch, self.extra = 0, on_batch, extra

    def predict_arrays(self, images, nms=0.45, floor=0.005):
        out = []
        for im in images:
            v = float(im.mean()) / 255.0
            ids = np.array([0, 0, 1], np.float32)
            scores = np.array([0.9, 0.3 + 0.6 * v, 0.05], np.float32)
            boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.5 * v, 0.2, 0.5 * v + 0.3, 0.6], [0.5, 0.5, 0.9, 0.9]],
                             np.float32)
            if self.extra:
                j = np.arange(self.extra, dtype=np.float32)
                ids = np.concatenate([ids, j % 2])
                scores = np.concatenate([scores, 0.01 + 0.0001 * j])
                boxes = np.concatenate([boxes, np.stack([j / 200, j / 300, j / 200 + 0.2, j / 300 + 0.1], 1)])
            out.append((ids, scores, boxes))
        self.images += len(images)
        if self.on_batch is not None:
            self.on_batch(self)
        return out


def _season(root, n, cams=3):
    """``n`` tiny JPEGs of distinct colours in ``cams`` camera folders, and one non-image."""
    for i in range(n):
        sub = root / f"cam{i % cams}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 16), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256)).save(sub / f"{i:04d}.jpg")
    (root / "cam0" / "notes.txt").write_text("not a photo")
    return str(root)


def _opts(folder, out, **kw):
    base = dict(recursive=True, out_json=str(out), checkpoint_every=5, batch_size=4, workers=1,
                flag_repeats=3, threshold=0.2)
    base.update(kw)
    return RunSettings(MODEL, [folder], **base)


def _strip(doc):
    doc = json.loads(json.dumps(doc))
    doc["info"].pop("detection_completion_time", None)
    return doc


def _stop_after(n):
    """A stop event the fake detector sets once it has seen ``n`` pictures."""
    stop = threading.Event()

    def check(det):
        if det.images >= n:
            stop.set()
    return stop, check


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    return _season(tmp_path_factory.mktemp("season"), 60)


@pytest.fixture(scope="module")
def once(season, tmp_path_factory):
    """An uninterrupted run: the JSON and CSV text every interrupted one must reproduce."""
    out = tmp_path_factory.mktemp("once") / "once.json"
    res = run_batch(_opts(season, out, out_csv=str(out.with_suffix(".csv"))), FakeDetector(), stream=None)
    assert res.suspects > 0 and res.failures == 1
    return _strip(json.loads(out.read_text())), out.with_suffix(".csv").read_text()


def test_resume_after_a_torn_line_and_a_duplicated_entry_equals_an_uninterrupted_run(season, once, tmp_path):
    out = tmp_path / "season.json"
    stop, check = _stop_after(20)
    res = run_batch(_opts(season, out), FakeDetector(check), stop=stop, stream=None)
    journal = tmp_path / "season.checkpoint.jsonl"
    assert res.stopped and res.checkpoint == str(journal) and not out.exists()
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) == 1 + res.processed and 10 < res.processed < 61
    pictures_done = sum(1 for line in lines[1:] if b'"detections":null' not in line)
    # a crash redid an entry (a second line for one file) and was killed half-way through the next
    with open(journal, "ab") as fh:
        fh.write(lines[3])
        fh.write(lines[5][: len(lines[5]) // 2])
    det = FakeDetector()
    res = run_batch(_opts(season, out, resume=True, out_csv=str(tmp_path / "season.csv")), det, stream=None)
    assert det.images == 60 - pictures_done     # nothing done is redone (notes.txt never reaches the network)
    assert not journal.exists()
    assert _strip(json.loads(out.read_text())) == once[0]
    assert (tmp_path / "season.csv").read_text() == once[1]
    assert _strip(res.document) == once[0]


def test_streamed_repeat_flags_equal_flag_repeats_over_the_whole_list(season, once, tmp_path):
    from ssd.camtrap.repeats import flag_repeats

    plain = run_batch(_opts(season, tmp_path / "p.json", flag_repeats=0), FakeDetector(), stream=None).document
    images = plain["images"]
    marked = flag_repeats(images, 3, 0.2)
    assert marked > 0 and images == once[0]["images"]
    rows = list(csv.DictReader(io.StringIO(once[1])))
    assert sum(1 for r in rows if r["suspect"] == "yes") == marked


def test_an_old_format_checkpoint_resumes_and_is_converted_once(season, once, tmp_path):
    from ssd.camtrap.folders import list_inputs
    from ssd.camtrap.run_checkpoint import save_checkpoint

    out = tmp_path / "season.json"
    det = FakeDetector()
    opts = _opts(season, out, resume=True)
    settings = opts.journal_settings(det.classes, list_inputs([season], recursive=True).base)
    legacy = tmp_path / "season.checkpoint.json"
    save_checkpoint(str(legacy), settings, once[0]["images"][:25])
    stop, check = _stop_after(8)
    det.on_batch = check
    res = run_batch(opts, det, stop=stop, stream=None)
    assert res.stopped and not legacy.exists()                   # converted into the journal
    journal = tmp_path / "season.checkpoint.jsonl"
    assert 25 < res.processed < 61 and journal.read_bytes().count(b"\n") == 1 + res.processed
    det = FakeDetector()
    run_batch(opts, det, stream=None)
    assert det.images == 61 - res.processed and not journal.exists()   # notes.txt was among the 25
    assert _strip(json.loads(out.read_text())) == once[0]
    # --checkpoint naming an old-format file: converted in place
    own = tmp_path / "mine.ckpt"
    save_checkpoint(str(own), settings, once[0]["images"][:10])
    det = FakeDetector()
    run_batch(_opts(season, tmp_path / "b.json", resume=True, checkpoint=str(own)), det, stream=None)
    assert det.images == 50 and not own.exists()
    assert _strip(json.loads((tmp_path / "b.json").read_text()))["images"] == once[0]["images"]


def test_a_journal_of_other_settings_is_refused(season, tmp_path):
    out = tmp_path / "season.json"
    stop, check = _stop_after(4)
    run_batch(_opts(season, out), FakeDetector(check), stop=stop, stream=None)
    with pytest.raises(ResultsError, match="other settings.*floor"):
        run_batch(_opts(season, out, resume=True, floor=0.1), FakeDetector(), stream=None)
    (tmp_path / "season.checkpoint.jsonl").write_text('{"ssd_batch_journal":9}\n')
    with pytest.raises(ResultsError, match="not a batch checkpoint of this version"):
        run_batch(_opts(season, out, resume=True), FakeDetector(), stream=None)


def _wchar():
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("wchar:"))


def test_checkpoint_cost_is_flat_and_the_run_keeps_no_entries(tmp_path):
    """600 pictures (~2.5 KB entries), a checkpoint every 50: the bytes this process writes do not
    grow as the run goes on (with the rewritten checkpoint, pictures 300-590 cost 3x pictures
    10-300), and memory does not grow by the entries (490 of them are over 1 MB)."""
    if not os.path.exists("/proc/self/io"):
        pytest.skip("needs Linux's /proc/self/io")
    folder = _season(tmp_path / "big", 600, cams=6)
    written, memory = [], {}                      # process-wide bytes written / traced memory, per batch

    def sample(det):
        written.append((det.images, _wchar()))
        for n in (100, 590):
            if det.images >= n and n not in memory:
                memory[n] = tracemalloc.get_traced_memory()[0]

    def at(n):                                    # bytes written when the detector had seen n pictures
        return next(b for seen, b in written if seen >= n)
    out = tmp_path / "big.json"
    tracemalloc.start()
    try:
        run_batch(_opts(folder, out, checkpoint_every=50, batch_size=10, flag_repeats=0),
                  FakeDetector(sample, extra=30), stream=None)
    finally:
        tracemalloc.stop()
    first, last = at(300) - at(10), at(590) - at(300)
    entry = len(out.read_bytes()) // 601
    assert entry > 1500 and 0.5 * 290 * entry < first and last < 1.25 * first, (first, last, entry)
    assert memory[590] - memory[100] < 0.25 * 490 * entry, (memory, entry)


def _entry(name, k=3):
    dets = [{"category": "1", "conf": 0.5, "bbox": [0.1 * j, 0.2, 0.3, 0.4]} for j in range(k)]
    return json.dumps({"file": name, "width": 640, "height": 480, "detections": dets,
                       "max_detection_conf": 0.5, "failure": None}, separators=(",", ":"))


def test_the_store_holds_offsets_not_entries_and_appends_only(tmp_path):
    names = [f"cam{i % 7}/{i:06d}.jpg" for i in range(20000)]
    path = str(tmp_path / "s.checkpoint.jsonl")
    store = RunStore.create(path, {"k": 1}, names)
    texts = [_entry(n, 12) for n in names]        # ~1 KB each: 20 MB of entries
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sizes = []
    for i, t in enumerate(texts):
        store.add(i, t)
        if (i + 1) % 2000 == 0:
            store.checkpoint()
            sizes.append(os.path.getsize(path))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 200_000, grown                 # the offsets live in an array made at opening
    steps = [b - a for a, b in zip(sizes, sizes[1:])]
    assert max(steps) == min(steps) == sum(len(t) + 1 for t in texts[:2000])   # each checkpoint: its own lines
    assert list(store.texts()) == texts
    store.close()


def test_resume_repairs_a_torn_or_damaged_tail_and_the_last_line_wins(tmp_path):
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    path = str(tmp_path / "j.jsonl")
    store = RunStore.create(path, {"k": 1}, names)
    for i in range(3):
        store.add(i, _entry(names[i]))
    store.checkpoint()
    store.close()
    whole = os.path.getsize(path)
    newer_b = _entry("b.jpg", 1)
    with open(path, "ab") as fh:
        fh.write((_entry("elsewhere.jpg") + "\n").encode())   # a file no longer listed: ignored
        fh.write((newer_b + "\n").encode())                    # b redone: this line wins
        fh.write(b"\0" * 40 + b"}\n")                          # a damaged block
        fh.write((_entry("d.jpg") + "\n").encode())            # after the damage: redone, not trusted
    lines_kept = whole + len(_entry("elsewhere.jpg")) + 1 + len(newer_b) + 1
    store = RunStore.resume(path, {"k": 1}, names)
    assert os.path.getsize(path) == lines_kept
    assert [store.is_done(i) for i in range(4)] == [True, True, True, False]
    assert list(store.texts()) == [_entry("a.jpg"), newer_b, _entry("c.jpg")]
    store.add(3, _entry("d.jpg"))
    store.checkpoint()
    store.close()
    with open(path, "ab") as fh:
        fh.write(_entry("a.jpg", 2).encode()[:30])             # killed mid-line
    store = RunStore.resume(path, {"k": 1}, names)
    assert list(store.texts()) == [_entry("a.jpg"), newer_b, _entry("c.jpg"), _entry("d.jpg")]
    assert open(path, "rb").read().endswith(b"\n")
    store.close()                                              # one run at a time holds a journal
    with pytest.raises(ResultsError, match="other settings"):
        RunStore.resume(path, {"k": 2}, names)
    RunStore.resume(path, {"k": 1}, names).discard()
    assert not os.path.exists(path)


def test_a_new_journal_replaces_the_old_one_only_at_its_first_checkpoint(tmp_path):
    path = str(tmp_path / "j.jsonl")
    old = RunStore.create(path, {"k": 1}, ["a.jpg"])
    old.add(0, _entry("a.jpg"))
    old.checkpoint()
    old.close()
    kept = open(path, "rb").read()
    new = RunStore.create(path, {"k": 1}, ["a.jpg"])
    new.add(0, _entry("a.jpg", 5))
    assert open(path, "rb").read() == kept and not new.published
    new.checkpoint()
    assert new.published and open(path, "rb").read() != kept
    new.close()
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def test_an_oversized_line_is_refused_by_number_without_being_read_whole(tmp_path, monkeypatch):
    """A line longer than any entry can be (no newline for megabytes) is refused naming the file
    and line, reading at most the cap: a journal holding a 10 GB line no longer fills memory."""
    import ssd.camtrap.run_store as run_store

    names = ["a.jpg", "b.jpg"]
    path = str(tmp_path / "j.jsonl")
    store = RunStore.create(path, {"k": 1}, names)
    store.add(0, _entry("a.jpg"))
    store.checkpoint()
    store.close()
    start = os.path.getsize(path)
    with open(path, "ab") as fh:
        fh.write(b'{"file":"b.jpg","detections":[' + b"1," * 2_000_000 + b"1]}\n")   # 4 MB, line 3
    kept = os.path.getsize(path)
    monkeypatch.setattr(run_store, "MAX_LINE_BYTES", 64 * 1024)
    tracemalloc.start()
    with pytest.raises(ResultsError, match=r"j\.jsonl.* line 3: longer than 65536 bytes"):
        RunStore.resume(path, {"k": 1}, names)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000, peak                  # the cap and some change, not the 4 MB line
    assert os.path.getsize(path) == kept           # refused, not cut: the file is left as it was
    with open(path, "r+b") as fh:                   # the line's first 1000 bytes: a torn tail
        fh.truncate(start + 1000)
    store = RunStore.resume(path, {"k": 1}, names)  # under the cap and torn: dropped and redone
    assert [store.is_done(i) for i in range(2)] == [True, False]
    store.close()


def test_an_oversized_header_is_refused_too(tmp_path, monkeypatch):
    import ssd.camtrap.run_store as run_store

    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"ssd_batch_journal":1,"settings":{"k":"' + b"x" * 200_000 + b'"}}\n')
    monkeypatch.setattr(run_store, "MAX_LINE_BYTES", 64 * 1024)
    with pytest.raises(ResultsError, match=r"line 1: longer than"):
        RunStore.resume(str(path), {"k": 1}, ["a.jpg"])


def test_settings_refusal_stays_short_for_a_damaged_header():
    """A header with huge values or thousands of odd keys is named in a readable message: each value
    clipped, the number of further differences counted, not a 200 KB error line."""
    from ssd.camtrap.run_checkpoint import check_settings
    old = {"floor": 0.1, "model": "m", "base": "x" * 100_000, **{f"junk{i}": i for i in range(5000)}}
    with pytest.raises(ResultsError) as err:
        check_settings("journal.jsonl", old, {"floor": 0.2, "model": "m", "base": "season"})
    text = str(err.value)
    assert len(text) < 2000, len(text)
    assert "floor: 0.1 then, 0.2 now" in text and "more settings differ" in text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock: POSIX")
def test_a_journal_another_run_is_writing_is_refused_and_left_alone(tmp_path):
    """Two runs given the same --json (two shards, one output) shared one journal: the second
    deleted the first's unpublished journal, which then failed with 'No such file or directory'
    on a temporary name. The second is now refused, naming the journal, and the first goes on."""
    from ssd.camtrap.run_store import check_journal_target

    names = ["a.jpg", "b.jpg"]
    path = str(tmp_path / "s.checkpoint.jsonl")
    first = RunStore.create(path, {"k": 1}, names)
    first.add(0, _entry("a.jpg"))
    for start in (lambda: RunStore.create(path, {"k": 1}, names), lambda: RunStore.resume(path, {"k": 1}, names),
                  lambda: check_journal_target(path)):
        with pytest.raises(ResultsError, match="another run is writing"):
            start()
    first.checkpoint()                      # its temporary journal is still there to publish
    assert first.published
    for start in (lambda: RunStore.create(path, {"k": 1}, names), lambda: RunStore.resume(path, {"k": 1}, names)):
        with pytest.raises(ResultsError, match="another run is writing"):
            start()
    first.close()
    again = RunStore.resume(path, {"k": 1}, names)      # once that run has ended, its journal resumes
    assert again.is_done(0) and not again.is_done(1)
    again.close()
