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
