"""The Train page's model row and what a model folder chosen under "Start from" fixes in it.

Not a page (``st.navigation`` lists the pages). A folder's weights start only its own architecture,
and a TinySSD's only at its own input size and anchors (``Recipe.start_shapes``): with a folder
chosen, those fields show the folder's values, locked, with a caption saying why, so a person never
guesses them and the form never shows one architecture while another is trained. The library's
refusals name the CLI's flags; ``in_page_terms`` names the page's fields instead.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional

import streamlit as st

from ssd.base.text import md_escape
from ssd.models.registry import architectures
from ssd.training.config import start_shapes

AUTO = "auto"
INPUT_SIZES = [AUTO, 128, 192, 256, 300, 320, 384, 512]
START_KEY = "train_pretrained"
# The CLI's words → the page's (its field labels), most specific first.
PAGE_TERMS = ((r"\(leave --model out to train ([\w.]+)", r"(keep the folder's architecture, \1"),
              (r"give its --sizes and --ratios", "the page takes them from the folder"),
              (r"anchors \(--sizes/--ratios\)", "anchors"),
              (r"--sizes(?: and |/)--ratios", "anchors"),
              (r"\btrain --model\b", "choose 'Architecture'"),
              (r"--model\b", "'Architecture'"),
              (r"--pretrained\b", "'Start from'"),
              (r"--input-size\b", "'Input size'"))


def in_page_terms(message: str) -> str:
    """A library refusal as the Train page says it: its field labels for the CLI's flags."""
    for flag, label in PAGE_TERMS:
        message = re.sub(flag, label, message)
    return message


def start_folder(folders: Dict[str, Any]) -> Optional[Any]:
    """The model folder (a ``ModelInfo``) chosen under "Start from", if one is."""
    return folders.get(st.session_state.get(START_KEY))


def model_row_ui(folders: Dict[str, Any]) -> None:
    """Name, architecture, input size, device; the first two locked to a chosen start folder's."""
    a1, a2, a3, a4 = st.columns(4)
    a1.text_input("Model name (folder in models/)", persist_state="session", key="train_name")
    pick = start_folder(folders)
    shapes = start_shapes(pick.path) if pick is not None else {}
    if pick is None:
        a2.selectbox("Architecture", architectures(), persist_state="session", key="train_arch")
    else:       # another key: the person's own choice comes back with another start
        a2.selectbox("Architecture", [pick.meta["arch"]], disabled=True, key="train_arch_of_start",
                     help="A model folder's weights start only its own architecture.")
    if "input_size" in shapes:
        a3.selectbox("Input size", [shapes["input_size"]], disabled=True, key="train_input_of_start",
                     help="A TinySSD starts only at its own input size and anchors: its weights were learned for them.")
    else:
        a3.selectbox("Input size", INPUT_SIZES, index=0, persist_state="session", key="train_input",
                     help="auto: the architecture's native size: 256 for TinySSD, 300 or 512 for GluonCV "
                          "zoo models, 320 for SSDlite. TinySSD needs a multiple of 8.")
    a4.selectbox("Device", ["auto", "cpu", "gpu"], persist_state="session", key="train_device",
                 help="auto: every GPU that really runs MXNet kernels, else the CPU.")
    if pick is not None:
        st.caption(start_caption(pick.name, pick.meta["arch"], shapes))


def start_caption(name: str, arch: str, shapes: Dict[str, Any]) -> str:
    """Why the architecture (and input size) are locked: the start folder's."""
    said = f"Starting from **{md_escape(name)}**: the architecture is its own ({md_escape(arch)})"
    if "input_size" not in shapes:
        return said + "."
    anchors = f"sizes {shapes['sizes']}, ratios {shapes['ratios']}" if "sizes" in shapes and "ratios" in shapes \
        else "its own"
    return (said + f", and so are its input size ({shapes['input_size']} px) and anchors ({md_escape(anchors)}): "
            "its weights were learned for them. Choose scratch under “Start from” to set them yourself.")
