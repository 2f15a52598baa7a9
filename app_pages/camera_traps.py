"""Camera traps: run a model over a folder of photos in the background, then browse the results.

The run is ``python -m ssd detect FOLDER --recursive`` started by ``ssd.jobs`` (the same code as
the CLI), so a page reload neither stops nor duplicates it; Stop checkpoints it and Resume goes on.
The browser reads a finished run's (or any) MegaDetector results file. File and class names come
from untrusted files: they are shown as plain text or in tables, never as Markdown. Every folder
typed here must lie under the photo roots, and beyond the loopback the page needs a password
(``_access``).
"""
from __future__ import annotations

import dataclasses
import os
import time

from typing import Any, Callable, Dict, List, Optional, Tuple

import pandas as pd
import streamlit as st

from app_pages import _access, _url
from app_pages import _shared as sh
from app_pages._camera_episodes import episode_controls
from app_pages._camera_exports import PAGE_TERMS, downloads_panel, explorer_panel, exports_panel, split_panel
from app_pages._camera_grid import failures_panel, grid_panel, large_view
from app_pages._camera_review import review_panel
from ssd import jobs
from ssd.base.errors import SSDError
from ssd.base.text import md_escape, plain_text
from ssd.camtrap.cameras import AUTO, CAMERA_DEPTH_CHOICES, depth_of, describe_depth, file_camera_rule
from ssd.camtrap.episodes import DEFAULT_EPISODE_GAP, file_gap
from ssd.camtrap.settings import RunSettings
from ssd.camtrap.video import DEFAULT_FRAME_EVERY
from ssd.camtrap.browse import STATES, filter_entries, page_count, page_of, picture, picture_caption
from ssd.camtrap.megadetector import typical_threshold
from ssd.camtrap.page_results import in_full, results_json_bytes, shown_doc, whole_doc
from ssd.camtrap.results_csv import results_csv_bytes
from ssd.camtrap.results_index import ResultsChanged
from ssd.camtrap.rebase import path_prefix_help, refuse_windows_names
from ssd.camtrap.review import repeat_groups
from ssd.camtrap.species import SPECIES_THRESHOLD, species_names
from ssd.camtrap.summary import coverage_notes, summarize
from ssd.workspace import check_photo_path
from ssd.inference.engines import engine_choices
from ssd.inference.filtering import ShownFilter
from ssd.inference.thresholds import RESULTS_FLOOR, TYPICAL_THRESHOLD

OTHER_RESULTS = "another results file…"
EPISODES_PER_PAGE = 10
FRAMES_PER_ROW = 8
# the review settings a link keeps (``_url``); never the results file, the photo folder or a prefix:
# paths on the machine serving the app, which a shared link would show
REVIEW_SETTINGS = ("conf", "show", "rows", "hide_suspect", "per_class", "species_conf")
CLASS_CONF = "conf_"        # + a class id of at most 6 digits: that class's own confidence
VIEWS = ("images", "episodes")


def _plain(text: str) -> str:
    """Escape Markdown (links, autolinks) in a message that quotes names from files (st.error renders it)."""
    return md_escape(text)


# ---- running a folder -------------------------------------------------------------------------

def _form_settings() -> RunSettings:
    """The run the form describes: the same settings object the CLI makes from its flags."""
    s = st.session_state
    return RunSettings(model=s.get("ct_model"), inputs=(os.path.abspath(os.path.expanduser(s.get("ct_folder", ""))),),
                       recursive=bool(s.get("ct_recursive", True)),
                       threshold=float(s.get("ct_threshold", TYPICAL_THRESHOLD)),
                       flag_repeats=int(s.get("ct_repeats", 0)), checkpoint_every=jobs.PAGE_CHECKPOINT_EVERY,
                       episode_gap=float(s.get("ct_episode_gap", DEFAULT_EPISODE_GAP)),
                       camera_depth=depth_of(s.get("ct_camera_depth", AUTO)),
                       frame_every=float(s.get("ct_frame_every", DEFAULT_FRAME_EVERY)),
                       engine=s.get("ct_engine", "auto"))


def _start(runs_root: str) -> None:
    s = st.session_state
    try:
        check_photo_path(s.get("ct_folder", ""), "The photo folder", _access.roots())
        jobs.start_batch_job(runs_root, s.get("ct_name", ""), _form_settings(), replace=bool(s.get("ct_replace")))
        s["ct_run"] = os.path.join(runs_root, s.get("ct_name", ""))
        s["ct_mine"] = [*s.get("ct_mine", ()), s["ct_run"]]     # its results are shown once it finishes
        s["ct_replace"] = False            # one replace per tick, not a standing order
        s["ct_name"] = jobs.form_defaults(runs_root)[1]     # the next card's Start is not refused for this name
    except SSDError as err:
        s["ct_flash"] = str(err)


def _resume(runs_root: str, run_dir: str) -> None:
    try:
        jobs.start_batch_job(runs_root, os.path.basename(run_dir), resume=True)
        st.session_state["ct_mine"] = [*st.session_state.get("ct_mine", ()), run_dir]
    except SSDError as err:
        st.session_state["ct_flash"] = str(err)


def _stop(runs_root: str, pid: int) -> None:
    jobs.stop_batch_job(runs_root, pid=pid)     # the run this tab showed, not one started since
    st.session_state["ct_stopping"] = True


def _offer_defaults(runs_root: str) -> None:
    """A new session's folder and run name: the last run's folder and a name no run has (from the runs
    folder: a fixed "season" drew "already exists" on the next Start). Typed values are kept."""
    s = st.session_state
    if "ct_folder" not in s or "ct_name" not in s:
        folder, name = jobs.form_defaults(runs_root)
        s.setdefault("ct_folder", folder)
        s.setdefault("ct_name", name)


def run_form_ui(runs_root: str, running: bool) -> None:
    """Folder, model, run name, typical threshold, repeats, subfolders, and Start."""
    st.subheader("Run a folder")
    _offer_defaults(runs_root)
    root, ok, broken, default_path = sh.list_models()
    if not ok:
        sh.no_model_help()
        return
    c1, c2 = st.columns(2)
    c1.text_input("Folder of photos (on the machine running this app)", key="ct_folder", persist_state="session",
                  placeholder="/data/season-2024")
    with c2:
        model = sh.model_picker("Model", ok, default_path, key="ct_model")
        sh.engine_select("ct_engine", choices=engine_choices(model))
    c3, c4, c5, c6 = st.columns(4)
    c3.text_input("Run name", key="ct_name", persist_state="session")
    c4.number_input("Typical threshold", 0.01, 1.0, TYPICAL_THRESHOLD, 0.05,
                    key="ct_threshold", persist_state="session",
                    help=f"Written into the results for Timelapse; every detection ≥ {RESULTS_FLOOR:g} is kept.")
    c5.number_input("Flag repeats in ≥ K images", 0, 1000, 0, 1, key="ct_repeats", persist_state="session",
                    help="A box at the same place in K or more images of one camera (a rock, a branch) is flagged "
                         "as suspect. 0 = off.")
    c6.number_input("Episode gap (s)", 1.0, 1800.0, DEFAULT_EPISODE_GAP, 10.0,
                    key="ct_episode_gap", persist_state="session",
                    help="Photos of one camera at most this far apart form one episode (a burst).")
    # the camera rule's longest choice whole at 1280 px (sidebar open); the folder settings together
    c7, c8, c9 = st.columns([1.45, 1.75, 4.6], vertical_alignment="bottom")
    c7.checkbox("Include subfolders", value=True, key="ct_recursive", persist_state="session")
    c8.number_input("Videos: a frame every (s)", 0.1, 60.0, DEFAULT_FRAME_EVERY, 0.5,
                    key="ct_frame_every", persist_state="session",
                    help="How often a video is looked at (.mp4 .avi .mov .mkv).")
    c9.selectbox("Camera folder", CAMERA_DEPTH_CHOICES, format_func=describe_depth,
                 key="ct_camera_depth", persist_state="session",
                 help="Which folder is one camera, for episodes, repeats and Camtrap DP deployments. Automatic: "
                      "site/cam/2024-05-01/100RECNX is camera site/cam (date and card folders removed). "
                      "N: the first N folder levels below the photo folder, whatever they are called.")
    b1, b2 = st.columns([1, 4], vertical_alignment="center")
    b1.button("Start", on_click=_start, args=(runs_root,), key="ct_start", type="primary", disabled=running)
    b2.checkbox("Replace the run of this name", key="ct_replace",
                help="A run name already used keeps its results: Start is refused unless this is ticked.")


def _shown_run(runs_root: str, current) -> str:
    """The run the monitor follows: the running one, else the one just started, else the newest."""
    run_dir = current.out if current is not None else st.session_state.get("ct_run")
    if not run_dir:
        runs = jobs.batch_runs(runs_root)
        run_dir = runs[0] if runs else None
    return run_dir


def _run_state_panel(runs_root: str, run_dir: str, current) -> None:
    """Progress with Stop while ``current`` (the job) runs; Resume after a stop; the outcome when done; the log."""
    running = current is not None
    status = jobs.batch_status(run_dir, running=running)
    st.text(plain_text(f"Run {os.path.basename(run_dir)}: {status['state']}"))
    done, total = int(status.get("done") or 0), int(status.get("total") or 0)
    if running:
        st.progress(jobs.batch_progress_fraction(status),
                    text=jobs.batch_progress_text(status, md_escape) if total else "starting (loading the model)…")
        st.button("Stop", on_click=_stop, args=(runs_root, current.pid), key="ct_stop",
                  disabled=bool(st.session_state.get("ct_stopping")),
                  help="Writes a checkpoint and stops; Resume continues where it stopped.")
    elif status["state"] in ("stopped", "interrupted"):
        st.info(f"Stopped at {done}/{total} images.")
        st.button("Resume", on_click=_resume, args=(runs_root, run_dir), key="ct_resume")
    elif status["state"] == "done":
        st.success(f"Finished: {total} images, {status.get('failures', 0)} failed.")
    with st.expander("Log"):
        st.code(jobs.batch_log_tail(run_dir, 12) or "(empty)")


def monitor_panel(runs_root: str, running: bool) -> None:
    """Follows the background run every 2 s while one runs; reruns the page when it starts or ends."""
    @st.fragment(run_every=2.0 if running else None)
    def monitor() -> None:
        current = jobs.current_batch_job(runs_root)
        if (current is not None) != st.session_state.get("ct_polling"):
            if current is None:
                st.session_state.pop("ct_stopping", None)
            st.rerun()
        if st.session_state.get("ct_flash"):
            st.error(_plain(st.session_state.pop("ct_flash")))
        run_dir = _shown_run(runs_root, current)
        if not run_dir:
            st.caption("No run yet.")
            return
        _run_state_panel(runs_root, run_dir, current)

    monitor()


# ---- browsing results ---------------------------------------------------------------------------

def _run_label(results_path: str) -> str:
    return results_path if results_path == OTHER_RESULTS else plain_text(jobs.results_label(results_path))


def results_source_ui(runs_root: str) -> Tuple[str, str, str]:
    """``(results path, folder its paths start from, path prefix)``: a results file of this page's
    runs (a run's own, or a cleaned file a repeat review wrote beside it), or any file (its names, if written on another machine, read below the folder from the prefix on).

    The choice is set in the session state, never dropped: a dropped key leaves the browser's box
    showing its old choice, which it sends back with the next filter change (the wrong run)."""
    st.subheader("Results")
    ss = st.session_state
    finished, listed = jobs.finished_results(runs_root), jobs.run_results_files(runs_root)
    pick = jobs.results_to_show(finished, ss.get("ct_finished_seen") or {}, ss.get("ct_results"), OTHER_RESULTS,
                                listed, mine=set(ss.get("ct_mine", ())))   # not another person's run
    ss["ct_finished_seen"] = finished
    if ss.get("ct_results") != pick:
        ss["ct_results"] = pick
    pick = st.selectbox("Results", [*listed, OTHER_RESULTS],
                        key="ct_results", persist_state="session", format_func=_run_label)
    if pick == OTHER_RESULTS:
        b1, b2, b3 = st.columns(3)
        return (b1.text_input("Results JSON (path)", key="ct_results_path", persist_state="session"),
                b2.text_input("Folder its paths start from", key="ct_image_root", persist_state="session"),
                b3.text_input("Path prefix in the results",
                              key="ct_path_prefix", persist_state="session", help=path_prefix_help(f"the folder in {PAGE_TERMS[1]}")))
    saved = jobs.batch_settings(os.path.dirname(pick))
    return pick, saved.inputs[0] if saved is not None and saved.inputs else "", ""


def _open_results_file(path: str, image_root: str, path_prefix: str) -> None:
    """Show ``path`` (a cleaned file just written) as "another results file", its photos where they were."""
    st.session_state.update(ct_results=OTHER_RESULTS, ct_results_path=path, ct_image_root=image_root,
                            ct_path_prefix=path_prefix)


def _class_conf(cid: str) -> Optional[str]:
    """The address's name for a class's own confidence; None (not kept) for an id that is not a short
    number: class ids come from an untrusted file."""
    return CLASS_CONF + cid if cid.isascii() and cid.isdigit() and len(cid) <= 6 else None


def _review_setting(name: str) -> bool:
    """A name the page's link may hold for the filters, drawn once a results file is open."""
    return name in REVIEW_SETTINGS or (name.startswith(CLASS_CONF) and _class_conf(name[len(CLASS_CONF):]) == name)


def _slug(state: str) -> str:
    return state.replace(" ", "-")      # "with-detections" in the address, not "with+detections"


def per_class_ui(names: Dict[str, str], threshold: float) -> Dict[str, float]:
    """A threshold per class (people at 0.5, animals at 0.2…), when asked for; else none. A class's
    own value is in the address while it differs from the main one."""
    if not _url.synced("per_class", "ct_per_class", _url.flag, False, lambda: st.checkbox(
            "A threshold per class", key="ct_per_class", persist_state="session",
            help="As MegaDetector's \"separate into folders\": each class its own confidence.")):
        return {}
    cols = st.columns(min(4, max(1, len(names))))
    out = {}
    for k, (cid, name) in enumerate(names.items()):
        label = md_escape(name)         # a widget label is Markdown; the name comes from the results file
        col, key = cols[k % len(cols)], f"ct_thr_{cid}"

        def draw() -> float:
            return float(col.number_input(label, 0.0, 1.0, float(threshold), 0.05, key=key, persist_state="session"))

        link = _class_conf(cid)
        out[name] = draw() if link is None else _url.synced(link, key, _url.number(0.0, 1.0, 0.01), threshold, draw)
    return {n: v for n, v in out.items() if v != threshold}


def filters_ui(doc: Dict[str, Any]) -> Tuple[ShownFilter, str]:
    """Confidence (per class if asked), classes, which images, hide suspect, images or episodes:
    ``(the shown filter, the image state)``. All but the classes (names from the file) are kept in
    the address."""
    names = doc["detection_categories"]
    f1, f2, f3, f4, f5 = st.columns([2, 2, 2, 1.5, 1])     # "Hide suspect" whole at 1280 px
    typical = min(1.0, typical_threshold(doc))
    threshold = _url.synced("conf", "ct_conf", _url.number(0.0, 1.0, 0.01), typical, lambda: f1.slider(
        "Confidence", 0.0, 1.0, typical, 0.01, key="ct_conf", persist_state="session"))
    classes = f2.multiselect("Classes", list(names.values()), default=list(names.values()),
                             key="ct_classes", persist_state="session",
                             format_func=plain_text)
    state = _url.synced("show", "ct_state", _url.choice(STATES, _slug), STATES[0], lambda: f3.selectbox(
        "Show", STATES, key="ct_state", persist_state="session"), show=_slug)
    hide_suspect = _url.synced("hide_suspect", "ct_hide_suspect", _url.flag, True, lambda: f4.checkbox(
        "Hide suspect", value=True, key="ct_hide_suspect", persist_state="session",
        help="Hide detections flagged as repeated at the same place (rocks, branches)."))
    _url.synced("rows", "ct_view", _url.choice(VIEWS), VIEWS[0], lambda: f5.radio(
        "Rows", VIEWS, key="ct_view", persist_state="session", help="Episodes: the frames of one burst as one row."))
    per_class = per_class_ui(names, threshold)
    return ShownFilter.of(threshold, None if len(classes) == len(names) else classes, hide_suspect,
                          per_class=per_class), state


def species_threshold_ui(doc: Dict[str, Any]) -> float:
    """The classification score at which a detection counts for its top species (``--species-threshold``),
    asked only of a file classified into species (SpeciesNet, AddaxAI) and kept in the address; for any
    other file the default, which nothing then reads. Only counts move with it: the file is not read again."""
    if species_names(doc) is None:
        return SPECIES_THRESHOLD
    return float(_url.synced("species_conf", "ct_species_threshold", _url.number(0.0, 1.0, 0.05), SPECIES_THRESHOLD,
                             lambda: st.slider(
                                 "Species threshold", 0.0, 1.0, SPECIES_THRESHOLD, 0.05, key="ct_species_threshold",
                                 persist_state="session",
                                 help="A detection counts for its top species where the classifier scored it at "
                                      "least this: in the species table, the species folders, the exports and "
                                      "the drawn copies.")))


def _episode_layout(doc: Dict[str, Any], key: tuple):
    """The file's episodes, grouped once per version of it: a threshold move changes none of them."""
    from ssd.camtrap.episodes import episode_layout

    return sh.season_wide("ct_memo_layout", key, lambda: episode_layout(doc))


def totals_panel(doc: Dict[str, Any], shown: ShownFilter, key: tuple,
                 species_threshold: float = SPECIES_THRESHOLD) -> None:
    """Images and episodes with detections, empty and failed, and a row per class (and per species,
    counted from ``species_threshold``, for a classified file)."""
    layout = _episode_layout(doc, key)
    s = sh.season_wide("ct_memo_totals", (key, shown, species_threshold),
                       lambda: summarize(doc, shown, layout=layout, species_threshold=species_threshold))
    e = s["episodes"]
    m1, m2, m3, m4, m5, m6 = st.columns([1, 1, 1, 1, 1, 1.3])     # "Episodes with detections" whole
    m1.metric("Images", s["images"])
    m2.metric("With detections", s["with_detections"])
    m3.metric("Empty", s["empty"])
    m4.metric("Failed", s["failed"])
    m5.metric("Episodes", e["episodes"], help=f"Bursts: frames of one camera folder taken close together. "
                                              f"{e['untimed']} image(s) without a time stamp stand alone.")
    m6.metric("Episodes with detections", e["with_detections"])
    for note in coverage_notes(s):
        st.caption(note)
    if s["cut_short"]:
        st.warning(f"{s['cut_short']} video(s) ended before their header said (cut short): their detections "
                   "are from the frames read, and an animal in the part lost cannot be seen. "
                   "Show \"cut short\" lists them.")
    st.dataframe(pd.DataFrame({"class": list(s["per_class_images"]), "images": list(s["per_class_images"].values()),
                               "episodes": [e["per_class"].get(c, 0) for c in s["per_class_images"]],
                               "detections": [s["per_class_detections"].get(c, 0) for c in s["per_class_images"]]}),
                 hide_index=True)
    if "per_species_images" in s:           # a file classified into species (SpeciesNet, AddaxAI)
        st.caption(f"Species: each detection shown counts for its top species where the classifier scored it at "
                   f"least {s['species_threshold']:g}.")
        st.dataframe(pd.DataFrame({"species": list(s["per_species_images"]),
                                   "images": list(s["per_species_images"].values()),
                                   "detections": [s["per_species_detections"][n] for n in s["per_species_images"]]}),
                     hide_index=True)


def _full(doc: Dict[str, Any], index) -> Callable[[List[Dict[str, Any]]], List[Dict[str, Any]]]:
    """The entries of ``doc`` a panel draws, whole: their boxes read back from the file."""
    return lambda entries: in_full(doc, index, entries)


def _whole(doc: Dict[str, Any], index) -> Callable[[], Dict[str, Any]]:
    """``doc`` with every box, made when a download, export, split or cleaned file asks for it."""
    return lambda: whole_doc(doc, index)


def _shown_whole(doc: Dict[str, Any], index, shown: ShownFilter) -> Callable[[], Dict[str, Any]]:
    """``doc`` with the boxes the thresholds show (or count), what the exports write: not every box."""
    return lambda: shown_doc(doc, index, shown.lowest())


def episode_rows_panel(doc: Dict[str, Any], entries: List[Dict[str, Any]], image_root: str,
                       shown: ShownFilter, key: tuple, full: Callable = list) -> None:
    """One row per episode (a burst): its frames side by side, a page of episodes at a time."""
    from ssd.camtrap.episodes import episode_classes

    wanted = {id(e) for e in entries}
    groups = [(eid, m) for eid, m in _episode_layout(doc, key).groups.items()
              if any(id(doc["images"][k]) in wanted for k in m)]
    pages = page_count(len(groups), EPISODES_PER_PAGE)
    if st.session_state.get("ct_ep_page", 1) > pages:
        st.session_state["ct_ep_page"] = pages
    page = int(st.number_input("Page", min_value=1, max_value=pages, step=1, key="ct_ep_page", persist_state="session"))
    st.caption(f"page {page} of {pages}, {len(groups)} episode(s) with an image matching the filters")
    for eid, members in page_of(groups, page, EPISODES_PER_PAGE):
        first = doc["images"][members[0]]
        classes = ", ".join(episode_classes(doc, members, shown)) or "empty"
        when = first.get("datetime") or "no time stamp"
        st.text(plain_text(f"{eid} · {len(members)} frame(s) · {when} · {classes}"))
        cols = st.columns(FRAMES_PER_ROW)
        for c, entry in zip(cols, full([doc["images"][k] for k in members[:FRAMES_PER_ROW]])):
            pic = picture(entry, doc["detection_categories"], image_root, shown, side=200)
            if pic is not None:
                words = picture_caption(entry, doc["detection_categories"], shown)
                c.image(pic, caption=md_escape(plain_text(words)))
            else:
                c.caption("(could not be read)" if entry.get("failure") else "(image not found)")


def browser(results_path: str, image_root: str, path_prefix: str = "") -> None:
    """Filters, totals, the thumbnail grid (or episode rows), the large view, the threshold explorer,
    downloads and exports, and the repeat review of one results file (of its names as written: the
    decisions are applied to the file itself)."""
    try:
        doc, index = sh.results_file(results_path, path_prefix.strip())
    except SSDError as err:
        st.error(_plain(err))
        return
    try:
        _browse(doc, index, results_path, image_root, path_prefix)
    except ResultsChanged as err:       # rewritten since it was opened: the next rerun reads it again
        st.warning(_plain(err))


def _browse(doc: Dict[str, Any], index, results_path: str, image_root: str, path_prefix: str) -> None:
    """``browser`` on the file opened: ``doc``'s compact records, ``index`` to read boxes back."""
    try:
        if not path_prefix.strip():
            refuse_windows_names(doc, image_root, PAGE_TERMS)
    except SSDError as err:                 # counts and downloads still work; the pictures cannot be found
        st.warning(_plain(err))
    shown, state = filters_ui(doc)
    species_threshold = species_threshold_ui(doc)
    classes = None if shown.classes is None else sorted(shown.classes)
    shown = dataclasses.replace(shown, classes=None)        # the class filter picks images, not boxes
    try:
        stat = os.stat(results_path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        key = (results_path, *stamp, path_prefix.strip())
    except OSError:                     # gone since it was read: nothing is reused
        stamp, key = (0, -1), (results_path, "gone", time.time())
    file_doc, doc = doc, episode_controls(doc, results_path, path_prefix.strip(), stamp)
    full = _full(doc, index)            # a regrouped copy is entry for entry the file's: the index fits
    key = (key, file_gap(doc), file_camera_rule(doc).recorded())     # counts per grouping
    totals_panel(doc, shown, key, species_threshold)
    entries = sh.season_wide("ct_memo_entries", (key, shown, classes, state),
                           lambda: filter_entries(doc, shown, classes, state))
    episodes = st.session_state.get("ct_view") == "episodes"
    if episodes:
        episode_rows_panel(doc, entries, image_root, shown, key, full)
    else:
        grid_panel(doc, entries, image_root, shown, full)
    failures_panel(entries)          # apart: a failure's reason in a grid cell put the columns out of line
    if not episodes:
        large_view(doc, entries, image_root, shown, full)
    explorer_panel(key, shown, doc)
    as_opened = doc is file_doc and not path_prefix.strip()       # neither rebased nor regrouped
    downloads_panel(doc, image_root, shown, lambda: results_json_bytes(doc, index, as_opened),
                    lambda: results_csv_bytes(results_path, path_prefix.strip() or None), species_threshold)
    # the file's entries, by the page's camera folder
    split_panel(file_doc, file_camera_rule(doc), _whole(file_doc, index))
    exports_panel(doc, results_path, image_root, shown, path_prefix.strip(), _shown_whole(doc, index, shown),
                  species_threshold)
    # the review writes a file of the file's own entries: its episodes and repeats as recorded
    reviewed, reviewed_index = sh.results_file(results_path) if path_prefix.strip() else (file_doc, index)
    review_panel(reviewed, results_path, image_root, file_doc,
                 groups=sh.season_wide("ct_memo_repeats", key, lambda: repeat_groups(reviewed)),
                 open_results=lambda out: _open_results_file(out, image_root, path_prefix.strip()),
                 whole=_whole(reviewed, reviewed_index))


def main() -> None:
    _access.require_access("Camera traps")
    _url.page_opened("camera_traps", later=_review_setting)
    st.title("Camera traps")
    st.caption("Run a model over a whole folder of camera-trap photos (subfolders included), then browse, filter, "
               "download and sort the results. The results file is in MegaDetector's format, which Timelapse "
               "and other camera-trap tools open.")
    runs_root = jobs.camera_runs_dir()
    running = jobs.current_batch_job(runs_root) is not None
    st.session_state["ct_polling"] = running
    run_form_ui(runs_root, running)
    monitor_panel(runs_root, running)
    results_path, image_root, path_prefix = results_source_ui(runs_root)
    if results_path:
        image_root = image_root or os.path.dirname(os.path.abspath(results_path))   # as `results sort` does
        if _access.allowed_path(results_path, "The results file") and _access.allowed_path(image_root,
                                                                                           "The photo folder"):
            browser(results_path, image_root, path_prefix)


main()
