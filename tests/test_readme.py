"""The README as a newcomer reads it: the two tutorials named by their titles, so they can be found."""
from __future__ import annotations

import os
import re

from conftest import REPO_ROOT


def test_readme_names_the_tutorials_by_their_titles():
    text = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()
    assert "Dive into Deep Learning" in text and '"Single Shot Multibox Detection"' in text
    assert '"Object Detection Using Convolutional Neural Networks"' in text
    # "d2l" alone is a nickname nobody new can look up; the banana set's name and the flag value stay
    nicknames = [m.group(0) for m in re.finditer(r"[^\n]{0,30}\bd2l\b(?! banana)(?!\s+--)[^\n]{0,30}", text)
                 if "--loss-norm d2l" not in m.group(0)]
    assert nicknames == []


DOCS = ["README.md", "docs/CAMERA_TRAPS.md", "docs/DATASETS.md", "docs/ONNX.md", "docs/SCALING.md",
        "docs/RELIABILITY.md", "docs/WEIGHTS.md", "docs/GPU.md", "docs/PERFORMANCE.md"]
COMMAND = re.compile(r"python -m ssd ((?:[^`\n#|])*)")


def _options(parser) -> tuple:
    """A parser's option strings and its sub-commands' parsers by name."""
    import argparse

    subs = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs = dict(action.choices)
    return {s for a in parser._actions for s in a.option_strings}, subs


def _unknown_flags(words: list, parser) -> list:
    """The ``--flags`` of one quoted command line its (sub-)command does not have; after ``launch … --``
    the words are a ``train`` command of their own."""
    options, subs = _options(parser)
    wrong = []
    for i, word in enumerate(words):
        if word in subs and not any(w.startswith("-") for w in words[:i]):
            return wrong + _unknown_flags(words[i + 1:], subs[word])
        if word == "--":
            from ssd.cli.main import build_parser
            return wrong + _unknown_flags(words[i + 1:], build_parser())
        if word.startswith("--") and word.split("=")[0] not in options:
            wrong.append(word)
    return wrong


def test_every_flag_the_docs_quote_exists_on_that_command():
    """A reader copies ``python -m ssd …`` lines from the README and docs/: a flag renamed in the code but
    not in the text fails with "unrecognized arguments" on the first try."""
    from ssd.cli.main import build_parser

    wrong, seen = [], 0
    for name in DOCS:
        text = open(os.path.join(REPO_ROOT, name), encoding="utf-8").read().replace("\\\n", " ")
        for m in COMMAND.finditer(text):
            seen += 1
            words = m.group(1).split()
            wrong += [f"{name}: {flag} in `python -m ssd {m.group(1).strip()}`"
                      for flag in _unknown_flags(words, build_parser())]
    assert seen > 40 and wrong == [], wrong
