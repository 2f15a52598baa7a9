"""``results split`` parses each entry once: the second reading copies each entry's text from
where the first found it, parsing only the entries it must re-serialise, and still refuses a file
changed between the readings.

Why: the second reading parsed every entry again, which left the streamed split about a fifth
slower than the split that parsed the whole document once.
"""
from __future__ import annotations

import json
import os
from typing import Any, List

import pytest

from ssd.camtrap import results_stream, splitting
from ssd.camtrap.cameras import CameraRule
from ssd.camtrap.results_check import ResultsError
from ssd.camtrap.megadetector import read_results
from tests.test_results_split_text import ODD, PLAIN, _parts, _write


class _Counting(json.JSONDecoder):
    """json.loads's decoder, counting the entries (objects with a ``file``) it parses."""

    entries = 0

    def raw_decode(self, s: str, idx: int = 0) -> Any:
        value, end = super().raw_decode(s, idx)
        if isinstance(value, dict) and "file" in value:
            _Counting.entries += 1
        return value, end


def _split(path: str, out: str, names_for=lambda doc: doc) -> List[Any]:
    rule = CameraRule()
    return splitting.split_results_file(path, out, names_for, lambda doc: rule)[0]


@pytest.mark.parametrize("read_chars", [results_stream.READ_CHARS, 7])
def test_each_copied_entry_is_parsed_once(tmp_path, monkeypatch, read_chars):
    path = str(tmp_path / "season.json")
    odd = ODD[0].replace("%d", "9")
    _write(path, [PLAIN % k for k in range(6)] + [odd])
    monkeypatch.setattr(results_stream, "_DECODER", _Counting())
    monkeypatch.setattr(results_stream, "READ_CHARS", read_chars)
    _Counting.entries = 0
    written = _split(path, str(tmp_path / "out"))
    assert sum(n for _, n in written) == 7
    assert _Counting.entries == 7              # each once (the one re-serialised parsed by json.loads)


@pytest.mark.parametrize("change", ["name", "head", "moved", "odd name"])
def test_a_file_changed_between_readings_is_refused_though_its_size_and_time_are_kept(tmp_path, change):
    path = str(tmp_path / "season.json")
    odd = ODD[0].replace("%d", "8")
    _write(path, [PLAIN % k for k in range(4)] + [odd])
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    new = {"name": text.replace("s/c2/1.jpg", "s/c2/2.jpg"),
           "head": text.replace('"1.6"', '"1.7"'),
           "moved": text.replace('"images": [\n  ', '"images": [\n   ', 1).replace("\n ]\n}", "\n]\n}"),
           "odd name": text.replace("s/c8/1.jpg", "s/c8/2.jpg")}[change]
    assert new != text and len(new) == len(text)
    st = os.stat(path)

    def names_for(doc):                         # between the readings: rewritten, size and time kept
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(new)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        return doc

    out = str(tmp_path / "out")
    try:
        _split(path, out, names_for)
    except ResultsError as error:
        assert "changed while it was split" in str(error)
        assert not os.listdir(out)
        return
    assert change == "moved"                    # the same entries, elsewhere: split as they now are
    rule = CameraRule()
    expected = str(tmp_path / "expected")
    splitting.write_split(splitting.split_results(read_results(path), rule), expected)
    assert _parts(out) == _parts(expected)


@pytest.mark.parametrize("read_chars", [results_stream.READ_CHARS, 3])
def test_text_is_found_after_a_byte_order_mark_and_text_not_ascii(tmp_path, monkeypatch, read_chars):
    """Offsets count characters of the text as read (after the mark): an entry after a name or head
    of several bytes a character is copied from where it stands, not a few bytes off."""
    monkeypatch.setattr(results_stream, "READ_CHARS", read_chars)
    path = str(tmp_path / "season.json")
    texts = [PLAIN % 0, '{"file":"s/c\u00e9/1.jpg","detections":[]}', PLAIN % 1, ODD[10].replace("%d", "2"), PLAIN % 3]
    with open(path, "w", encoding="utf-8-sig") as fh:
        fh.write('{"info": {"format_version": "1.6", "note": "\u00e9t\u00e9 \U0001f98a"}, '
                 '"detection_categories": {"1": "animal", "2": "person"}, "images": [\n'
                 + ",\n".join(texts) + "]}")
    rule = CameraRule()
    expected = str(tmp_path / "expected")
    splitting.write_split(splitting.split_results(read_results(path), rule), expected)
    out = str(tmp_path / "out")
    assert sum(n for _, n in _split(path, out)) == 5
    assert _parts(out) == _parts(expected)
