"""Page settings in the address: a reload (F5), a bookmark or a shared link opens a page as it was set.

``persist_state="session"`` keeps a widget's value across page switches, but a reload starts a new
session and lost every setting. ``synced`` draws a keyed widget with the link's value for it (read
once per session: afterwards the widget is the truth), then writes the widget's value back into
``st.query_params``, left out when it is the default so a link stays short
(``/detect?conf=0.35&model=tiny-pikachu``). Writing the query string changes the browser's address
without another run.

The address is untrusted input: a value is used only when its parser says the widget allows it
(in range, on the step, one of the options), otherwise the default stands, silently. Only small
plain settings go there (numbers, choices, names the app lists), never uploads or paths: a shared
link shows what it holds.

A page whose widgets appear only once something is open (the Camera traps filters, after a results
file is chosen: a path, which a reload forgets and the address never holds) names those settings
in ``page_opened(..., later=)``: the link's values for them are kept from the first run and used
when their widget is first drawn, even in a later run.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, TypeVar

import streamlit as st

T = TypeVar("T")
Parse = Callable[[str], Any]      # URL text → a value the widget allows, or None

MAX_TEXT = 200                    # longer URL values are not read at all
READ = "_url_read"                # session_state: the widget keys whose link value was already read
OPENED, READING = "_url_opened", "_url_reading"   # the pages opened in this session; is this run a first?
HELD, PAGE = "_url_held", "_url_page"   # {page: {name: the link's text}} waiting for their widget; the page running


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def page_opened(page: str, later: Callable[[str], bool] = lambda name: False) -> None:
    """At the top of a page: the link is read in the page's first run of the session only. Later
    runs keep what the person changed; a widget first drawn later (another feature map's row)
    opens on its own default, not on a value the address held for another one. ``later(name)``:
    a setting whose widget may first be drawn in a later run (one widget per name); its link value
    is kept until then."""
    ss = st.session_state
    opened = ss.setdefault(OPENED, set())
    ss[READING] = page not in opened
    ss[PAGE] = page
    if ss[READING]:
        ss.setdefault(HELD, {})[page] = {name: st.query_params.get(name) for name in st.query_params.keys()
                                         if len(name) <= MAX_TEXT and later(name)}
    opened.add(page)


def from_link(name: str, key: str, parse: Parse) -> None:
    """Before the widget ``key`` is drawn: the value the address gives ``name``, if the widget
    allows it; only in the page's first run (or, for a ``later`` name, when first drawn), once per widget."""
    ss = st.session_state
    read = ss.setdefault(READ, set())
    held = ss.get(HELD, {}).get(ss.get(PAGE), {})
    if key in read or not (ss.get(READING) or name in held):
        return
    read.add(key)
    raw = st.query_params.get(name) if ss.get(READING) else held.get(name)
    held.pop(name, None)
    if raw is None or len(raw) > MAX_TEXT or not raw.isprintable():
        return
    try:
        value = parse(raw)
    except (ValueError, TypeError, ArithmeticError):    # a parser's own refusal; the default stands
        value = None
    if value is not None:
        ss[key] = value


def to_link(name: str, value: Any, default: Any, show: Callable[[Any], str] = _text) -> None:
    """The widget's value into the address, or out of it when it is the default; sent only when it
    changed (each write is a message to the browser)."""
    text = None if value == default or value is None else show(value)
    if st.query_params.get(name) == text:
        return
    if text is None:
        del st.query_params[name]
    else:
        st.query_params[name] = text


def synced(name: str, key: str, parse: Parse, default: Any, widget: Callable[[], T],
           show: Callable[[Any], str] = _text) -> T:
    """``widget()`` (a widget keyed ``key``) opened on the link's value of ``name``, its value then
    kept in the address; returns what the widget returns."""
    from_link(name, key, parse)
    value = widget()
    to_link(name, value, default, show)
    return value


def number(lo: float, hi: float, step: float) -> Parse:
    """A float slider's or number input's value: finite, within [lo, hi], put on the step."""
    def parse(text: str) -> Optional[float]:
        v = float(text)
        if not math.isfinite(v):
            return None
        v = round(lo + round((v - lo) / step) * step, 10)
        return v if lo <= v <= hi else None
    return parse


def integer(lo: int, hi: int, step: int = 1) -> Parse:
    """An integer widget's value: digits only, within [lo, hi], on the step from ``lo``."""
    def parse(text: str) -> Optional[int]:
        if not text.isdigit() or len(text) > 12:
            return None
        v = int(text)
        return v if lo <= v <= hi and (v - lo) % step == 0 else None
    return parse


def choice(options: Sequence[Any], show: Callable[[Any], str] = _text) -> Parse:
    """One of a widget's options, named in the address as ``show`` writes it."""
    by_text = {show(o): o for o in options}
    return by_text.get


def flag(text: str) -> Optional[bool]:
    """A checkbox or toggle: 1 or 0."""
    return {"1": True, "0": False}.get(text)
