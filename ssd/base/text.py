"""Text from outside (model metadata, file names, error messages quoting them) shown as plain text.

Why: Streamlit renders most strings as Markdown. A ``meta.json`` downloaded with a shared model, or
an upload's file name, could otherwise place links and remote images on the page (a request to a
stranger's host on every view). Pages pass such strings through ``md_escape`` before they reach
a Markdown-rendering call.
"""
from __future__ import annotations

import re

# Every ASCII punctuation character CommonMark or Streamlit gives a meaning to ([links](), ![images](),
# *emphasis*, `code`, <html>, $math$, :emoji:/:material/icons:, :red[colour], ~~strike~~, tables |).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~$:=^&])")


def md_escape(text: object) -> str:
    """``text`` with every Markdown-active character backslash-escaped and line breaks flattened."""
    flat = " ".join(str(text).split("\n"))
    return _SPECIAL.sub(r"\\\1", flat.replace("\r", " "))
