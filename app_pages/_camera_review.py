"""The Camera traps page's repeat review: suspect boxes grouped by camera and place, a grid of
crops per group, a decision per group, then a cleaned results file (``ssd.camtrap.review``).

Only widgets here: grouping, cropping and cleaning are library calls. File and folder names come
from an untrusted results file and are shown as plain text.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional

import streamlit as st

from app_pages import _access
from ssd.base.errors import SSDError
from ssd.base.text import md_escape, plain_text
from ssd.camtrap.browse import crop
from ssd.camtrap.review import DECISIONS, RepeatGroup, apply_decisions, decisions_document, repeat_groups
from ssd.workspace import check_photo_path

UNDECIDED = "undecided"
CROPS_PER_GROUP = 8
GROUPS_SHOWN = 12


def _group_ui(doc: Dict[str, Any], k: int, group, image_root: str, pictures: Dict[str, Any]) -> None:
    """One group: where it is, a row of crops (``pictures``' entries: the same, named as on this
    machine), and the decision radio."""
    files = group.files(doc)
    st.text(plain_text(f"{group.folder or '.'} · place {group.id.rsplit('@', 1)[-1]} · {len(group.members)} "
                       f"detection(s) in {len(files)} image(s) · box {[round(v, 3) for v in group.box]}"))
    cols = st.columns(CROPS_PER_GROUP)
    for c, (i, j) in zip(cols, group.members[:CROPS_PER_GROUP]):
        entry = pictures["images"][i]
        pic = crop(entry, entry["detections"][j], image_root, side=120)
        if pic is not None:
            c.image(pic, caption=f"{entry['detections'][j]['conf']:.2f}")
        else:
            c.text("(not found)")
    st.radio("Decision", [UNDECIDED, *DECISIONS], key=f"ct_rv_{k}", persist_state="session", horizontal=True,
             format_func=lambda d: {"real": "these are real", "false positive": "false positive"}.get(d, d))


def _decisions(groups: List) -> Dict[str, str]:
    return {g.id: st.session_state.get(f"ct_rv_{k}", UNDECIDED) for k, g in enumerate(groups)}


def _write_ui(doc: Dict[str, Any], groups: List, results_path: str, open_results: Optional[Callable] = None,
              whole: Optional[Callable[[], Dict[str, Any]]] = None) -> None:
    """Where the cleaned file goes, the button that writes it, and the decisions as a download;
    once written, a button that opens the cleaned file (the page still shows the file reviewed).
    ``whole()``: ``doc`` with every box, which the cleaned file is written from."""
    decided = {k: v for k, v in _decisions(groups).items() if v != UNDECIDED}
    default = os.path.splitext(results_path)[0] + ".reviewed.json" if results_path else "reviewed.json"
    out = st.text_input("Cleaned results file", value=default, key="ct_rv_out", persist_state="session")
    decisions = decisions_document(doc, groups, decided, results=os.path.abspath(results_path) if results_path else None)
    c1, c2 = st.columns(2)
    if c1.button("Write cleaned results", key="ct_rv_write", disabled=not decided) and _write(
            (whole or (lambda: doc))(), decisions, out, results_path):
        if open_results is not None:
            st.button("Open the cleaned results", key="ct_rv_open", on_click=open_results, args=(out,))
    c2.download_button("Decisions (JSON)", json.dumps(decisions, indent=1), "repeat-decisions.json",
                       "application/json", key="ct_rv_dl", on_click="ignore", disabled=not decided,
                       help="Apply them later with `python -m ssd results repeats apply`.")


def _write(doc: Dict[str, Any], decisions: Dict[str, Any], out: str, results_path: str) -> bool:
    """Write the cleaned file (never over the results reviewed) and say what it removed; False on a refusal."""
    from ssd.base.atomic import atomic_write_json

    try:
        check_photo_path(out, "The cleaned results file", _access.roots())
        if os.path.abspath(out) == os.path.abspath(results_path):
            raise SSDError("the cleaned file must not replace the original results; choose another name")
        cleaned = apply_decisions(doc, decisions)
        atomic_write_json(out, cleaned)
    except (SSDError, OSError) as err:
        st.error(md_escape(err))
        return False
    last = cleaned["info"]["repeat_review"][-1]["groups"]
    st.success(f"Wrote {md_escape(out)}: {sum(g.get('detections_removed', 0) for g in last)} detection(s) removed "
               "(every box at a false positive's place in that camera, whatever its score, not only the suspects "
               f"listed), {sum(g.get('detections_confirmed', 0) for g in last)} confirmed. The page still shows the "
               "results before this review: open the cleaned file to browse, sort and export it.")
    return True


def _forget_other_reviews(results_path: str, groups: List[RepeatGroup]) -> None:
    """Decisions are kept by the group's place in the list (``ct_rv_K``): when another results file
    (or another version's groups) is shown, they belong to groups no longer there, and kept they
    pre-marked the new file's groups unseen. Cleared then."""
    ss = st.session_state
    source = (os.path.abspath(results_path) if results_path else "", tuple(g.id for g in groups))
    if ss.get("ct_rv_for") != source:
        for key in [k for k in ss if isinstance(k, str) and k.startswith("ct_rv_") and k[6:].isdigit()]:
            del ss[key]
        ss["ct_rv_for"] = source


def review_panel(doc: Dict[str, Any], results_path: str, image_root: str,
                 pictures: Optional[Dict[str, Any]] = None, groups: Optional[List[RepeatGroup]] = None,
                 open_results: Optional[Callable[[str], None]] = None,
                 whole: Optional[Callable[[], Dict[str, Any]]] = None) -> None:
    """Suspect repeats by group, decisions, cleaned file; a hint when nothing is flagged. The decisions
    name ``doc``'s files as written (``repeats apply`` reads that file); ``pictures``, the same entries
    with names below a path prefix, finds the crops; ``groups``, ``repeat_groups(doc)`` when the page
    keeps it (it looks at every detection of the season: a second per rerun at 100,000 entries);
    ``open_results(path)``, the page's way to show the cleaned file once written; ``whole()``, ``doc``
    with every box (the page holds compact records that keep only the suspects' boxes)."""
    st.subheader("Repeat review")
    groups = repeat_groups(doc) if groups is None else groups
    if not groups:
        st.caption("No detection is flagged as a repeat in these results. Flag them when running a folder "
                   "(\"Flag repeats in ≥ K images\") to review them here.")
        return
    st.caption(f"{len(groups)} group(s) of suspect boxes: the same place in many images of one camera. Mark each "
               "group as real or as a false positive, then write a cleaned results file (false positives removed, "
               "the decisions recorded in its info).")
    _forget_other_reviews(results_path, groups[:GROUPS_SHOWN])
    for k, group in enumerate(groups[:GROUPS_SHOWN]):
        with st.container(border=True):
            _group_ui(doc, k, group, image_root, pictures or doc)
    if len(groups) > GROUPS_SHOWN:
        st.caption(f"{len(groups) - GROUPS_SHOWN} smaller group(s) not shown; review the largest first.")
    _write_ui(doc, groups[:GROUPS_SHOWN], results_path, open_results, whole)
