"""The command line as a newcomer meets it: the installed ``ssd`` command works from any folder,
commands that run no network start without MXNet (nor the HTTP library: 60 ms of every start), and ``detect``'s exit status says whether the run
completed (a few unreadable photos are results, not a failed run)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

SSD = os.path.join(os.path.dirname(sys.executable), "ssd")      # the venv's console script

NO_MXNET = """
import sys
from ssd.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:      # --help
    code = exit.code
loaded = sorted(m for m in ("mxnet", "gluoncv", "requests") if m in sys.modules)
print("LOADED:" + ",".join(loaded), file=sys.stderr)
sys.exit(code)
"""


def _results_file(folder, name: str = "season.json", camera: str = "cam1") -> str:
    doc = {"info": {"format_version": "1.6", "detector_metadata": {"typical_detection_threshold": 0.2}},
           "detection_categories": {"1": "animal"},
           "images": [{"file": f"{camera}/a.jpg",
                       "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}]},
                      {"file": f"{camera}/b.jpg", "detections": []},
                      {"file": f"{camera}/c.jpg", "failure": "truncated", "detections": None}]}
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    os.makedirs(os.path.join(folder, camera), exist_ok=True)
    for im in doc["images"]:                       # the photos it names, for sort to find (their bytes unread)
        open(os.path.join(folder, im["file"]), "wb").close()
    return path


def test_the_installed_command_works_outside_the_project(tmp_path):
    assert os.path.isfile(SSD), "make setup installs the project: .venv/bin/ssd"
    r = subprocess.run([SSD, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("usage: ssd ") and "detect" in r.stdout, r.stderr
    r = subprocess.run([SSD, "results", "summary", _results_file(str(tmp_path))], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "3" in r.stdout and "animal" in r.stdout, r.stderr
    r = subprocess.run([SSD, "models"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "no usable model found" in r.stderr      # the test's own empty folder


@pytest.mark.parametrize("argv", [
    ["--help"], ["detect", "--help"], ["train", "--help"],
    ["results", "summary", "{results}"], ["results", "summary", "{results}", "--json"],
    ["results", "merge", "{results}", "{other}", "-o", "{tmp}/merged.json"],
    ["results", "sort", "{results}", "--images", "{tmp}", "--into", "{tmp}/../sorted-{name}"],   # outside the photos
    ["models"], ["models", "--root", "{shipped}"], ["data", "info", "{synth}"], ["models", "pull", "--list"],
    ["data", "synth", "--out", "{tmp}/synth", "--num-train", "3", "--num-val", "2", "--size", "64"],
])
def test_commands_that_run_no_network_import_no_mxnet_nor_requests(argv, tmp_path, synth_dir, shipped_models_root):
    values = {"results": _results_file(str(tmp_path)), "other": _results_file(str(tmp_path), "b.json", "cam2"),
              "tmp": str(tmp_path), "synth": synth_dir, "shipped": shipped_models_root, "name": tmp_path.name}
    r = subprocess.run([sys.executable, "-c", NO_MXNET, *[a.format(**values) for a in argv]], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.splitlines()[-1] == "LOADED:", r.stderr[-500:]


def test_a_reader_that_leaves_early_gets_no_error_line(tmp_path):
    """``ssd models pull --list | head -1``: the reader closes the pipe; no "error: Broken pipe", status 141."""
    read_end, write_end = os.pipe()
    os.close(read_end)                       # gone before the command writes its first line
    try:
        r = subprocess.run([SSD, "models", "pull", "--list"], cwd=tmp_path, stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert r.returncode == 141, r.stderr
    assert r.stderr == "", r.stderr


def test_detect_exits_0_with_failures_recorded_and_writes_the_one_typical_threshold(tiny_model_dir, tmp_path):
    from ssd.cli.detect import EXIT_CODES
    from ssd.data.synthetic import render_example
    from ssd.inference.thresholds import TYPICAL_THRESHOLD

    folder = tmp_path / "card"
    folder.mkdir()
    Image.fromarray(render_example(1, 0, "val")[0]).save(folder / "good.jpg")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 not a photo")
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", tiny_model_dir, str(folder), "--json",
                        str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "bad.jpg" in r.stderr and "1 failed" in r.stderr
    doc = json.loads(out.read_text())
    failed = [e for e in doc["images"] if e.get("failure")]
    assert [e["file"] for e in failed] == ["bad.jpg"] and len(doc["images"]) == 2
    assert doc["info"]["detector_metadata"]["typical_detection_threshold"] == TYPICAL_THRESHOLD
    # a run that cannot complete exits 2 with one line, and --help documents every status
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", tiny_model_dir, str(tmp_path / "none"),
                        "--json", str(tmp_path / "x.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("error: ")]) == 1, r.stderr
    h = subprocess.run([sys.executable, "-m", "ssd", "detect", "--help"], capture_output=True, text=True, timeout=120)
    assert EXIT_CODES in h.stdout and all(f"\n  {c} " in h.stdout for c in ("0", "2", "130", "1"))


def test_models_with_a_mistyped_root_names_the_folder_that_is_not_there(tmp_path, capsys):
    """``--root modles``: "no usable model found" alone sends the user to pull into the wrong place."""
    from ssd.cli.main import main

    typo = tmp_path / "modles"
    assert main(["models", "--root", str(typo)]) == 0
    err = capsys.readouterr().err
    assert f"{typo} does not exist" in err and "no usable model found" in err
    (tmp_path / "empty").mkdir()
    assert main(["models", "--root", str(tmp_path / "empty")]) == 0
    err = capsys.readouterr().err
    assert f"no usable model found in {tmp_path / 'empty'}" in err and "does not exist" not in err


def _help(capsys, monkeypatch, *argv: str) -> str:
    from ssd.cli.main import main

    monkeypatch.setenv("COLUMNS", "400")              # one line per option: phrases are not wrapped apart
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_the_help_says_what_the_docs_say(capsys, monkeypatch):
    """``--help`` is the reference a user checks the README against: today's rules, no contradictions."""
    top = next(line for line in _help(capsys, monkeypatch).splitlines() if line.strip().startswith("results"))
    assert all(word in top for word in ("merge", "summar", "sort", "export", "rebase")), top
    detect = {line.split()[0]: line for line in _help(capsys, monkeypatch, "detect").splitlines()
              if line.strip().startswith("--")}
    assert "camera" in detect["--flag-repeats"] and "folder as suspect" not in detect["--flag-repeats"]
    assert "1 ≤ I ≤ N" in detect["--shard"]            # which number the first machine takes
    train = {line.split()[0]: line for line in _help(capsys, monkeypatch, "train").splitlines()
             if line.strip().startswith("--")}
    assert "(default: None)" not in "".join(train.values())      # "--lr … default: 0.01 …" said None beside it
    assert "(default: True)" not in train["--no-cache"] and "(default: 20)" in train["--epochs"]
    from ssd.models.registry import architectures
    assert [a for a in architectures() if a not in train["--model"]] == []     # SSDlite was left unnamed


def _parsers(parser=None, path: str = ""):
    """Every (sub)command's parser with its path (``results sort``), commands before their actions."""
    import argparse

    from ssd.cli.main import build_parser

    parser = parser or build_parser()
    yield path.strip(), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def _stated_help(parser, action) -> str:
    """An option's help as ``--help`` prints it (``%(default)s`` filled in, the formatter's own default added)."""
    return parser._get_formatter()._expand_help(action) if action.help else ""


def test_every_option_says_what_it_does_and_its_default():
    """A user reads ``--help`` to choose a value: a bare ``--nms NMS`` or a default left unsaid sends them to the
    source; "(default: None)" beside "guessed when omitted" says something else than the code does."""
    import argparse

    silent, unstated, none_said, undescribed = [], [], [], []
    for path, parser in _parsers():
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if path and leaf and not parser.description:
            undescribed.append(path)
        for action in parser._actions:
            skipped = isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
            if skipped or action.help == argparse.SUPPRESS:
                continue
            name = f"{path} {action.option_strings[-1] if action.option_strings else action.metavar or action.dest}"
            text = _stated_help(parser, action)
            if not text:
                silent.append(name)
            if "(default: None)" in text:
                none_said.append(name)
            flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
            if action.option_strings and not flag and action.default not in (None, argparse.SUPPRESS) \
                    and "default" not in text:
                unstated.append(f"{name} ({action.default!r})")
    assert silent == [] and unstated == [] and none_said == [] and undescribed == [], \
        f"no help: {silent}; default unsaid: {unstated}; '(default: None)': {none_said}; no description: {undescribed}"


def test_password_reads_a_piped_password_and_an_empty_pipe_is_one_error_line(tmp_path):
    """``echo … | ssd password`` (a script, a secrets manager) has no terminal to ask twice: it read the first
    line, then ended in a traceback at the second prompt. From a pipe it now takes the one line given."""
    from ssd.base.access import check_password

    r = subprocess.run([SSD, "password"], input="correct horse battery\n", cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("password_hash = "))
    assert check_password("correct horse battery", line.split('"')[1]) and "Traceback" not in r.stderr
    r = subprocess.run([SSD, "password"], input="", cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    assert [x for x in r.stderr.splitlines() if x.startswith("error: ")], r.stderr
