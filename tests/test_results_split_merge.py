"""``results split`` then ``results merge``: the parts of a split make the file they were split from.

Each test failed before its fix: the merged file recorded the camera depth moved down to the
first part's folder (depth 1 split per camera came back as 0: the whole season one camera, its
episodes run together), parts of two seasons' splits merged as one season, and the parts of a
shard's split were refused as the same shard given twice.
"""
from __future__ import annotations

import json
from typing import Dict, List, Optional

import pytest

from ssd.camtrap.cameras import CameraRule
from ssd.camtrap.episodes import assign_episodes
from ssd.camtrap.megadetector import ResultsError
from ssd.camtrap.merging import merge_results
from ssd.cli.main import main
from test_reliability_results import _doc, _img

#: A season of two sites, two cameras at the first, a photo at the top; at depth 1 each site is
#: one camera, so siteA's two cameras' photos 20 s apart are one episode.
SEASON = [("siteA/cam1/a.jpg", "2024:06:01 10:00:00"), ("siteA/cam1/b.jpg", "2024:06:01 10:00:30"),
          ("siteA/cam2/c.jpg", "2024:06:01 10:00:50"), ("siteB/cam3/d.jpg", "2024:06:01 10:00:55"),
          ("top.jpg", "2024:06:01 10:01:00")]


def _season(tmp_path, name: str, files=SEASON, depth=1, shard: Optional[List[int]] = None,
            root: Optional[str] = "/data/season") -> str:
    """A results file as a run at ``--camera-depth depth`` writes it: episodes made by that rule."""
    images = [_img(f, datetime=t) for f, t in files]
    assign_episodes(images, 60, CameraRule(depth))
    batch = {"floor": 0.01, "episode_gap": 60, "camera_depth": depth, "absolute_paths": False}
    if root is not None:
        batch["images_root"] = root
    if shard is not None:
        batch["shard"] = shard
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(_doc(images, ssd_batch=batch)))
    return str(path)


def _split(tmp_path, path: str, *flags: str) -> Dict[str, str]:
    """The parts ``results split`` writes of ``path``, by file stem."""
    out = tmp_path / (path.rsplit("/", 1)[-1][:-5] + "-parts" + "".join(flags).replace("-", ""))
    assert main(["results", "split", path, "--out", str(out), *flags]) == 0
    return {p.stem: str(p) for p in sorted(out.iterdir())}


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@pytest.mark.parametrize("flags", [(), ("--camera-depth", "2"), ("--camera-depth", "0"), ("--camera-depth", "auto")])
def test_the_parts_of_a_split_merge_into_the_file_they_were_split_from(tmp_path, flags):
    season = _season(tmp_path, "season")
    parts = _split(tmp_path, season, *flags)
    out = tmp_path / "all.json"
    assert main(["results", "merge", "-o", str(out), *reversed(list(parts.values()))]) == 0
    assert _load(str(out)) == _load(season)            # the season's depth, so its episodes too


def test_parts_of_two_seasons_splits_are_refused(tmp_path):
    """Neither records an images folder: nothing told the two seasons apart."""
    ours = _split(tmp_path, _season(tmp_path, "ours", root=None))
    theirs = _split(tmp_path, _season(tmp_path, "theirs", [("siteC/cam9/x.jpg", "2024:06:01 10:00:00")], root=None))
    with pytest.raises(ResultsError, match="different splits") as e:
        merge_results([*ours.values(), theirs["siteC"]])
    assert "\n" not in str(e.value)


def test_parts_of_two_splits_of_one_season_are_refused(tmp_path):
    """Split by site and by camera: siteA's part and siteB/cam3's are disjoint, yet not one split."""
    season = _season(tmp_path, "season")
    by_site = _split(tmp_path, season)
    by_camera = _split(tmp_path, season, "--camera-depth", "2")
    with pytest.raises(ResultsError, match="different splits"):
        merge_results([by_site["siteA"], by_site["top-folder"], by_camera["siteB_cam3"]])


def test_a_missing_part_is_refused_unless_allowed_and_then_recorded(tmp_path, capsys):
    parts = _split(tmp_path, _season(tmp_path, "season"))
    out = tmp_path / "all.json"
    given = [parts["siteA"], parts["siteB"]]
    assert main(["results", "merge", "-o", str(out), *given]) == 2
    assert "2 of its 3 parts" in capsys.readouterr().err and not out.exists()
    assert main(["results", "merge", "-o", str(out), "--allow-missing", *given]) == 0
    assert "1 part(s) of a split missing" in capsys.readouterr().err
    assert _load(str(out))["info"]["ssd_batch"]["parts_missing"] == 1


def test_the_parts_of_one_shards_split_merge_into_that_shards_file(tmp_path):
    shard = _season(tmp_path, "s1", SEASON[:3], shard=[1, 2])
    parts = _split(tmp_path, shard, "--camera-depth", "2")
    assert len(parts) == 2
    assert merge_results(list(parts.values())) == _load(shard)          # still shard 1 of 2


def test_a_one_part_split_merges_back_alone(tmp_path):
    shard = _season(tmp_path, "s2", SEASON[3:4], shard=[2, 2])
    (part,) = _split(tmp_path, shard).values()
    assert merge_results([part]) == _load(shard)


def test_the_parts_of_every_shards_split_merge_into_the_season(tmp_path):
    season = _season(tmp_path, "season")
    shards = [_season(tmp_path, f"s{i}", files, shard=[i, 2]) for i, files in ((1, SEASON[:3]), (2, SEASON[3:]))]
    parts = [p for s in shards for p in _split(tmp_path, s).values()]
    merged = merge_results(parts)
    whole = _load(season)
    assert merged["images"] == whole["images"]
    assert merged["info"]["ssd_batch"] == dict(whole["info"]["ssd_batch"], shard=None)   # as merged shards


def test_parts_of_some_shards_splits_name_the_missing_shard(tmp_path, capsys):
    shards = [_season(tmp_path, f"s{i}", [(f"cam{i}/x.jpg", "2024:06:01 10:00:00")], shard=[i, 3]) for i in (1, 2)]
    parts = [p for s in shards for p in _split(tmp_path, s).values()]
    out = tmp_path / "all.json"
    assert main(["results", "merge", "-o", str(out), *parts]) == 2
    assert "3/3" in capsys.readouterr().err and not out.exists()
    assert main(["results", "merge", "-o", str(out), "--allow-missing", *parts]) == 0
    batch = _load(str(out))["info"]["ssd_batch"]
    assert batch["shard"] is None and batch["shards_merged"] == [[1, 3], [2, 3]]
    assert batch["shards_missing"] == [[3, 3]]


def test_a_part_given_twice_is_named_as_given_twice_not_as_missing_parts(tmp_path):
    parts = _split(tmp_path, _season(tmp_path, "season"))
    with pytest.raises(ResultsError, match="is in both"):
        merge_results([parts["siteA"], parts["siteA"], parts["siteB"]])
