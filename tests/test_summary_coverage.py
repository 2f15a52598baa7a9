"""``results summary`` and ``results summary --sweep`` say when a file is not the whole season.

Each test failed before its fix: the sweep printed no shard line for one shard's file (plain
summary did), and neither said that a merge made with ``--allow-missing`` lacks shards or parts
(its counts looked like the season's).
"""
from __future__ import annotations

import json

import pytest

from ssd.cli.main import main

SHARD_LINE = "shard 1 of 2: counts cover only its files; merge the shards (`results merge`) for the season"


def _summary(tmp_path, capsys, batch, *flags):
    """``results summary`` of a one-image file recording ``batch`` (``info.ssd_batch``): its output."""
    doc = {"info": {"format_version": "1.6", "detector": "ssd-studio:test", "ssd_batch": batch},
           "detection_categories": {"1": "animal"},
           "images": [{"file": "a.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0, 0, 1, 1]}]}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    assert main(["results", "summary", str(path), *flags]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("flags", [(), ("--sweep",)])
def test_one_shards_file_says_so_with_and_without_the_sweep(tmp_path, capsys, flags):
    assert _summary(tmp_path, capsys, {"shard": [1, 2]}, *flags).splitlines()[0] == SHARD_LINE
    assert json.loads(_summary(tmp_path, capsys, {"shard": [1, 2]}, *flags, "--json"))["shard"] == [1, 2]


@pytest.mark.parametrize("flags", [(), ("--sweep",)])
def test_a_merge_lacking_shards_says_which(tmp_path, capsys, flags):
    batch = {"shard": None, "shards_merged": [[1, 3], [2, 3]], "shards_missing": [[3, 3]]}
    text = _summary(tmp_path, capsys, batch, *flags)
    assert text.splitlines()[0] == ("merged without shard(s) 3/3: counts lack their images; merge them in "
                                    "(`results merge`) for the season")
    assert json.loads(_summary(tmp_path, capsys, batch, *flags, "--json"))["shards_missing"] == [[3, 3]]


@pytest.mark.parametrize("flags", [(), ("--sweep",)])
def test_a_merge_lacking_parts_of_a_split_says_how_many(tmp_path, capsys, flags):
    text = _summary(tmp_path, capsys, {"parts_missing": 2}, *flags)
    assert text.splitlines()[0] == "merged without 2 part(s) of a split: counts lack their cameras' images"
    assert json.loads(_summary(tmp_path, capsys, {"parts_missing": 2}, *flags, "--json"))["parts_missing"] == 2


@pytest.mark.parametrize("flags", [(), ("--sweep",)])
def test_a_whole_file_says_nothing_of_shards_or_parts(tmp_path, capsys, flags):
    for batch in ({"shard": None}, {"shards_missing": []}, {"parts_missing": 0}, {"shards_missing": "x"},
                  {"parts_missing": True}):
        out = _summary(tmp_path, capsys, batch, *flags)
        assert "shard" not in out and "part(s)" not in out
        counts = json.loads(_summary(tmp_path, capsys, batch, *flags, "--json"))
        assert not {"shard", "shards_missing", "parts_missing"} & set(counts)
