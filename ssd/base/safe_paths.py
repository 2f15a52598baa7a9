"""Paths from outside, kept in their place: read only inside a folder, write only new files, never
through a link.

Why: names in a results file, a zip archive or a dataset come from strangers, and the folders we
write into may already hold links planted by someone else. ``os.path.join`` plus ``open`` follows
``..``, absolute names and symbolic links wherever they lead; the functions here resolve a name
against its folder and check the *resolved* path, and create folders and files relative to an
open folder descriptor with ``O_NOFOLLOW``/``O_EXCL``, so a link swapped in between a check and
a write cannot redirect the write, and an existing file is never replaced.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
from typing import Dict, List, Sequence, Tuple, Union


class PathRefused(ValueError):
    """A name that would lead outside its folder, or a write that would go through a link."""


def is_inside(root: str, path: str) -> bool:
    """Whether ``path`` is ``root`` or lies under it, both taken as resolved (real) paths."""
    root, path = os.path.realpath(root), os.path.realpath(path)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def name_parts(name: str) -> List[str]:
    """The components of a relative ``/``-separated name; ``PathRefused`` for an absolute one or ``..``.

    ``..foo.jpg`` is an ordinary name: only a component that *is* ``..`` climbs out.
    """
    if is_absolute_name(name):
        raise PathRefused("is an absolute path")
    norm = name.replace("\\", "/")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathRefused("climbs out of its folder with '..'")
    if not parts:
        raise PathRefused("names no file")
    return parts


def same_file_key(name: str) -> str:
    """What two names must differ in to be two files on macOS and Windows: case and Unicode
    normalization aside (``CamA``/``cama``, a composed ``é`` and ``e`` + accent are one file there)."""
    import unicodedata

    return unicodedata.normalize("NFC", name).casefold()


def is_absolute_name(name: str) -> bool:
    """Absolute on any system that writes results: ``/x``, ``D:\\x`` or ``D:/x``, ``\\\\server\\share\\x``."""
    norm = name.replace("\\", "/")
    return norm.startswith("/") or (len(norm) > 1 and norm[1] == ":" and norm[0].isalpha())


def absolute_name_parts(name: str) -> List[str]:
    """The components of an absolute name (``is_absolute_name``) below its root (``/``, a drive
    letter or ``//``): ``PathRefused`` for ``..``, as ``name_parts``. Only for comparing names; a
    Windows name's components are not a path on this machine."""
    norm = name.replace("\\", "/")
    if len(norm) > 1 and norm[1] == ":" and norm[0].isalpha():
        norm = norm[2:]
    return name_parts(norm.lstrip("/"))


def relative_inside(root: str, name: str) -> List[str]:
    """``name`` (relative to ``root``, or absolute under it) as components whose *resolved* path
    stays inside ``root``: a symbolic link that leads out counts as outside."""
    real_root = os.path.realpath(root)
    parts = relative_name(real_root, name)
    if not is_inside(real_root, os.path.join(real_root, *parts)):
        raise PathRefused("leads out of the folder through a symbolic link")
    return parts


class InsideResolver:
    """``relative_inside`` for many names under one folder, each folder resolved once.

    Why: ``os.path.realpath`` walks every component of a path with an ``lstat``; resolving the root,
    then each name in full, cost about 20 system calls per image, a quarter of a 200,000-image sort.
    A season's names share few folders, so each folder's real path is computed once and only the
    file itself is looked at (resolved in full when it is a symbolic link). The checks are the same:
    a name leading out, by ``..``, an absolute path or a link anywhere on its way, is refused.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._folders: Dict[Tuple[str, ...], Union[str, PathRefused]] = {}

    def resolve(self, name: str) -> Tuple[List[str], str]:
        """``name``'s components below the root and its resolved path; ``PathRefused`` as ``relative_inside``."""
        parts = relative_name(self.root, name)
        folder = self._folder(tuple(parts[:-1]))
        path = os.path.join(folder, parts[-1])
        if os.path.islink(path):
            path = os.path.realpath(path)
            if not self._inside(path):
                raise PathRefused("leads out of the folder through a symbolic link")
        return parts, path

    def _folder(self, parts: Tuple[str, ...]) -> str:
        found = self._folders.get(parts)
        if found is None:
            real = os.path.realpath(os.path.join(self.root, *parts))
            found = real if self._inside(real) else PathRefused("leads out of the folder through a symbolic link")
            self._folders[parts] = found
        if isinstance(found, PathRefused):
            raise found
        return found

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self._prefix)


def relative_name(real_root: str, name: str) -> List[str]:
    """``name``'s components below the resolved ``real_root``, an absolute name taken relative to it
    when it lies under it (``PathRefused`` otherwise, or for ``..``); links are not checked here."""
    norm = name.replace("\\", "/")
    if norm.startswith("/"):
        absolute = os.path.realpath(norm)
        if not is_inside(real_root, absolute) or absolute == real_root:
            raise PathRefused("lies outside the folder")
        norm = os.path.relpath(absolute, real_root)
    return name_parts(norm)


def existing_link(base: str, folders: Sequence[str]) -> str:
    """The first of the folders ``base/folders[0]/folders[1]/…`` that exists as a symbolic link or
    as something other than a folder; ``""`` when there is none. For checks before any write."""
    path = base
    for part in folders:
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return ""
        if not stat.S_ISDIR(mode):
            return path
    return ""


def open_folder(base_fd: int, parts: Sequence[str]) -> int:
    """A descriptor of the folder ``parts`` below ``base_fd``, made where missing; never through a link
    (``PathRefused`` naming the component that is one)."""
    fd = os.dup(base_fd)
    try:
        for part in parts:
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PathRefused(f"'{part}' is a symbolic link or not a folder") from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def place(src: str, folder_fd: int, name: str, mode: str) -> None:
    """A new ``name`` in ``folder_fd`` for the regular file ``src``: a symbolic link to it, a hard
    link or a copy. ``FileExistsError`` if ``name`` exists (nothing is ever replaced)."""
    if mode == "symlink":
        os.symlink(src, name, dir_fd=folder_fd)
    elif mode == "hardlink":
        os.link(src, name, dst_dir_fd=folder_fd)
    else:
        _copy_new(src, folder_fd, name)


def _copy_new(src: str, folder_fd: int, name: str) -> None:
    """Copy ``src`` into a file created exclusively (a half copy is removed on failure)."""
    rfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(rfd)
        if not stat.S_ISREG(st.st_mode):
            raise PathRefused("is not a regular file")
        os.set_blocking(rfd, True)
        wfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder_fd)
        try:
            with os.fdopen(os.dup(rfd), "rb") as fin, os.fdopen(os.dup(wfd), "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
            os.fchmod(wfd, stat.S_IMODE(st.st_mode))
            os.utime(wfd, ns=(st.st_atime_ns, st.st_mtime_ns))
        except BaseException:
            os.unlink(name, dir_fd=folder_fd)
            raise
        finally:
            os.close(wfd)
    finally:
        os.close(rfd)


def same_placement(src: str, dest: str, mode: str) -> bool:
    """Whether ``dest`` is already what ``place`` would make for ``src`` (a re-run of a sort)."""
    try:
        if mode == "symlink":
            return os.path.islink(dest) and os.readlink(dest) == src
        if mode == "hardlink":
            return not os.path.islink(dest) and os.path.samefile(dest, src)
    except OSError:
        return False
    return False
