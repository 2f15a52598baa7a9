"""The Camera traps page's threshold explorer, its downloads, sorting and split per camera, and its Camtrap DP /
XLSX exports.

Only widgets here: the sweep, the workbook and the package are library calls
(``ssd.camtrap.sweep``, ``ssd.camtrap.spreadsheet``, ``ssd.camtrap.camtrap_dp``, ``ssd.camtrap.splitting``); drawn
copies and crops are ``results draw|crops`` run as a background job (``ssd.jobs.photos``). The sweep is
cached per results file and filter, so moving another widget does not recount the season.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional

import pandas as pd
import streamlit as st

from app_pages import _access
from app_pages import _shared as sh
from ssd.base.errors import SSDError
from ssd.base.text import md_escape, plain_text
from ssd.camtrap.cameras import file_camera_rule
from ssd.camtrap.episodes import file_gap
from ssd.camtrap.species import SPECIES_THRESHOLD, species_names
from ssd.workspace import check_photo_path
from ssd.inference.filtering import ShownFilter

#: The path prefix and images folder as this page names them, for the library's refusals that ask for them
#: (the command line's flags otherwise).
PAGE_TERMS = ("'Path prefix in the results'", "'Folder its paths start from'")


@st.cache_data(max_entries=8, show_spinner=False)
def _sweep(key: tuple, shown: ShownFilter, _doc: Dict[str, Any]) -> Dict[str, Any]:
    """``_doc`` (not hashed): the file's entries as shown; ``key`` names them: the file's version, the
    path prefix (it moves the camera folders of a fixed-depth rule), the episode gap and camera rule."""
    from ssd.camtrap.sweep import threshold_sweep

    return threshold_sweep(_doc, shown)


def _grouping(doc: Dict[str, Any]) -> tuple:
    """The episode gap and camera rule ``doc``'s episodes are made with (the file's, or the page's choice)."""
    return file_gap(doc), file_camera_rule(doc).recorded()


def explorer_panel(key: tuple, shown: ShownFilter, doc: Dict[str, Any]) -> None:
    """What thresholds 0.05–0.95 would do: per-class images and episodes, and flips against now."""
    st.subheader("Threshold explorer")
    if not st.toggle("Show what thresholds 0.05–0.95 do to the whole season",
                     key="ct_explore", persist_state="session"):
        return
    try:
        sweep = _sweep(key, shown, doc)
    except SSDError as err:
        st.error(md_escape(err))
        return
    from ssd.viz.sweep_plot import sweep_figure

    sh.figure(sweep_figure(sweep))
    st.caption(f"Now: {sweep['images_with_detections_now']} of {sweep['images_counted']} images and "
               f"{sweep['episodes_with_detections_now']} of {sweep['episodes_counted']} episodes have "
               "detections. 'changed' counts those that would flip between empty and detections.")
    st.dataframe(pd.DataFrame({"threshold": sweep["thresholds"], "images": sweep["images_with_detections"],
                               "images changed": sweep["images_changed"],
                               "episodes": sweep["episodes_with_detections"],
                               "episodes changed": sweep["episodes_changed"]}), hide_index=True)


def downloads_panel(doc: Dict[str, Any], image_root: str, shown: ShownFilter, json_bytes: Callable[[], bytes],
                    csv_bytes: Callable[[], bytes], species_threshold: float = SPECIES_THRESHOLD) -> None:
    """The results as JSON and CSV (``json_bytes()``, ``csv_bytes()``: library calls that write them
    from the file an entry at a time), and sorting the photos into folders by what was seen (into
    species folders from ``species_threshold``, for a classified file)."""
    st.subheader("Download and sort")
    d1, d2 = st.columns(2)
    # made when clicked, not on every rerun (a season's JSON and CSV took seconds and hundreds of MB)
    d1.download_button("Results (MegaDetector JSON)", json_bytes, "results.json", "application/json",
                       key="ct_dl_json", on_click="ignore")
    d2.download_button("Results (CSV)", csv_bytes, "results.csv", "text/csv", key="ct_dl_csv", on_click="ignore")
    # not an st.form: a form's values stay in the browser until its submit, so a look at another page lost them
    with st.container(border=True):
        target = st.text_input("Sort into this folder (links to the originals; nothing is moved)",
                               key="ct_sort_into", persist_state="session")
        mode = st.selectbox("As", ["symlink", "hardlink", "copy"], key="ct_sort_mode", persist_state="session")
        st.checkbox("Keep bursts together (a whole episode goes where its animal goes)",
                    key="ct_sort_episodes", persist_state="session")
        if species_names(doc) is not None:
            st.checkbox(f"Species folders under animal/ (a classification scoring at least {species_threshold:g}; "
                        "not with bursts kept together)", key="ct_sort_species", persist_state="session")
        if st.button("Sort into folders", key="ct_sort_go"):
            _sort(doc, image_root, target, shown, mode, species_threshold)


def _sort(doc: Dict[str, Any], image_root: str, target: str, shown: ShownFilter, mode: str,
          species_threshold: float = SPECIES_THRESHOLD) -> None:
    """Sort, and show how many images went to each folder; say so when no folder was given."""
    from ssd.camtrap.sorting import BySpecies, sort_into_folders

    if not target.strip():
        st.error("Type the folder to sort into first (it is made if it does not exist).")
        return
    try:
        check_photo_path(target, "The sort folder", _access.roots())
        wanted = st.session_state.get("ct_sort_species") and species_names(doc) is not None   # shown only then
        by_species = BySpecies.of(doc, species_threshold) if wanted else None
        counts = sort_into_folders(doc, image_root, target, shown, mode,
                                   by_episode=bool(st.session_state.get("ct_sort_episodes")), terms=PAGE_TERMS,
                                   by_species=by_species)
        st.dataframe(pd.DataFrame({"folder": list(counts), "images": list(counts.values())}), hide_index=True)
    except (SSDError, OSError) as err:
        st.error(md_escape(err))


def split_panel(doc: Dict[str, Any], rule: Any, whole: Optional[Callable[[], Dict[str, Any]]] = None) -> None:
    """One results file per camera folder (``results split``), names relative to it: for Timelapse
    opened at a camera's folder. ``doc`` is the file's own document, ``rule`` the page's camera folder,
    ``whole()`` ``doc`` with every box (made when the button is clicked)."""
    with st.container(border=True):
        st.markdown(f"**One results file per camera** (camera folder as chosen above, {md_escape(rule.describe())}), its names "
                    "relative to that folder, for Timelapse opened there. A file already in the folder is never "
                    "replaced.")
        target = st.text_input("Write the files into this folder", key="ct_split_out", persist_state="session")
        if st.button("Split per camera", key="ct_split_go"):
            _split((whole or (lambda: doc))(), rule, target)


def _split(doc: Dict[str, Any], rule: Any, target: str) -> None:
    """Write the parts and show each file with its number of images; the refusal (nothing written) otherwise."""
    from ssd.camtrap.splitting import split_results, write_split

    if not target.strip():
        st.error("Type the folder to write the files into first (it is made if it does not exist).")
        return
    try:
        check_photo_path(target, "The split folder", _access.roots())
        written = write_split(split_results(doc, rule, PAGE_TERMS[0]), target)
    except (SSDError, OSError) as err:
        st.error(md_escape(err))
        return
    st.success(md_escape(f"{len(written)} file(s) written in {target}"))
    st.dataframe(pd.DataFrame({"file": [os.path.basename(p) for p, _ in written],
                               "images": [n for _, n in written]}), hide_index=True)


def _package_options(image_root: str, species_threshold: float = SPECIES_THRESHOLD):
    """Camtrap DP's facts the results lack, from the form (positions, clock offset, title), and the
    score at which a classified detection is observed as its species."""
    from ssd.camtrap.camtrap_dp import PackageOptions, read_locations
    from ssd.camtrap.taxa import read_taxa

    s = st.session_state
    default = None
    if s.get("ct_dp_lat") is not None and s.get("ct_dp_lon") is not None:
        default = (float(s["ct_dp_lat"]), float(s["ct_dp_lon"]))
    where = s.get("ct_dp_locations")
    locations = read_locations(check_photo_path(where, "The locations CSV", _access.roots())) if where else {}
    taxa_csv = s.get("ct_dp_taxa")
    taxa = read_taxa(check_photo_path(taxa_csv, "The taxa CSV", _access.roots())) if taxa_csv else {}
    return PackageOptions(title=s.get("ct_dp_title") or "Camera-trap detections", utc_offset=s.get("ct_dp_utc", "+00:00"),
                          locations=locations, default_location=default, image_root=image_root or None,
                          images_term=PAGE_TERMS[1], taxa=taxa, species_threshold=species_threshold)


def _export_form() -> None:
    """Where the cameras were, their clocks' offset, the title: what Camtrap DP needs beyond the results."""
    e1, e2, e3 = st.columns(3)
    e1.number_input("Latitude (all cameras)", -90.0, 90.0, value=None, format="%.5f",
                    key="ct_dp_lat", persist_state="session")
    e2.number_input("Longitude (all cameras)", -180.0, 180.0, value=None, format="%.5f",
                    key="ct_dp_lon", persist_state="session")
    e3.text_input("Camera clocks' UTC offset", value="+00:00", key="ct_dp_utc", persist_state="session")
    f1, f2, f3 = st.columns(3)
    f1.text_input("Locations CSV per camera folder (deploymentID,latitude,longitude; optional)",
                  key="ct_dp_locations", persist_state="session")
    f2.text_input("Taxa CSV: each class's scientific name (class,scientificName; optional)", key="ct_dp_taxa",
                  persist_state="session", help="For a species model: GBIF and Agouti use an observation only "
                  "through its scientific name. Optional columns: taxonID, taxonRank, kingdom, phylum, "
                  "taxonClass (e.g. Mammalia), order, family, genus, vernacularNames.eng.")
    f3.text_input("Project title", value="Camera-trap detections", key="ct_dp_title", persist_state="session")


def _write_package(whole: Callable[[], Dict[str, Any]], target: str, image_root: str, shown: ShownFilter,
                   species_threshold: float = SPECIES_THRESHOLD) -> None:
    """Write the package (a button's callback) of ``whole()``, the document with the boxes shown; its
    outcome is shown by ``_package_written``. The replace tick is cleared whatever came of it:
    consent to replace holds for one click."""
    from ssd.camtrap.camtrap_dp import write_camtrap_dp

    s = st.session_state
    try:
        check_photo_path(target, "The Camtrap DP folder", _access.roots())
        done = write_camtrap_dp(whole(), target, shown, _package_options(image_root, species_threshold),
                                replace=bool(s.get("ct_dp_replace")))
        s["ct_dp_written"] = {"target": target, **done}
    except (SSDError, OSError) as err:
        s["ct_dp_written"] = {"error": str(err)}
    s["ct_dp_replace"] = False


def _package_written() -> None:
    """What the last write did (once): counts and left-out files, a locations typo, or the refusal."""
    done = st.session_state.pop("ct_dp_written", None)
    if not done:
        return
    if "error" in done:
        st.error(md_escape(done["error"]))
        return
    st.success(f"Camtrap DP package in {md_escape(done['target'])}: {done['deployments']} deployment(s), "
               f"{done['media']} media, {done['observations']} observation(s)"
               + (f"; {len(done['left_out'])} file(s) without a time stamp left out" if done["left_out"] else "")
               + (f"; {done['failed']} failed file(s) left out" if done.get("failed") else ""))
    if done["unmatched_locations"]:
        unmatched = ", ".join(map(repr, done["unmatched_locations"][:10]))
        st.warning(md_escape(f"The locations CSV names {unmatched}, no camera folder of these results: if "
                             "one is a typo, its folder got the default position; the folders are "
                             f"{', '.join(map(repr, done['deployment_ids'][:10]))}"))
    from ssd.camtrap.taxa import taxa_warnings

    for line in taxa_warnings(done, "the taxa CSV"):
        st.warning(md_escape(line[0].upper() + line[1:]))


FORM_KEYS = ("ct_dp_lat", "ct_dp_lon", "ct_dp_utc", "ct_dp_locations", "ct_dp_taxa", "ct_dp_title")


def _ready_key(doc: Dict[str, Any], results_path: str, path_prefix: str, image_root: str,
               shown: ShownFilter, species_threshold: float = SPECIES_THRESHOLD) -> tuple:
    """What the prepared downloads were made from: when any of it changes they are withdrawn, not
    offered with the old positions, names, thresholds or episodes."""
    return (results_path, path_prefix, image_root, shown, species_threshold, _grouping(doc),
            tuple(st.session_state.get(k) for k in FORM_KEYS))


def exports_panel(doc: Dict[str, Any], results_path: str, image_root: str, shown: ShownFilter,
                  path_prefix: str = "", whole: Optional[Callable[[], Dict[str, Any]]] = None,
                  species_threshold: float = SPECIES_THRESHOLD) -> None:
    """Camtrap DP (written to a folder and downloadable as a zip) and XLSX, at the page's thresholds
    (the species one too), of ``whole()`` (``doc`` with the boxes the thresholds show, read back when
    a button is clicked)."""
    whole = whole or (lambda: doc)
    st.subheader("Export: Camtrap DP, Excel and COCO")
    st.caption("At the thresholds above (per-class ones included). Camtrap DP is the TDWG standard GBIF and data "
               "platforms ingest; it needs each camera's position. COCO holds every photo with its boxes, to "
               "correct in CVAT or Label Studio and train on (put it in the photo folder or annotations/ beside it).")
    _export_form()
    target = st.text_input("Write the Camtrap DP package into this folder", key="ct_dp_out", persist_state="session")
    st.checkbox("Replace the package's files in a folder holding other files", key="ct_dp_replace",
                help="Without it, only a new or empty folder, or one holding a package written here before, "
                     "is written into: datapackage.json, deployments.csv, media.csv and observations.csv would "
                     "replace files of those names.")
    c1, c2, c3 = st.columns(3)
    c1.button("Write Camtrap DP package", key="ct_dp_write", disabled=not target,
              on_click=_write_package, args=(whole, target, image_root, shown, species_threshold))
    _package_written()
    key = _ready_key(doc, results_path, path_prefix, image_root, shown, species_threshold)
    if c2.button("Prepare downloads", key="ct_dp_prepare"):
        _prepare_downloads(whole(), key, image_root, shown, species_threshold)
    ready = st.session_state.get("ct_dl_ready") or {}
    if ready.get("key") == key:
        if ready.get("zip"):
            c3.download_button("Camtrap DP (zip)", ready["zip"], "camtrap-dp.zip", "application/zip",
                               key="ct_dl_dp", on_click="ignore")
        c3.download_button("Results (XLSX)", ready["xlsx"], "results.xlsx",
                           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="ct_dl_xlsx",
                           on_click="ignore")
        if ready.get("coco"):
            c3.download_button("Boxes to correct (COCO)", ready["coco"], "coco.json", "application/json",
                               key="ct_dl_coco", on_click="ignore")
        if ready.get("error"):
            st.warning(md_escape(ready["error"]))
    photos_panel(doc, results_path, image_root, shown, path_prefix,
                 species_threshold if species_names(doc) is not None else None)


#: The page's two photo jobs: (action, button label, what the folder gets).
PHOTO_ACTIONS = (("draw", "Draw the boxes on copies", "copies with boxes and index.html"),
                 ("crops", "Crop each detection", "one JPEG per box and crops.csv"))


def photos_panel(doc: Dict[str, Any], results_path: str, image_root: str, shown: ShownFilter,
                 path_prefix: str = "", species_threshold: Optional[float] = None) -> None:
    """Copies of the photos with their boxes drawn, or one crop per detection, at the page's
    thresholds, written into a folder by ``results draw|crops`` run as a background job (hours for a
    season: never in a rerun). A second click into the same folder finishes a stopped run."""
    with st.container(border=True):
        st.markdown("**Photos with their boxes, or one crop per box** (to check a run, or to train a species "
                    "classifier), at the thresholds above, in a folder of their own; the originals are only read. "
                    "Click again to finish a stopped run: what is there is skipped.")
        target = st.text_input("Write into this folder", key="ct_photos_out", persist_state="session")
        names = list((doc.get("detection_categories") or {}).values())
        classes = st.multiselect("Only these classes (none: all)", names, key="ct_photos_classes",
                                 format_func=plain_text, persist_state="session")   # names from the file
        for col, (action, label, _) in zip(st.columns(len(PHOTO_ACTIONS)), PHOTO_ACTIONS):
            if col.button(label, key=f"ct_{action}_go", disabled=not target.strip()):
                _start_photos(action, results_path, target, image_root, shown, path_prefix, classes,
                              species_threshold)
        _photos_status(target)


def _start_photos(action: str, results_path: str, target: str, image_root: str, shown: ShownFilter,
                  path_prefix: str, classes: list, species_threshold: Optional[float] = None) -> None:
    from ssd.jobs.photos import start_photo_job

    try:
        check_photo_path(target, "The output folder", _access.roots())
        start_photo_job(action, results_path, target, image_root, shown, path_prefix, classes, species_threshold)
    except (SSDError, OSError) as err:
        st.error(md_escape(err))


#: Seconds between two looks at a running job's log, as the detection run's monitor looks.
JOB_POLL_S = 2.0


def _photos_status(target: str) -> None:
    """Each job's state in ``target``, in a fragment rerun every ``JOB_POLL_S`` while a job runs
    (its progress moves by itself) and never after; when a job starts or ends the whole page
    reruns, so the polling starts or stops with it (``monitor_panel``'s way)."""
    from ssd.jobs.photos import photo_jobs_running

    if not target.strip() or not os.path.isdir(target):
        return
    running = photo_jobs_running(target)
    st.session_state["ct_photos_polling"] = running

    @st.fragment(run_every=JOB_POLL_S if running else None)
    def photo_jobs() -> None:
        if photo_jobs_running(target) != st.session_state.get("ct_photos_polling"):
            st.rerun()
        _photo_logs(target)

    photo_jobs()


def _photo_logs(target: str) -> None:
    """Each job's log in ``target``: running (its progress line) or done (its summary)."""
    from ssd.jobs.photos import current_photo_job, photo_job_log

    for action, _, what in PHOTO_ACTIONS:
        log = photo_job_log(target, action)
        if not log:
            continue
        running = current_photo_job(target, action) is not None
        st.caption(md_escape(f"{what}: {'running' if running else 'last run'}"))
        st.code(log, language=None)


def _prepare_downloads(doc: Dict[str, Any], key: tuple, image_root: str, shown: ShownFilter,
                       species_threshold: float = SPECIES_THRESHOLD) -> None:
    """Build the workbook and the package once (not on every rerun); kept until ``key`` changes."""
    from ssd.camtrap.camtrap_dp import camtrap_dp_zip
    from ssd.camtrap.coco_export import coco_bytes
    from ssd.camtrap.spreadsheet import xlsx_bytes

    ready: Dict[str, Any] = {"key": key, "xlsx": xlsx_bytes(doc, shown, image_root=image_root,
                                                           species_threshold=species_threshold)}
    errors = []
    try:
        ready["zip"] = camtrap_dp_zip(doc, shown, _package_options(image_root, species_threshold))
    except (SSDError, OSError) as err:
        errors.append(f"Camtrap DP: {err}")
    try:
        ready["coco"], counts = coco_bytes(doc, shown, image_root, terms=PAGE_TERMS)
        if counts.failed or counts.videos or counts.no_size:
            errors.append(f"COCO: {len(counts.failed)} failed file(s), {len(counts.videos)} video(s) and "
                          f"{len(counts.no_size)} image(s) of unknown size left out")
    except (SSDError, OSError) as err:
        errors.append(f"COCO: {err}")
    if errors:
        ready["error"] = "; ".join(errors)
    st.session_state["ct_dl_ready"] = ready
