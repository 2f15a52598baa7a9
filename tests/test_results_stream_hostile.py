"""The streamed results reader against hostile or unlucky files: it gives exactly what
``read_results`` gives (the same document or the same refusal) wherever its buffers end.

Why: ``results compare|summary|sort`` read a season's results a chunk at a time
(``results_stream``); any value cut at a buffer's end, any odd top-level shape or a file changed
while read must not give an answer the whole-file reader would not.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import pytest

from ssd.camtrap import results_stream
from ssd.camtrap.megadetector import read_results
from ssd.camtrap.results_check import ResultsError

HEAD = '"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal", "2": "person"}'


def _entry(i: int, extra: str = "") -> str:
    return ('{"file": "img%d.jpg"%s, "detections": [{"category": "1", "conf": 0.5, '
            '"bbox": [0.1, 0.2, 0.3, 0.4]}]}' % (i, extra))


def _doc(entries: List[str], head: str = HEAD, tail: str = "") -> str:
    return "{" + head + ', "images": [' + ", ".join(entries) + "]" + tail + "}"


def _streamed(path: str) -> Tuple[str, Any]:
    got: List[Dict[str, Any]] = []

    def take(head: Dict[str, Any]):
        got.clear()                     # a second pass or the whole-file reader: start again
        return got.extend
    try:
        head = results_stream.read_results_streamed(path, take)
    except ResultsError as err:
        return "refused", str(err)
    return "read", json.dumps({**head, "images": got}, sort_keys=True)


def _whole(path: str) -> Tuple[str, Any]:
    try:
        return "read", json.dumps(read_results(path), sort_keys=True)
    except ResultsError as err:
        return "refused", str(err)


def test_a_small_read_size_really_cuts_the_file_into_small_reads(monkeypatch):
    """The pinned tests set ``READ_CHARS`` small so that values are cut at every place; a read
    whose default size was fixed when the module loaded read 1 MiB whatever it was set to."""
    import io

    monkeypatch.setattr(results_stream, "READ_CHARS", 5)
    text = results_stream._Text(io.StringIO(_doc([_entry(0)])))
    assert text.peek() == "{"
    assert text.read_chars == 5


CASES = {
    "escapes and surrogates": _doc([_entry(0, r', "x": "caf\u00e9 \ud83d\ude00 \ud800 \"q\\"')]),
    "numbers": _doc([_entry(0, ', "b": -0, "e": 1.5e-3, "f": 12345678901234567890')]),
    "non-finite": _doc([_entry(0, ', "a": 1e400')]),
    "NaN literal": _doc([_entry(0)], head=HEAD + ', "n": NaN'),
    "10^4 digits": _doc([_entry(0, ', "a": ' + "9" * 10000)]),
    "numbers in the head": _doc([_entry(0)], tail=', "n": 12345.5e2, "m": -7'),
    "literals in the head": _doc([_entry(0)], head=HEAD + ', "t": true, "f": false, "z": null'),
    "a key twice in an entry": _doc([_entry(0, ', "file": "other.jpg"')]),
    "a top-level key twice": _doc([_entry(0)], head=HEAD + ', "info": {"format_version": "1.3"}'),
    "images twice": _doc([_entry(0)], tail=', "images": [' + _entry(5) + "]"),
    "categories after images": '{"images": [' + _entry(0) + '], "detection_categories": {"1": "animal"}}',
    "a byte order mark": "\ufeff" + _doc([_entry(0)]),
    "trailing garbage": _doc([_entry(0)]) + " x",
    "trailing white space": _doc([_entry(0)]) + " \n\t\r ",
    "a comment": _doc([_entry(0)]).replace('"images"', '/* c */ "images"'),
    "nested 10^5 deep": _doc([_entry(0, ', "d": ' + "[" * 100000 + "]" * 100000)]),
    "white space only": " " * 50,
    "a string never closed": _doc([_entry(0, ', "s": "' + "a" * 200)])[:-3],
    "a null entry": _doc(["null", _entry(1)]),
}


@pytest.mark.parametrize("read_chars", [2, 3, 7, 2 ** 20])
@pytest.mark.parametrize("name", sorted(CASES))
def test_streamed_reads_give_the_whole_file_readers_answer_wherever_buffers_end(tmp_path, monkeypatch,
                                                                                read_chars, name):
    path = tmp_path / "results.json"
    path.write_text(CASES[name], encoding="utf-8")
    monkeypatch.setattr(results_stream, "READ_CHARS", read_chars)
    assert _streamed(str(path)) == _whole(str(path))


def test_utf16_is_refused_as_the_whole_file_reader_refuses_it(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(_doc([_entry(0)]), encoding="utf-16")
    assert _streamed(str(path)) == _whole(str(path)) and _whole(str(path))[0] == "refused"


def test_a_file_replaced_between_the_two_passes_is_read_as_it_now_is(tmp_path, monkeypatch):
    """MegaDetector writes the categories after the images, so the entries are read in a second
    pass with the head the first found (here no guess of them from the file's end, as where they
    lie further from it). A detector re-run replacing the file in between (swapped class ids) must
    not give the new entries under the old file's names."""
    monkeypatch.setattr(results_stream, "_tail_keys", lambda path: None)
    path = tmp_path / "results.json"
    old = '{"images": [' + _entry(0) + '], "detection_categories": {"1": "animal", "2": "person"}}'
    new = '{"images": [' + _entry(0) + '], "detection_categories": {"1": "person", "2": "animal"}}'
    path.write_text(old, encoding="utf-8")
    scan, heads = results_stream._scan, []

    def scan_then_replace(*args, **kwargs):
        found = scan(*args, **kwargs)
        path.write_text(new, encoding="utf-8")
        return found
    monkeypatch.setattr(results_stream, "_scan", scan_then_replace)

    def take(head):
        heads.append(head)
        return lambda entries: None
    returned = results_stream.read_results_streamed(str(path), take)
    assert heads[-1]["detection_categories"] == returned["detection_categories"] == {"1": "person", "2": "animal"}


def test_categories_after_the_images_are_found_at_the_end_and_the_entries_read_once(tmp_path, monkeypatch):
    """MegaDetector's order (categories and info after the images) read each entry twice: once
    to find the categories, once to check against them. They are now taken from the file's end,
    and the entries read once, with the head the whole file then shows."""
    path = tmp_path / "results.json"
    path.write_text('{"images": [' + ", ".join(_entry(i) for i in range(3)) + '],\n "detection_categories": '
                    '{"1": "animal", "2": "person"},\n "info": {"format_version": "1.4"}\n}\n', encoding="utf-8")
    passes, heads = [], []
    scan = results_stream._scan
    monkeypatch.setattr(results_stream, "_scan", lambda *a, **kw: (passes.append(1), scan(*a, **kw))[1])

    def take(head):
        heads.append(head)
        return lambda entries: None
    returned = results_stream.read_results_streamed(str(path), take)
    assert len(passes) == 1 and heads == [returned]
    assert list(returned) == ["detection_categories", "info"]
    assert _streamed(str(path)) == _whole(str(path))


@pytest.mark.parametrize("tail", [
    ', "detection_categories": {"1": "animal"}}',                          # not the head the file holds
    '], "x": "\\"detection_categories\\": {\\"1\\": \\"animal\\"}}", "detection_categories": {"2": "person"}}',
    ', "detection_categories": {"1": "animal"}, "detection_categories": {"1": "animal"}}',
])
def test_a_wrong_guess_at_the_end_is_read_again_as_before(tmp_path, tail):
    """Whatever the end of the file seems to hold, the answer is the whole-file reader's."""
    path = tmp_path / "results.json"
    path.write_text('{"images": [' + _entry(0) + ']' + tail, encoding="utf-8")
    assert _streamed(str(path)) == _whole(str(path))


def test_a_long_value_read_one_character_at_a_time_is_read_in_growing_pieces(monkeypatch):
    """At READ_CHARS = 1 a value longer than what is held is read again with twice as much each
    time, not one character more (a 5,000-character entry re-parsed 5,000 times)."""
    import io

    monkeypatch.setattr(results_stream, "READ_CHARS", 1)
    reads: List[int] = []

    class Counted(io.StringIO):
        def read(self, size: Any = -1) -> str:
            reads.append(size)
            return super().read(size)

    text = results_stream._Text(Counted(json.dumps({"file": "x" * 5000}) + " "))
    assert text.value() == {"file": "x" * 5000}
    assert len(reads) < 40


@pytest.mark.parametrize("error", [ValueError("the caller's own"), OSError(28, "No space left on device"),
                                   ResultsError("changed while it was split")])
def test_an_error_of_the_callers_sink_is_raised_not_taken_for_the_files(tmp_path, error):
    """A sink that fails (a disk full, a file found changed) fails the read: the file is not read
    again whole as if it were unusual, and the sink is not handed the entries a second time."""
    path = tmp_path / "r.json"
    path.write_text(_doc([_entry(i) for i in range(3)]))
    takes: List[Dict[str, Any]] = []

    def take(head: Dict[str, Any]):
        takes.append(head)

        def sink(chunk: List[Dict[str, Any]]) -> None:
            if len(takes) == 1:
                raise error
        return sink

    with pytest.raises(type(error), match=str(error.args[-1])):
        results_stream.read_results_streamed(str(path), take)
    assert len(takes) == 1
