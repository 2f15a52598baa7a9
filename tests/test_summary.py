"""Dataset summary: counts match the fixture, plots are self-contained Figures, CLI prints a table."""
from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pytest

try:
    from cct_fixture import make_ena24_like
except ImportError:  # tests/ became a package
    from tests.cct_fixture import make_ena24_like

from ssd.cli import data as cli_data
from ssd.data import cct
from ssd.data import summary
from ssd.data.dataset import DatasetSplits, InMemoryDataset


@pytest.fixture(scope="module")
def ena(tmp_path_factory):
    return make_ena24_like(str(tmp_path_factory.mktemp("ena_sum")), n_images=40)


@pytest.fixture(scope="module")
def splits(ena):
    return cct.load_cct(ena["json_path"])


def test_counts_match_fixture(ena, splits, monkeypatch):
    monkeypatch.setattr(cct, "decode_rgb", lambda p: pytest.fail("summary decoded an image"))
    s = summary.summarize(splits)
    assert s["images"]["total"] == ena["n_usable"]
    assert s["images"]["train"] == len(splits.train) and s["images"]["val"] == len(splits.val)
    assert s["boxes"]["total"] == ena["boxes_total"]
    assert s["images_without_boxes"]["total"] == ena["empty_images"]
    assert {c: v["total"] for c, v in s["boxes_per_class"].items()} == ena["boxes_per_class"]
    assert all(v["train"] + v["val"] == v["total"] for v in s["boxes_per_class"].values())
    assert s["skipped"] == ena["skipped"]
    assert s["classes"] == ena["classes"]
    assert s["class_mapping"][8]["id"] == 9
    st = s["box_stats"]
    assert st["width"]["count"] == ena["boxes_total"]
    assert 0 < st["width"]["min"] <= st["width"]["p50"] <= st["width"]["max"] <= 1
    assert 0 < st["height"]["min"] <= st["height"]["max"] <= 1
    assert st["aspect_ratio"]["min"] > 0
    json.dumps(s)   # JSON-able for the app / --json


def test_format_summary_table(splits):
    text = summary.format_summary(summary.summarize(splits))
    assert "Vehicle (id 9)" in text
    assert "category without boxes: Human" in text
    assert "without boxes" in text and "aspect_ratio" in text


def test_plot_returns_figure(splits):
    from matplotlib import _pylab_helpers
    from matplotlib.figure import Figure

    before = set(_pylab_helpers.Gcf.figs)
    fig = summary.plot_box_stats(splits)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert fig.axes[0].collections, "scatter of box sizes is drawn"
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(_pylab_helpers.Gcf.figs) == before      # nothing registered with pyplot


def test_empty_dataset_plot_and_summary():
    ds = InMemoryDataset([np.zeros((8, 8, 3), np.uint8)], [np.zeros((0, 5), np.float32)], ["a"])
    sp = DatasetSplits(train=ds, val=None, classes=["a"], kind="test", root="/x")
    s = summary.summarize(sp)
    assert s["images"] == {"train": 1, "total": 1}
    assert s["box_stats"]["width"] == {"count": 0}
    assert "nothing skipped" in summary.format_summary(s)
    assert len(summary.plot_box_stats(sp).axes) == 3


def test_cli_info(ena, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="ssd")
    data = parser.add_subparsers(dest="cmd").add_parser("data").add_subparsers(dest="data_cmd")
    cli_data.register_info(data)
    out = tmp_path / "boxes.png"
    args = parser.parse_args(["data", "info", ena["root"], "--plot", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "coco-camera-traps" in printed and "Vehicle" in printed and str(out) in printed
    assert out.read_bytes()[:4] == b"\x89PNG"
    args = parser.parse_args(["data", "info", ena["root"], "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["images"]["total"] == ena["n_usable"]


def test_format_summary_keeps_one_row_per_hostile_name():
    """A class or dropped category named with a line break or a terminal escape (from a stranger's
    JSON) stays on its own row, shown escaped, and the columns still line up."""
    labels = [np.array([[0, .1, .1, .5, .5]], np.float32)]
    ds = InMemoryDataset([np.zeros((8, 8, 3), np.uint8)], labels, ["\x1b[2Jcat"])
    sp = DatasetSplits(train=ds, val=None, classes=["\x1b[2Jcat"], kind="test", root="/x",
                       skipped={"category without boxes: dog\n<b>evil</b>": 1})
    lines = summary.format_summary(summary.summarize(sp)).split("\n")
    assert not any("\x1b" in line for line in lines)
    reason = [line for line in lines if "category without boxes" in line]
    assert len(reason) == 1 and reason[0].endswith(" 1") and "dog\\n<b>evil</b>" in reason[0]
    row = next(line for line in lines if "cat" in line and "\\x1b[2J" in line)
    header = next(line for line in lines if line.startswith("class"))
    assert len(row) == len(header), "the escaped name is what the column is sized to"
