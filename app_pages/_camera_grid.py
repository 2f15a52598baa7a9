"""The Camera traps page's results grid: a page of thumbnails named by their file (the folder on
hover), the images that could not be read listed apart, and one image large with the table of the
boxes drawn on it.

Only widgets here: which images pass the filters, their pictures and table rows are
``ssd.camtrap.browse`` calls. Names come from an untrusted results file: Markdown is escaped in
button labels and their help, and tables and ``st.text`` show them as plain text.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

import pandas as pd
import streamlit as st

from ssd.base.text import md_escape, plain_text
from ssd.camtrap.browse import (PAGE_SIZE, detection_rows, failure_rows, name_and_folder, page_count, page_of,
                                picture, picture_caption, split_failures)
from ssd.inference.filtering import ShownFilter

COLUMNS = 6
LABEL_CHARS = 32          # a longer file name keeps its start and its end: "IMG_20240612…_0042.JPG"


def _label(name: str) -> str:
    if len(name) <= LABEL_CHARS:
        return name
    half = (LABEL_CHARS - 1) // 2
    return f"{name[:half]}…{name[-half:]}"


def _open_button(entry: Dict[str, Any], index: int) -> None:
    """The thumbnail's button: its file name; the folder (and the full name) on hover."""
    name, folder = name_and_folder(entry["file"])
    hover = f"{name} in {folder + '/' if folder else 'the top folder'}: click to show it large"
    if st.button(md_escape(_label(name)), key=f"ct_open_{index}", help=md_escape(hover)):
        st.session_state["ct_large"] = entry["file"]


def grid_panel(doc: Dict[str, Any], entries: List[Dict[str, Any]], image_root: str, shown: ShownFilter,
               full: Callable = list) -> None:
    """One page of thumbnails of the images that were read; a click on a name shows that image large.
    ``full(entries)``: those entries whole (the page holds compact records; the boxes are read back)."""
    readable, failed = split_failures(entries)
    pages = page_count(len(readable))
    if st.session_state.get("ct_page", 1) > pages:
        st.session_state["ct_page"] = pages           # the filters left fewer pages than the one shown
    page = int(st.number_input("Page", min_value=1, max_value=pages, step=1, key="ct_page", persist_state="session"))
    st.caption(f"page {page} of {pages}, {len(readable)} image(s) match the filters"
               + (f"; {len(failed)} could not be read (listed below)" if failed else ""))
    grid = st.columns(COLUMNS)
    for i, entry in enumerate(full(page_of(readable, page))):
        with grid[i % COLUMNS]:
            pic = picture(entry, doc["detection_categories"], image_root, shown, side=240)
            if pic is not None:
                st.image(pic, caption=md_escape(plain_text(picture_caption(entry, doc["detection_categories"], shown))))
            else:
                st.caption("(image not found)")
            _open_button(entry, (page - 1) * PAGE_SIZE + i)


def failures_panel(entries: List[Dict[str, Any]]) -> None:
    """The images among ``entries`` that could not be processed, with the reason, as a table."""
    failed = split_failures(entries)[1]
    if failed:
        st.markdown(f"**Could not be read: {len(failed)} image(s)**")
        st.dataframe(pd.DataFrame(failure_rows(failed)), hide_index=True)


def large_view(doc: Dict[str, Any], entries: List[Dict[str, Any]], image_root: str, shown: ShownFilter,
               full: Callable = list) -> None:
    """The image picked in the grid, large, with the detections drawn on it as a table (``full``:
    as ``grid_panel``'s)."""
    names = doc["detection_categories"]
    wanted = st.session_state.get("ct_large")     # asked once: per entry it was 0.9 s of a rerun at 50,000
    large = None if wanted is None else next((e for e in entries if e["file"] == wanted), None)
    if large is None:
        return
    large = full([large])[0]
    st.text(plain_text(large["file"]))
    if isinstance(large.get("warning"), str):
        st.warning(plain_text(large["warning"]))
    pic = picture(large, names, image_root, shown, side=1280)
    if pic is not None:
        st.image(pic, caption=md_escape(plain_text(picture_caption(large, names, shown))))
    rows = detection_rows(large, names, shown)
    hidden = len(large.get("detections") or []) - len(rows)
    st.caption(f"{len(rows)} detection(s) at the filters above"
               + (f"; {hidden} more below the confidence or hidden as suspect" if hidden else ""))
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
