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


@pytest.mark.parametrize("text", ['"deer, red"=0.3', "deer, red=0.3"])
def test_a_threshold_refused_for_its_quoting_shows_the_pair_quoted_whole(text):
    """The hint read 'quote a name holding a comma as "deer, red"', which is how '"deer, red"=0.3' was
    written and refused; a name split at its comma ('deer') got no hint at all. Both now show the pair
    quoted with its value, the form the parser reads."""
    with pytest.raises(argparse.ArgumentTypeError) as err:
        class_thresholds(text)
    assert '"deer, red=0.3"' in str(err.value), err.value


def test_an_unknown_class_hints_at_quoting_when_the_results_hold_a_comma():
    """``--classes 'deer, red'`` reads two names; the refusal says how to keep a name with a comma whole."""
    from ssd.camtrap.megadetector import ResultsError, check_class_names

    with pytest.raises(ResultsError) as err:
        check_class_names({"deer": 0.0, "red": 0.0}, {"1": "deer, red", "2": "animal"})
    assert "quoted as in CSV" in str(err.value) and '"deer, red"' in str(err.value), err.value
    with pytest.raises(ResultsError) as err:
        check_class_names({"dear": 0.0}, {"1": "deer", "2": "animal"})
    assert "quoted" not in str(err.value)


def test_a_class_given_two_thresholds_is_refused_not_the_last_one_taken():
    """``animal=0.2,animal=0.5`` took 0.5 without a word: which one was meant cannot be known."""
    with pytest.raises(argparse.ArgumentTypeError) as err:
        class_thresholds("animal=0.2,person=0.5,animal=0.5")
    assert "'animal'" in str(err.value) and "twice" in str(err.value), err.value
    assert class_thresholds("animal=0.2,animal=0.2") == {"animal": 0.2}      # the same value: harmless
