"""The Train page's first section, 1 · Data: make the synthetic dataset, download a real one, pick
the dataset to train on and see what it holds (not a page: ``st.navigation`` lists the pages).

Read from the bottom: ``data_section()`` calls one function per panel.
"""
from __future__ import annotations

import os
import time
from typing import List, Optional

import pandas as pd
import streamlit as st

from app_pages import _access
from app_pages import _shared as sh
from ssd import jobs
from ssd.base.errors import SSDError
from ssd.base.text import md_escape, plain_text
from ssd.workspace import dataset_folders, folder_stamp

OTHER = "__other__"     # the dataset choice "Another folder (type its path)…"
SYNTH_NAME = "synthetic-pikachu"

DATA_LABELS = {"pikachu": "official Pikachu (RecordIO, ~90 MB)", "banana": "d2l bananas (~15 MB)",
               "ena24": "ENA24 camera traps (LILA: 3.6 MB metadata + 3.6 GB images)"}


@st.cache_data(show_spinner="Reading the dataset…", max_entries=32)
def dataset_summary(path: str, stamp: float):
    from ssd.data.dataset import open_dataset
    from ssd.data.summary import summarize

    splits = open_dataset(path)
    return splits.describe(), summarize(splits)


@st.cache_resource(show_spinner="Plotting box statistics…", max_entries=8)
def box_stats_figure(path: str, stamp: float):
    from ssd.data.dataset import open_dataset
    from ssd.data.summary import plot_box_stats

    return plot_box_stats(open_dataset(path))


def synth_panel(data_root: str, folders: List[str]) -> List[str]:
    """Generate the synthetic Pikachu dataset; returns the dataset folders (new one included)."""
    with st.expander("Make a synthetic Pikachu dataset (offline, about 10 ms per image)", expanded=not folders):
        # not an st.form: its values would stay in the browser until Generate, lost by a page switch
        g1, g2, g3, g4 = st.columns(4)
        synth_name = g1.text_input("Folder name", SYNTH_NAME, persist_state="session", key="synth_name")
        n_train = g2.number_input("Training images", 1, 100_000, 1000, 100,
                                  persist_state="session", key="synth_train")
        n_val = g3.number_input("Validation images", 0, 20_000, 100, 50, persist_state="session", key="synth_val")
        synth_seed = g4.number_input("Seed", 0, 2**31 - 1, 0, persist_state="session", key="synth_seed")
        make = st.button("Generate", key="synth_generate")
        made = _generate(data_root, synth_name, int(n_train), int(n_val), int(synth_seed)) if make else None
    return folders if made is None else made


def _generate(data_root: str, name: str, n_train: int, n_val: int, seed: int) -> Optional[List[str]]:
    """Draw the dataset with a progress bar and select it; the refreshed folder list, or None."""
    problem = jobs.valid_model_name(name)
    if problem:
        st.error(f"Folder name: {problem}")
        return None
    from ssd.data.synthetic import generate

    target = os.path.join(data_root, name)
    bar = st.progress(0.0, text="Drawing images…")

    def _progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            bar.progress(done / total, text=f"Drawing images… {done}/{total}")

    try:
        t0 = time.perf_counter()
        info = generate(target, n_train, n_val, seed, progress=_progress)
        st.session_state["train_dataset"] = target
        st.success(f"Wrote {info['num_train']} training and {info['num_val']} validation images to "
                   f"`{target}` in {time.perf_counter() - t0:.1f} s.")
        return dataset_folders(data_root)
    except (SSDError, OSError) as err:
        st.error(f"Could not generate the dataset: {md_escape(err)}")
        return None


def download_panel(data_root: str) -> None:
    """Start a dataset download in the background and follow it."""
    @st.fragment(run_every=2.0)
    def _download_status() -> None:
        """Follows a background download (``python -m ssd data KIND``); reruns only this fragment."""
        dl = jobs.current_data_job(data_root)
        if dl is not None:
            st.info(f"Downloading **{dl.name}** in the background (pid {dl.pid}); you can leave this page.")
            st.code(jobs.read_log_tail(dl.out, 6, jobs.DATA_LOG_FILE) or "starting…")
            return
        last = st.session_state.get("dl_last")
        if last:
            try:
                from ssd.data.dataset import open_dataset

                st.success(f"Ready: {open_dataset(last).describe()}")
            except SSDError:
                st.error("The download did not finish. Its log:")
                st.code(jobs.read_log_tail(last, 12, jobs.DATA_LOG_FILE))

    with st.expander("Download a real dataset (needs the internet; checksums verified, resumable)"):
        k1, k2 = st.columns([2, 2])
        dl_kind = k1.selectbox("Dataset", jobs.DATA_KINDS, format_func=DATA_LABELS.get,
                               persist_state="session", key="dl_kind")
        meta_only = dl_kind == "ena24" and k2.checkbox("Metadata only (no images)",
                                                       persist_state="session", key="dl_meta_only")
        if st.button("Download", key="dl_start", disabled=jobs.current_data_job(data_root) is not None):
            target = os.path.join(data_root, dl_kind)
            try:
                jobs.start_data_job(data_root, dl_kind, target, ["--metadata-only"] if meta_only else [])
                st.session_state["dl_last"] = target
            except (SSDError, OSError) as err:
                st.error(md_escape(err))
        _download_status()


def dataset_ui(data_root: str, folders: List[str]) -> str:
    """The dataset to train on: a folder of the data folder, or any path typed in."""
    options = folders + [OTHER]
    if st.session_state.get("train_dataset") not in options:
        st.session_state.pop("train_dataset", None)
    choice = st.selectbox("Dataset", options, persist_state="session", key="train_dataset",
                          format_func=lambda p: ("Another folder (type its path)…" if p == OTHER
                                                 else plain_text(os.path.basename(p))),
                          help=f"Folders found in the data folder `{data_root}` (set SSD_DATA_DIR to change it).")
    if choice == OTHER:
        typed = st.text_input("Dataset folder", persist_state="session", key="train_data_path",
                              placeholder="/path/to/dataset (train.rec + val.rec, a COCO folder, or Pascal VOC XMLs)")
        return typed if typed and _access.allowed_path(typed, "The dataset folder") else ""   # under the photo roots
    return choice


def dataset_summary_panel(data_path: str) -> bool:
    """What the dataset holds (images, boxes per class, what the loader skipped); whether it opened."""
    if not data_path:
        st.info("Choose or generate a dataset to train on.")
        return False
    try:
        described, summary = dataset_summary(os.path.abspath(data_path), folder_stamp(data_path))
    except SSDError as err:
        st.error(md_escape(err))
        return False
    st.success(md_escape(described), icon=":material/check_circle:")
    with st.expander("Dataset summary"):
        s1, s2 = st.columns(2)
        splits = [s for s in ("train", "val") if s in summary["images"]]
        s1.dataframe(pd.DataFrame({
            "": ["images", "without boxes", "boxes"],
            **{s: [summary["images"][s], summary["images_without_boxes"][s], summary["boxes"][s]] for s in splits},
        }), hide_index=True, width="stretch")
        s2.dataframe(pd.DataFrame([{"class": c, **summary["boxes_per_class"][c]} for c in summary["classes"]]),
                     hide_index=True, width="stretch")
        if summary.get("skipped"):
            st.warning("Skipped or adjusted by the loader: " +    # reasons quote category and file names
                       md_escape(", ".join(f"{k}: {v}" for k, v in summary["skipped"].items())))
        if st.checkbox("Show box sizes and aspect ratios", persist_state="session", key="train_boxstats"):
            sh.figure(box_stats_figure(os.path.abspath(data_path), folder_stamp(data_path)))
    return True


def data_section(data_root: str) -> bool:
    """1 · Data: make or download a dataset, pick one; whether the picked one can be trained on."""
    st.header("1 · Data")
    folders = synth_panel(data_root, dataset_folders(data_root))
    download_panel(data_root)
    return dataset_summary_panel(dataset_ui(data_root, folders))
