"""The batch run's one settings object: flags, run.json and a job's command line are derived
from it, and the defaults come from their named constants."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from ssd.camtrap.megadetector import shown_detections, typical_threshold
from ssd.camtrap.settings import RunSettings, SettingsError
from ssd.inference.detector import RawDetections
from ssd.inference.filtering import ShownFilter
from ssd.inference.thresholds import DEFAULT_NMS, MAX_DETECTIONS, RESULTS_FLOOR, TYPICAL_THRESHOLD


def _parser() -> argparse.ArgumentParser:
    from ssd.cli.main import build_parser

    return build_parser()


def _parse(argv):
    return RunSettings.from_args(_parser().parse_args(["detect"] + argv))


def test_the_cli_defaults_are_the_named_ones():
    s = _parse(["--model", "m", "photos"])
    assert (s.threshold, s.floor, s.nms, s.max_detections) == (TYPICAL_THRESHOLD, RESULTS_FLOOR, DEFAULT_NMS,
                                                               MAX_DETECTIONS)
    assert s == RunSettings("m", ("photos",))


def test_a_job_command_line_parses_back_to_the_same_settings():
    s = RunSettings("models/x", ("/data/a b", "-odd-name"), threshold=0.35, recursive=True, flag_repeats=3,
                    shard=(2, 4), categories="megadetector", out_json="/r/results.json", checkpoint_every=100,
                    episode_gap=30.0, frame_every=2.5, engine="onnxruntime")
    argv = s.to_argv()
    assert argv[-3:] == ["--", "/data/a b", "-odd-name"]     # inputs after "--": a name like a flag stays a name
    assert "--floor" not in argv                                # only what differs from the defaults
    assert _parse(argv) == s


def test_run_json_round_trip_and_the_older_form(tmp_path):
    s = RunSettings("m", ("/p",), recursive=True, threshold=0.3)
    s.save(str(tmp_path / "run.json"))
    assert RunSettings.load(str(tmp_path / "run.json")) == s
    old = {"model": "m", "folder": "/p", "recursive": True, "threshold": 0.3, "flag_repeats": 0}
    assert RunSettings.from_dict(old) == s


@pytest.mark.parametrize("bad", [[], {"model": 3}, {"model": "m", "threshold": "high"},
                                 {"model": "m", "threshold": 7}, {"model": "m", "rm": "-rf"},
                                 {"model": "m", "inputs": "/p"}, {"model": "m", "shard": [3, 2]},
                                 {"model": "m", "categories": "all"}, {"model": "m", "recursive": "yes"},
                                 {"model": "m", "engine": "tensorflow"}])
def test_bad_settings_are_refused_with_the_reason(bad, tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(SettingsError, match="run.json"):
        RunSettings.load(str(path))


def test_one_filter_for_the_detector_output_and_the_results_entries():
    raw = RawDetections(np.array([0, 1, 0]), np.array([0.9, 0.5, 0.2]), np.zeros((3, 4)), (10, 10), ["cat", "dog"])
    assert list(raw.filter(0.5).scores) == [0.9, 0.5]
    assert list(raw.filter(0.0, classes=["cat"]).scores) == [0.9, 0.2]
    entry = {"file": "a.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0, 0, 1, 1]},
                                             {"category": "2", "conf": 0.5, "bbox": [0, 0, 1, 1], "suspect": True},
                                             {"category": "1", "conf": 0.2, "bbox": [0, 0, 1, 1]}]}
    assert [d["conf"] for d in shown_detections(entry, 0.5)] == [0.9]
    assert [d["conf"] for d in shown_detections(entry, 0.5, hide_suspect=False)] == [0.9, 0.5]
    names = {"1": "cat", "2": "dog"}
    assert [d["conf"] for d in ShownFilter.of(0.0, ["cat"]).entry_detections(entry, names)] == [0.9, 0.2]


def test_a_results_file_without_a_typical_threshold_gets_ours():
    assert typical_threshold({"info": {}}) == TYPICAL_THRESHOLD
    assert typical_threshold({"info": {"detector_metadata": {"typical_detection_threshold": 0.6}}}) == 0.6
