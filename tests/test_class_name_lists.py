"""Class names inside list flags (``--classes a,b``, ``--thresholds a=0.2,b=0.5``): a species model's
names may hold a comma ("deer, red") or a quote; the page hands its choices to a command line, and a
name split at its comma would silently select the wrong classes. Fields follow CSV's quoting."""
from __future__ import annotations

import argparse

import pytest

from ssd.base.argtypes import class_thresholds, join_names
from ssd.cli.results_images import class_list
from ssd.inference.filtering import ShownFilter
from ssd.jobs.photos import photo_job_argv

NAMES = ["deer, red", 'say "hi"', "a=b", "animal", " padded "]


def test_plain_lists_read_as_before():
    assert class_list("animal, person") == ["animal", "person"]
    assert class_thresholds("animal=0.2, person=0.5") == {"animal": 0.2, "person": 0.5}


def test_names_with_commas_and_quotes_round_trip():
    assert class_list(join_names(NAMES)) == [n.strip() for n in NAMES]
    text = join_names(f"{n}={v!r}" for n, v in zip(NAMES, (0.1, 0.2, 0.3, 0.4, 0.5)))
    assert class_thresholds(text) == {n.strip(): v for n, v in zip(NAMES, (0.1, 0.2, 0.3, 0.4, 0.5))}


def test_the_page_jobs_command_line_keeps_each_name_whole():
    shown = ShownFilter(threshold=0.2, per_class=(("deer, red", 0.4),), hide_suspect=True)
    argv = photo_job_argv("crops", "r.json", "out", "imgs", shown, classes=["deer, red", "animal"])
    assert class_list(argv[argv.index("--classes") + 1]) == ["deer, red", "animal"]
    assert class_thresholds(argv[argv.index("--thresholds") + 1]) == {"deer, red": 0.4}


def test_a_broken_quote_is_a_clear_error():
    with pytest.raises(argparse.ArgumentTypeError):
        class_thresholds('"deer=0.2')
