"""Safe zip extraction: checked whole before anything is written, nothing lands outside its folder.

An archive from the internet may be hostile (absolute paths, ``..``, symlinks) or damaged (a
download cut short), and a person may kill the extraction; none of these may leave a file outside
the folder or a half-written file under its final name.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from typing import List, Tuple

from ssd.base.errors import DownloadError
from ssd.base.safe_paths import existing_link
from ssd.data.download import CHUNK

Plan = List[Tuple[zipfile.ZipInfo, List[str]]]   # each member and its path components


def _member_parts(name: str) -> List[str]:
    """Path components of a zip member, or a DownloadError-worthy ValueError if it is unsafe."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise ValueError("is an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError("climbs out of the folder with '..'")
    return parts


def safe_extract(zip_path: str, dest_dir: str, *, strip_top: bool = False) -> List[str]:
    """Extract ``zip_path`` into ``dest_dir`` refusing any member that would land outside it.

    The whole archive is checked before anything is written (a hostile zip is refused, not
    half-extracted); absolute paths, ``..`` components and symlinks are rejected, and so is an extraction that
    would write through a symbolic link already in ``dest_dir``. Files are
    written into a staging folder inside ``dest_dir`` and then moved into place one by one with
    ``os.replace``, so an interrupted extraction never leaves a half-written file under its
    final name. ``strip_top`` drops a single folder that wraps every member (``images/x.jpg``
    extracted into ``…/images`` gives ``…/images/x.jpg``, not ``…/images/images/x.jpg``).
    Returns the extracted files' paths relative to ``dest_dir``.
    """
    dest_dir = os.path.abspath(dest_dir)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"{zip_path} is not a readable zip archive ({err}); delete it and run "
                            "the command again to download it afresh") from None
    with zf:
        plan = _plan(zf, zip_path, dest_dir, strip_top)
        _check_no_links(plan, zip_path, dest_dir)
        _check_room(plan, zip_path, dest_dir)
        staging = tempfile.mkdtemp(prefix=".extract-", dir=dest_dir)
        try:
            written = _write_staged(zf, plan, staging, zip_path)
            _move_into_place(written, staging, dest_dir, zip_path)
        except (zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise DownloadError(f"{zip_path} is damaged ({err}); delete it and run the command "
                                "again to download it afresh") from None
        except OSError as err:
            raise DownloadError(f"extracting {zip_path} into {dest_dir} failed ({err})") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return written


def _plan(zf: zipfile.ZipFile, zip_path: str, dest_dir: str, strip_top: bool) -> Plan:
    """Every member with its path components; ``DownloadError`` for one that could escape."""
    plan: Plan = []
    for info in zf.infolist():
        try:
            parts = _member_parts(info.filename)
        except ValueError as why:
            raise DownloadError(f"{zip_path} contains the entry {info.filename!r}, which {why}: "
                                "refusing to extract an archive that could write outside "
                                f"{dest_dir}") from None
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DownloadError(f"{zip_path} contains the symbolic link {info.filename!r}: "
                                "refusing to extract it")
        if parts:
            plan.append((info, parts))
    if strip_top:
        tops = {parts[0] for _, parts in plan}
        if len(tops) == 1 and all(len(p) > 1 or i.is_dir() for i, p in plan):
            plan = [(i, p[1:]) for i, p in plan if len(p) > 1]
    return plan


def _check_no_links(plan: Plan, zip_path: str, dest_dir: str) -> None:
    """Refuse an extraction that would write through a symbolic link already in ``dest_dir`` (a
    folder ``top -> /elsewhere``, or a link where a file would go): a link is never followed."""
    for info, parts in plan:
        folders = parts if info.is_dir() else parts[:-1]
        link = existing_link(dest_dir, folders)
        final = os.path.join(dest_dir, *parts)
        if not link and not info.is_dir() and os.path.islink(final):
            link = final
        if link:
            raise DownloadError(f"extracting {info.filename!r} from {zip_path} would go through {link}, "
                                "a symbolic link (or not a folder): refusing to write through links; "
                                "remove it or extract into a new folder")


def _check_room(plan: Plan, zip_path: str, dest_dir: str) -> None:
    """Make ``dest_dir`` and refuse an extraction the disk cannot hold, before writing a byte."""
    needed = sum(i.file_size for i, _ in plan if not i.is_dir())
    try:
        os.makedirs(dest_dir, exist_ok=True)
        free = shutil.disk_usage(dest_dir).free
    except OSError as err:
        raise DownloadError(f"cannot create {dest_dir} to extract {zip_path} ({err})") from None
    if needed > free:
        raise DownloadError(f"extracting {zip_path} needs {needed / 1e9:.2f} GB but only "
                            f"{free / 1e9:.2f} GB is free under {dest_dir}")


def _write_staged(zf: zipfile.ZipFile, plan: Plan, staging: str, zip_path: str) -> List[str]:
    """Write every member into ``staging``; the files' paths relative to it, with ``/``."""
    written: List[str] = []
    for info, parts in plan:
        target = os.path.join(staging, *parts)
        if os.path.commonpath([staging, os.path.abspath(target)]) != staging:
            raise DownloadError(f"{zip_path} entry {info.filename!r} escapes the folder")
        if info.is_dir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        written.append("/".join(parts))
    return written


def _move_into_place(written: List[str], staging: str, dest_dir: str, zip_path: str) -> None:
    """Each staged file to its final name with ``os.replace``: never half a file under that name."""
    for rel in written:
        parts = rel.split("/")
        final = os.path.join(dest_dir, *parts)
        if existing_link(dest_dir, parts[:-1]) or os.path.islink(final):   # planted since the check
            raise DownloadError(f"cannot extract {rel} from {zip_path}: a symbolic link is in the way")
        if os.path.isdir(final):
            raise DownloadError(f"cannot extract {rel} from {zip_path}: {final} is a folder")
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(os.path.join(staging, *rel.split("/")), final)
