"""Whether a Camtrap DP package may be written into a folder: the rule the page and
``python -m ssd results export --format camtrap-dp`` share.

A package is four files (``datapackage.json`` and three tables) with fixed names, so writing one
replaces any file of those names. An empty or new folder, or one holding a package this app wrote
before (a re-export), loses nothing a user made; any other folder is refused unless the user said
to replace (one tick on the page, ``--replace`` on the command line).
"""
from __future__ import annotations

import os
from typing import Any

from ssd.base.json_file import read_json_file
from ssd.camtrap.megadetector import ResultsError

DESCRIPTOR = "datapackage.json"
PACKAGE_TABLES = ("deployments", "media", "observations")
PACKAGE_FILES = (DESCRIPTOR, *(f"{t}.csv" for t in PACKAGE_TABLES))
#: The key under which this app records what made a package (detector, thresholds): its signature.
OUR_BLOCK = "ssdStudio"
_MAX_DESCRIPTOR_BYTES = 4 << 20           # ours are a few kB; a larger file is not ours


def is_our_package(folder: str) -> bool:
    """True when ``folder``'s datapackage.json is a Camtrap DP descriptor this app wrote (its profile
    is Camtrap DP's and it carries our block): replacing it is a re-export, not a loss."""
    try:
        desc: Any = read_json_file(os.path.join(folder, DESCRIPTOR), _MAX_DESCRIPTOR_BYTES)
    except (OSError, ValueError):
        return False
    return (isinstance(desc, dict) and isinstance(desc.get("profile"), str)
            and "camtrap-dp" in desc["profile"] and isinstance(desc.get(OUR_BLOCK), dict))


def check_package_folder(folder: str, replace: bool = False) -> None:
    """``ResultsError`` unless a package may be written into ``folder``: it is new, empty, or holds a
    package of ours; else only when ``replace`` (the package's four files are replaced, no other)."""
    if not os.path.lexists(folder):
        return
    if not os.path.isdir(folder):
        raise ResultsError(f"'{folder}' is a file, not a folder: give a folder for the Camtrap DP package")
    if replace:
        return
    names = sorted(os.listdir(folder))
    if not names or is_our_package(folder):
        return
    shown = ", ".join(repr(n) for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise ResultsError(f"'{folder}' holds other files ({shown}) and no Camtrap DP package of SSD Studio: writing "
                       f"{', '.join(PACKAGE_FILES)} there could replace files of yours (nothing was written); "
                       "choose an empty or new folder, or replace them")
