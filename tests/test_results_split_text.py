"""``results split`` copies an entry's own text into its part where, and only where, that is the
same bytes as re-serialising it (``splitting._as_written``).

Why: re-serialising ~84 boxes an entry took a quarter of a split's time; a batch run's file holds
each entry as ``json.dumps`` writes it, so its text can be copied. The pinned tests' files are
written with spaces (every entry re-serialised); here compact files, as a batch run writes them,
with every way a text can differ from ``json.dumps``'s, against the in-memory split the command had.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import pytest

from ssd.camtrap import splitting
from ssd.camtrap.cameras import CameraRule
from ssd.camtrap.megadetector import read_results

HEAD = '"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal", "2": "person"}'
PLAIN = ('{"file":"s/c%d/1.jpg","width":1920,"datetime":"2024:06:01 10:00:00","detections":'
         '[{"category":"1","conf":0.968,"bbox":[0.2148,0.535,0.2,0.2]},'
         '{"category":"2","conf":0.005,"bbox":[0.0001,1.0,0,1]}],"max_detection_conf":0.968}')
#: Entry texts json.dumps would write otherwise (each parses, and passes the checks).
ODD = [
    '{"file":"s/c%d/1.jpg","detections":[{"category":"1","conf":0.50,"bbox":[0.1,0.2,0.3,0.4]}]}',   # trailing 0
    '{"file":"s/c%d/1.jpg","detections":[{"category":"1","conf":5e-1,"bbox":[0.1,0.2,0.3,0.4]}]}',   # exponent
    '{"file":"s/c%d/1.jpg","detections":[{"category":"1","conf":0.5,"bbox":[1E-1,0.2,0.3,0.4]}]}',
    '{"file":"s/c%d/1.jpg","detections":[{"category":"1","conf":0.5,"bbox":[0.00001,0.2,0.3,0.4]}]}',  # 1e-05
    '{"file":"s/c%d/1.jpg","detections":[{"category":"1","conf":0.5,"bbox":[0.1,0.2,0.3,-0]}]}',     # -0 is 0
    '{"file":"s/c%d/1.jpg","detections":[{"category":"1","conf":0.10000000000000001,"bbox":[0.1,0.2,0.3,0.4]}]}',
    '{"file":"s/c%d/1.jpg","detections":[{"category":"1","conf":0.5,"conf":0.6,"bbox":[0.1,0.2,0.3,0.4]}]}',
    '{"file":"s/c%d/1.jpg","file":"s/c%d/1.jpg","detections":[]}',
    '{"file":"s/c%d/1.jpg","x":{"a":1,"a":2},"detections":[]}',                                       # nested dict
    '{"file":"s/c%d/1.jpg","detections":null,"failure":"caf\\u00e9"}',                                 # escapes
    '{"file":"s/c%d/1.jpg","detections":null,"failure":"caf\u00e9"}',                                  # not ASCII
    '{"file":"s/c%d/1.jpg","detections":null,"failure":"a\\/b"}',
    '{"file":"s/c%d/1.jpg","detections":null,"failure":"a\x7fb"}',
    '{"file":"s/c%d/1.jpg", "detections":[]}',                                                      # white space
    '{"file":"s/c%d/1.jpg","detections":[ ]}',
    '{"file" :"s/c%d/1.jpg","detections":[]}',
    '{"detections":[],"file":"s/c%d/1.jpg"}',                                                       # file not first
    '{"file":"s/c%d/1.jpg","detections":[],"n":12345678901234567890}',
    '{"file":"s/c%d/1.jpg","detections":[],"n":1.0,"m":-0.0,"k":[true,false,null,{}]}',
]


def _write(path: str, texts: List[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:          # a batch run's layout: one entry a line
        fh.write("{" + HEAD + ', "images": [\n  ' + ",\n  ".join(texts) + "\n ]\n}\n")


def _parts(folder: str) -> Dict[str, bytes]:
    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as fh:
            out[name] = fh.read()
    return out


@pytest.mark.parametrize("texts", [[PLAIN % k for k in range(5)]] + [[PLAIN % 0, t.replace("%d", "1")] for t in ODD],
                         ids=["plain"] + [f"odd{k}" for k in range(len(ODD))])
def test_parts_are_the_bytes_the_in_memory_split_wrote(tmp_path, texts):
    path = str(tmp_path / "season.json")
    _write(path, texts)
    rule = CameraRule()
    expected = str(tmp_path / "expected")
    splitting.write_split(splitting.split_results(read_results(path), rule), expected)
    got = str(tmp_path / "got")
    splitting.split_results_file(path, got, lambda doc: doc, lambda doc: rule)
    assert _parts(got) == _parts(expected)


def test_a_compact_entry_is_copied_not_re_serialised(monkeypatch):
    """The fast way is the one taken for a batch run's entries: no ``json.dumps`` of the entry."""
    dumped: List[Any] = []
    real = json.dumps
    monkeypatch.setattr(splitting.json, "dumps", lambda obj, **kw: (dumped.append(obj), real(obj, **kw))[1])
    text = PLAIN % 3
    entry = json.loads(text)
    assert splitting._as_written(entry, text, "1.jpg") == real(dict(entry, file="1.jpg"), separators=(",", ":"))
    assert not [d for d in dumped if isinstance(d, dict)]


@pytest.mark.parametrize("text", [t.replace("%d", "1") for t in ODD])
def test_each_odd_text_gives_json_dumps_bytes(text):
    entry = json.loads(text)
    try:
        want = json.dumps(dict(entry, file="x/ü.jpg"), separators=(",", ":"), allow_nan=False)
    except ValueError:
        with pytest.raises(ValueError):
            splitting._as_written(entry, text, "x/ü.jpg")
        return
    assert splitting._as_written(entry, text, "x/ü.jpg") == want


def _indented(text: str) -> str:
    """``text`` laid out as MegaDetector writes its files (``json.dump(..., indent=1)``): white space
    after each comma, colon and bracket outside strings, the strings as they were."""
    pieces = text.split('"')
    for k in range(0, len(pieces), 2):
        for mark, spaced in ((",", ",\n   "), (":", ": "), ("[", "[\n    "), ("]", "\n   ]"), ("{", "{\n   ")):
            pieces[k] = pieces[k].replace(mark, spaced)
    return '"'.join(pieces)


#: Indented texts (every entry re-serialised), with strings that hold white space, a colon, an escaped quote.
INDENTED_ODD = [_indented(t.replace("%d", "1")) for t in ODD if "\\" not in t] + [
    _indented('{"file":"s/c1/1.jpg","detections":null,"failure":"two  spaces, a : colon"}'),
    '{\n "file": "s/c1/1.jpg",\n "detections": null,\n "failure": "a \\" , quote"\n}',
    '{\n "file": "s/c1/1.jpg",\n "detections": null,\n "warning": "tab\\tin"\n}',
]


@pytest.mark.parametrize("texts", [[_indented(PLAIN % k) for k in range(5)]]
                         + [[_indented(PLAIN % 0), t] for t in INDENTED_ODD],
                         ids=["indented"] + [f"indented_odd{k}" for k in range(len(INDENTED_ODD))])
def test_indented_parts_are_the_bytes_the_in_memory_split_wrote(tmp_path, texts):
    test_parts_are_the_bytes_the_in_memory_split_wrote(tmp_path, texts)

