"""What `train --help` says the defaults are is what training uses, and each default is named once."""
from __future__ import annotations

import argparse
import re

import pytest

from ssd.cli.main import build_parser
from ssd.models.registry import architectures, recipe_for
from ssd.training.config import TrainConfig


def _train_parser():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _help(flag: str) -> str:
    action = next(a for a in _train_parser()._actions if flag in a.option_strings)
    return action.help


def _group(arch: str) -> str:
    """How the help names an architecture's family."""
    return "tiny" if arch == "tiny" else "SSDlite" if arch.startswith("ssdlite") else "GluonCV SSDs"


def test_cli_defaults_are_the_configs():
    args = _train_parser().parse_args(["--data", "d", "--out", "o"])
    assert (args.epochs, args.batch_size, args.wd) == (TrainConfig.epochs, TrainConfig.batch_size, TrainConfig.wd)


@pytest.mark.parametrize("arch", architectures())
def test_help_names_each_architectures_schedule_and_learning_rate(arch):
    recipe = recipe_for(arch)
    schedule = recipe.defaults(32)["lr_schedule"]
    said = dict((name, families) for name, families in re.findall(r"(\w+) \(([^)]*)\)", _help("--lr-schedule")))
    assert _group(arch) in said.get(schedule, ""), (arch, schedule, _help("--lr-schedule"))
    lr_help = _help("--lr")
    match = re.search(r"([\d.]+)(?:×batch/(\d+))? for " + re.escape(_group(arch)), lr_help)
    assert match, (arch, lr_help)
    for batch in (32, 96):
        scale = batch / float(match.group(2)) if match.group(2) else 1.0
        assert recipe.defaults(batch)["lr"] == pytest.approx(float(match.group(1)) * scale), (arch, batch)
