"""Text from outside (model metadata, file names, error messages quoting them) shown as plain text,
on a page, in a terminal and in the files we write.

Why: Streamlit renders most strings as Markdown. A ``meta.json`` downloaded with a shared model, or
an upload's file name, could otherwise place links and remote images on the page (a request to a
stranger's host on every view). Pages pass such strings through ``md_escape`` before they reach
a Markdown-rendering call. GitHub-flavoured Markdown also links bare ``www.host``,
``https://…`` and ``name@host`` ("autolink literals"), and Streamlit's renderer finds them in the
text *after* escapes are resolved, so a backslash cannot stop them: a WORD JOINER (U+2060,
invisible, no width) is put after ``www``, between ``:`` and ``//`` and after ``@``, which breaks
the pattern without changing what is shown (checked in Chromium by the browser test).
"""
from __future__ import annotations

import codecs
import math
import re
from typing import Optional, Tuple

# Every ASCII punctuation character CommonMark or Streamlit gives a meaning to ([links](), ![images](),
# *emphasis*, `code`, <html>, $math$, :emoji:/:material/icons:, :red[colour], ~~strike~~, tables |).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~$:=^&@])")
_AUTOLINK = re.compile(r"(?i)(\bwww(?=\.)|:(?=//)|@)")
WORD_JOINER = "\u2060"


def md_escape(text: object) -> str:
    """``text`` with every Markdown-active character backslash-escaped, autolink literals broken by a
    word joiner, line breaks flattened and other control characters shown as ``plain_text`` shows them."""
    flat = " ".join(str(text).split("\n")).replace("\r", " ")
    flat = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, terminal_safe(flat))
    return _SPECIAL.sub(r"\\\1", flat)


def mpl_escape(text: object) -> str:
    """``text`` for a matplotlib legend, drawn as it is: a pair of ``$`` would start mathtext, and a
    class name such as ``$\\x$`` (an unknown command) raised at draw time, a traceback on the page."""
    return str(text).replace("$", r"\$")


# ---- file names and terminals ------------------------------------------------------------------
#
# Why: a file name is bytes on POSIX. Python hands undecodable bytes over as lone surrogates
# (``b"bad\xff"`` → ``"bad\udcff"``), which UTF-8 cannot encode (the CSV writer crashed) and which
# JSON writes as ``\udcff`` (a lone surrogate many readers refuse). ``escape_name`` gives each such
# byte one visible form, ``\xff``, used alike in the results JSON, the CSV and the run's journal, so
# a resumed run still matches its files; ``name_on_disk`` turns it back to open the file.
# A name can also hold terminal escapes (``ESC ]0;… BEL`` retitles the window, ``ESC [2J`` clears
# it): ``terminal_safe`` shows every control character as its escape before the CLI prints it.

_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_NOT_FOR_TERMINALS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff" + _BIDI + "]")
_RAW_BYTE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")


def escape_name(name: str) -> str:
    """``name`` with each undecodable byte (a lone surrogate from the file system) as ``\\xHH``."""
    if name.isascii() or not any("\udc80" <= c <= "\udcff" for c in name):
        return name
    return "".join(f"\\x{ord(c) - 0xdc00:02x}" if "\udc80" <= c <= "\udcff" else c for c in name)


def _escape_unencodable(err: UnicodeError) -> Tuple[str, int]:
    """The ``ESCAPED`` codec error handler: each lone surrogate UTF-8 cannot encode written as
    ``escape_name`` writes an undecodable byte (``\\xff``), any other as its escape (``\\ud800``)."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    bad = err.object[err.start:err.end]
    return "".join(f"\\x{ord(c) - 0xdc00:02x}" if "\udc80" <= c <= "\udcff" else f"\\u{ord(c):04x}"
                   for c in bad), err.end


#: ``errors=`` for a text file written from another tool's names (a results file's): what UTF-8
#: cannot hold is escaped, not a crash; free for text that encodes (no check per value).
ESCAPED = "ssd-escaped"
codecs.register_error(ESCAPED, _escape_unencodable)


def name_on_disk(name: str) -> str:
    """The file-system form of an ``escape_name`` result (``\\xff`` back to the byte 0xff)."""
    return _RAW_BYTE.sub(lambda m: chr(0xdc00 + int(m.group(1), 16)), name) if "\\x" in name else name


def _terminal_escape(m: "re.Match[str]") -> str:
    c = m.group(0)
    if "\udc80" <= c <= "\udcff":
        return f"\\x{ord(c) - 0xdc00:02x}"
    if c == "\n":
        return "\\n"
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def terminal_safe(text: object, keep_newlines: bool = False) -> str:
    """``text`` with control characters (C0, DEL, C1), bidirectional overrides and lone surrogates
    shown as escapes (``\\x1b``, ``\\u202e``); line breaks kept only when asked (multi-line output)."""
    s = str(text)
    if keep_newlines:
        return "\n".join(_NOT_FOR_TERMINALS.sub(_terminal_escape, line) for line in s.split("\n"))
    return _NOT_FOR_TERMINALS.sub(_terminal_escape, s)


def plain_text(text: object) -> str:
    """``text`` for a widget that shows it as it is (``st.text``, a selectbox's or multiselect's option
    labels): a browser shows ESC, BEL or CR from a file or folder name as nothing, a box or a line break,
    so each control character gets the visible escape the command line prints (``terminal_safe``)."""
    return terminal_safe(text)


def format_duration(seconds: Optional[float]) -> str:
    """``1:02:03``, ``4:05``; "–" when unknown. Why not seconds: an ETA of ``35712 s`` must be
    worked out by whoever reads a ten-hour run's log; training, the app and the CLI say it alike."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
