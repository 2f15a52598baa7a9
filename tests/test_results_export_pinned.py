"""``results export``'s outputs pinned byte for byte, before it is rewritten to read the file as it
goes: for each format (coco, xlsx, camtrap-dp) the lines it prints, the exit status, every refusal's
message and the files it writes (a workbook as its cells, the moment of the export written as
``NOW``), over the files the summary, sort and split pins cover (episodes, per-class thresholds,
suspect repeats, failures, cut-short videos, ``--path-prefix``, Windows names, refusals of the file
and the flags).

Regenerate them only for a change meant to alter them:
``SSD_REPIN=1 .venv/bin/python -m pytest tests/test_results_export_pinned.py``.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List

import pytest

from ssd.cli.main import main
from tests.pinned import held_to_pin, reading_in_pieces
from tests.test_results_split_pinned import _split_files
from tests.test_results_summary_pinned import _episodes_doc

PINNED = os.path.join(os.path.dirname(__file__), "data", "results_export_pinned.json")

_FILES = ["ep_sized.json", "a.json", "b_images_first.json", "ep.json", "ep_recorded.json", "odd_names.json", "empty.json"]
_REFUSED = ["hostile.json", "hostile_late.json", "bad_info_and_entry.json", "unknown_cat.json", "not_json.json",
            "trailing.json", "list.json", "no_images.json", "nan.json", "latin1.json", "nowhere.json",
            "folder.json", "deep.json", "dotdot.json"]


def _runs() -> Dict[str, List[str]]:
    """name → the command line after ``results export`` (without ``--out``, added per format)."""
    runs: Dict[str, List[str]] = {}
    for fmt in ("coco", "xlsx", "camtrap-dp"):
        for f in _FILES:
            runs[f"{fmt}_{f[:-5]}"] = [f, "--format", fmt]
        runs[f"{fmt}_ep_sized_threshold"] = ["ep_sized.json", "--format", fmt, "--threshold", "0.05"]
        runs[f"{fmt}_ep_threshold"] = ["ep.json", "--format", fmt, "--threshold", "0.05", "--show-suspect"]
        runs[f"{fmt}_ep_per_class"] = ["ep.json", "--format", fmt, "--thresholds", "person=0.5,animal=0.2"]
        runs[f"{fmt}_ep_gap_depth"] = ["ep.json", "--format", fmt, "--episode-gap", "3600", "--camera-depth", "1"]
        runs[f"{fmt}_abs_prefix"] = ["abs_ep.json", "--format", fmt, "--path-prefix", "/data/season"]
        runs[f"{fmt}_win_prefix"] = ["win.json", "--format", fmt, "--path-prefix", "D:\\season"]
        runs[f"{fmt}_win"] = ["win.json", "--format", fmt]
        runs[f"{fmt}_abs"] = ["abs_ep.json", "--format", fmt]
        runs[f"{fmt}_refused_prefix_outside"] = ["abs_ep.json", "--format", fmt, "--path-prefix", "/elsewhere"]
        runs[f"{fmt}_refused_class"] = ["ep.json", "--format", fmt, "--thresholds", "pikachu=0.5"]
        for f in _REFUSED:
            runs[f"{fmt}_refused_{f[:-5]}"] = [f, "--format", fmt]
    for name, argv in runs.items():
        if name.startswith("camtrap-dp"):
            argv += ["--latitude", "52.1", "--longitude", "4.3"]
    runs["camtrap-dp_ep_unlocated"] = ["ep.json", "--format", "camtrap-dp"]
    runs["camtrap-dp_ep_located"] = ["ep.json", "--format", "camtrap-dp", "--latitude", "52.1", "--longitude", "4.3",
                                     "--utc-offset", "+02:00", "--title", "T", "--sampling-design", "targeted"]
    runs["coco_refused_exists"] = ["ep.json", "--format", "coco", "--out", "a_file"]
    runs["coco_replace"] = ["ep.json", "--format", "coco", "--out", "a_file.json", "--replace"]
    return runs


RUNS = _runs()
_NOW = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\dZ?")


def _file(path: str) -> str:
    if path.endswith(".xlsx"):
        from openpyxl import load_workbook

        book = load_workbook(path)
        return json.dumps({ws.title: [[c for c in row] for row in ws.iter_rows(values_only=True)]
                           for ws in book.worksheets}, default=str, ensure_ascii=False)
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _made(path: str) -> Any:
    """Every file at ``path`` (a file or a folder) and its text (a workbook: its cells)."""
    if os.path.isfile(path):
        return {"": _file(path)}
    if not os.path.isdir(path):
        return None
    return {os.path.relpath(os.path.join(d, n), path): _file(os.path.join(d, n))
            for d, _, names in sorted(os.walk(path)) for n in sorted(names)}


def outputs(folder: str, capsys: Any) -> Dict[str, Dict[str, Any]]:
    _split_files(folder)
    sized = _episodes_doc(False)
    for k, im in enumerate(sized["images"]):
        if k % 4 != 3:
            im.update(width=640 + k, height=480)
    with open(os.path.join(folder, "ep_sized.json"), "w", encoding="utf-8") as fh:
        json.dump(sized, fh)
    with open(os.path.join(folder, "a_file.json"), "w") as fh:
        fh.write("mine")
    capsys.readouterr()
    top = os.path.realpath(folder)
    got: Dict[str, Dict[str, Any]] = {}
    for name, argv in RUNS.items():
        fmt = argv[argv.index("--format") + 1]
        out = argv[argv.index("--out") + 1] if "--out" in argv else \
            f"out/{name}" + {"coco": ".json", "xlsx": ".xlsx", "camtrap-dp": ""}[fmt]
        os.makedirs("out", exist_ok=True)
        try:
            rc: Any = main(["results", "export", *argv, *([] if "--out" in argv else ["--out", out])])
        except (Exception, SystemExit) as err:
            rc = f"raised {type(err).__name__}: {err}"
        captured = capsys.readouterr()
        made = _made(out)
        text = json.dumps(made, ensure_ascii=False)
        got[name] = {"rc": rc, "stdout": captured.out.replace(top, "TOP").replace(folder, "TOP"),
                     "stderr": captured.err.replace(top, "TOP").replace(folder, "TOP"),
                     "made": None if made is None else json.loads(_NOW.sub("NOW", text.replace(top, "TOP")))}
    return got


@pytest.mark.parametrize("read_chars", [None, 7])
def test_outputs_are_those_pinned(tmp_path, capsys, monkeypatch, read_chars):
    monkeypatch.chdir(tmp_path)
    reading_in_pieces(monkeypatch, read_chars)
    got = outputs(str(tmp_path), capsys)
    held_to_pin(got, PINNED, may_repin=read_chars is None)


def test_pinned_runs_cover_what_they_claim():
    with open(PINNED, encoding="utf-8") as fh:
        pinned = json.load(fh)
    coco = json.loads(pinned["coco_ep_sized"]["made"][""])
    assert len(coco["annotations"]) > 3 and len(coco["images"]) > 3
    assert pinned["coco_ep_sized"]["made"] != pinned["coco_ep_sized_threshold"]["made"]
    assert "observations.csv" in pinned["camtrap-dp_ep"]["made"]
    assert pinned["camtrap-dp_ep"]["made"] != pinned["camtrap-dp_ep_per_class"]["made"]
    assert pinned["xlsx_ep"]["made"][""] != pinned["xlsx_ep_threshold"]["made"][""]
    for name in RUNS:
        if "refused" in name and name != "xlsx_refused_dotdot":     # a workbook lists names as written
            assert pinned[name]["rc"] != 0 and pinned[name]["stderr"].startswith("error:"), name
            assert pinned[name]["made"] is None or name == "coco_refused_exists", name
