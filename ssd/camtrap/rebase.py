"""Results whose names were written on another machine: the names that begin with a path prefix,
taken below another folder.

MegaDetector writes absolute names by default (``D:\\season\\camA\\img0.jpg``,
``\\\\server\\share\\season\\…``), and so do our runs with ``--absolute-paths``; the photos are then
sorted, exported or browsed on a machine where the season is at ``/mnt/season``. MegaDetector's
postprocessing rewrites such a file with a query and a replacement string; Timelapse reads names
relative to the folder its database sits in. Here a *path prefix* says "the names that begin with
this folder are under the images folder": ``results sort|export|summary --path-prefix 'D:\\season'``
read the names below it in memory, and ``results rebase`` writes a new file with them rewritten
(``--from A --to B``, or ``--relative-to A``). Both use ``rebase_results``.

Rules, the same for every caller:

- The prefix matches whole folders: ``D:\\season`` covers ``D:\\season\\camA\\x.jpg``, never
  ``D:\\season2\\x.jpg``. ``\\`` and ``/`` are both separators; a trailing one is ignored.
- A Windows prefix (a drive letter or ``\\\\server\\share``) matches without regard to case, as
  Windows' own file systems do (``d:\\Season`` is ``D:\\season``); any other is matched exactly.
  Only the prefix is compared so; the rest of each name is kept as written.
- Every name must lie under the prefix, and what follows it may not climb out with ``..``: a name
  outside is refused, naming it, before anything is written. Callers that read files then still
  resolve each name inside the images folder (``ssd.base.safe_paths``: no link leading out).
- With no prefix, nothing is guessed: the common folder of a file's names is not necessarily the
  images folder (a file for one camera's folder would map its photos one level too high, and a
  sort would file them as missing). The refusal names the common folder to give instead.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ssd.base.safe_paths import PathRefused, name_parts
from ssd.base.text import terminal_safe
from ssd.camtrap.results_check import ResultsError, refuse_replacing


def path_prefix_help(images: str = "--images, where the command takes one") -> str:
    """What the path prefix is; ``images``: the images folder setting as the reader knows it (the
    command's flag, or the page's field)."""
    return ("the folder the results' names begin with on the machine that wrote them (e.g. "
            f"'D:\\season' or /mnt/a/season): names below it are read as relative to it (to {images}); "
            "a name outside it is refused. Windows prefixes (a drive letter, \\\\server\\share) "
            "match in any case")


PATH_PREFIX_HELP = path_prefix_help()


def recorded_folder_hint(doc: Dict[str, Any], searched: Optional[str], images_term: str = "--images") -> str:
    """A clause for "file not found" messages when the run recorded another photo folder
    (``info.ssd_batch.images_root``) than the one searched: results saved away from the photos
    (``detect /data/season --json season.json`` in the home folder) are looked up beside the file.
    ``images_term``: the setting that takes it as the user sees it (a flag, or the page's field)."""
    recorded = ((doc.get("info") or {}).get("ssd_batch") or {}).get("images_root")
    if not isinstance(recorded, str) or not searched or not os.path.isdir(recorded):
        return ""
    if os.path.realpath(recorded) == os.path.realpath(searched):
        return ""
    if images_term.startswith("--"):
        return f"; the run was over {terminal_safe(recorded)}: give it as the images folder ({images_term} {terminal_safe(recorded)})"
    return f"; the run was over {terminal_safe(recorded)}: type it in {images_term}"


Split = Tuple[str, List[str], bool]      # (root: "", "/", "//" or "D:"; folders and name; written on Windows)


def split_name(name: str) -> Split:
    """A name's root, components (``.`` and empty ones dropped, ``..`` kept for the caller to refuse)
    and whether it is a Windows absolute name (drive letter or network share)."""
    norm = name.replace("\\", "/")
    if len(norm) > 1 and norm[1] == ":" and norm[0].isalpha():
        root, rest, windows = norm[0].upper() + ":", norm[2:], True
    elif norm.startswith("//"):
        root, rest, windows = "//", norm[2:], True
    else:
        root, rest, windows = ("/" if norm.startswith("/") else ""), norm, False
    return root, [p for p in rest.split("/") if p not in ("", ".")], windows


class PathPrefix:
    """A folder the names of a results file begin with (see the module's docstring for the rules)."""

    def __init__(self, prefix: str) -> None:
        if not prefix or not prefix.strip():
            raise ResultsError("the path prefix is empty: give the folder the names begin with")
        self.text = prefix
        self.root, parts, self.windows = split_name(prefix)
        if ".." in parts:
            raise ResultsError(f"the path prefix '{prefix}' holds '..': give the folder itself")
        self._parts = [self._fold(p) for p in parts]

    def _fold(self, part: str) -> str:
        return part.casefold() if self.windows else part

    def rest(self, name: str) -> Optional[List[str]]:
        """``name``'s components after the prefix (empty for the prefix itself); None when not under it."""
        root, parts, _ = split_name(name)
        n = len(self._parts)
        if root != self.root or len(parts) < n or [self._fold(p) for p in parts[:n]] != self._parts:
            return None
        return parts[n:]

    def below(self, name: str) -> List[str]:
        """``name``'s components below the prefix; ``ResultsError`` when it is not under it or climbs out."""
        rest = self.rest(name)
        if not rest:
            raise ResultsError(f"{name!r} is not under the path prefix '{self.text}': every name must begin "
                               "with it (give the folder all the names share; nothing was written)")
        try:
            return name_parts("/".join(rest))
        except PathRefused as why:
            raise ResultsError(f"{name!r} {why} below the path prefix '{self.text}' (nothing was written)") from None


def joined(to: Optional[str], parts: List[str]) -> str:
    """``parts`` below ``to`` in its own style (``\\`` after a Windows folder written with them),
    or as a relative ``/``-separated name when ``to`` is None."""
    if to is None:
        return "/".join(parts)
    windows_style = "\\" in to or (split_name(to)[2] and "/" not in to)
    sep = "\\" if windows_style else "/"
    return to.rstrip("/\\") + sep + sep.join(parts)


def rebase_results(doc: Dict[str, Any], prefix: str, to: Optional[str] = None) -> Dict[str, Any]:
    """A new document whose names begin with ``to`` instead of ``prefix`` (relative when ``to`` is
    None); ``doc`` is left as it is. Every name is checked first (``ResultsError``: outside the
    prefix, ``..``, or two names that would become one). ``info.rebased`` records the step, and the
    run's recorded images folder (``info.ssd_batch.images_root``) follows the names."""
    if to is not None and not to.strip():
        raise ResultsError("the new prefix is empty: give a folder, or make the names relative to the prefix")
    names = Renamer(prefix, to)
    images = [dict(im, file=names.name(im["file"])) for im in doc.get("images", [])]
    return dict(names.head(doc), images=images)


class Renamer:
    """``rebase_results`` a name at a time, for a reader that never holds the document: each name
    checked as it comes (``ResultsError`` as ``rebase_results`` refuses it), the head made apart."""

    def __init__(self, prefix: str, to: Optional[str] = None) -> None:
        self.prefix, self.to, self.where = prefix, to, PathPrefix(prefix)
        self.seen: Dict[str, str] = {}

    def name(self, file: str) -> str:
        """``file``'s new name; ``ResultsError`` outside the prefix, climbing out, or a name given before."""
        name = joined(self.to, self.where.below(file))
        if name in self.seen:
            raise ResultsError(f"{self.seen[name]!r} and {file!r} would both become {name!r} (nothing was written)")
        self.seen[name] = file
        return name

    def head(self, doc: Dict[str, Any]) -> Dict[str, Any]:
        """``doc`` (its ``images`` left as they are) with ``info`` recording the step (``rebase_results``)."""
        info = dict(doc.get("info") or {})
        info["rebased"] = list(info.get("rebased") or []) + [{"from": self.prefix, "to": self.to}]
        batch = info.get("ssd_batch")
        if isinstance(batch, dict):
            info["ssd_batch"] = _rebased_batch(batch, self.where, self.to)
        return dict(doc, info=info)


def _rebased_batch(batch: Dict[str, Any], where: PathPrefix, to: Optional[str]) -> Dict[str, Any]:
    """``info.ssd_batch`` agreeing with the rewritten names, as MegaDetector's tools read it:
    ``absolute_paths`` says whether they are absolute now, and the images folder moves as they did.
    Relative names are relative to the prefix's folder (``to`` None). Names made absolute from
    relative ones are all under ``to``, which is their folder now (the old one named where the
    relative names were read from). Absolute names made relative to an unknown folder (``to``
    relative) record none. Otherwise an images folder under the prefix moves under ``to`` (kept
    when it was elsewhere)."""
    out = dict(batch)
    if to is None:
        out.update(images_root=where.text, absolute_paths=False)
        return out
    absolute = bool(split_name(to)[0])
    if "absolute_paths" in out or absolute:
        out["absolute_paths"] = absolute
    if absolute and not where.root:
        out["images_root"] = to
        return out
    if not absolute and where.root:
        out.pop("images_root", None)
        return out
    rest = where.rest(batch["images_root"]) if isinstance(batch.get("images_root"), str) else None
    if rest is not None and ".." not in rest:
        out["images_root"] = joined(to, rest) if rest else to
    return out


def common_folder(names: Iterable[str]) -> Optional[str]:
    """The deepest folder every absolute name lies in, written as the first name is (``None``: names
    on different roots, a relative one, or none). Only for messages: it is never used unasked."""
    common = CommonFolder()
    for name in names:
        common.add(name)
    return common.folder()


class CommonFolder:
    """``common_folder`` of the names given one at a time (``add``), none held."""

    def __init__(self) -> None:
        self.shared: Optional[List[Any]] = None   # root, folders in common, written on Windows, the first name
        self.apart = False                        # different roots, or a relative name

    def add(self, name: str) -> None:
        if self.apart:
            return
        root, parts, windows = split_name(name)
        shared = self.shared
        if not root or (shared is not None and root != shared[0]):
            self.apart = True
            return
        if shared is None:
            self.shared = [root, parts[:-1], windows, name]
            return
        fold = str.casefold if windows else str
        k = 0
        while k < min(len(shared[1]), len(parts) - 1) and fold(shared[1][k]) == fold(parts[k]):
            k += 1
        shared[1] = shared[1][:k]

    def folder(self) -> Optional[str]:
        if self.shared is None or self.apart:
            return None
        root, folders, _, first = self.shared
        sep = "\\" if "\\" in first else "/"
        return root.replace("/", sep) + (sep if root.endswith(":") else "") + sep.join(folders)


#: How the command line names the two settings a refusal asks for; the page passes its fields' labels.
CLI_TERMS = ("--path-prefix", "--images")


def refuse_windows_names(doc: Dict[str, Any], images: Optional[str], terms: Tuple[str, str] = CLI_TERMS) -> None:
    """``ResultsError`` when the names are Windows absolute names (a drive letter, a network share):
    they can name no file here without a path prefix. The message names the folder they share, and
    the settings by ``terms`` (prefix, images folder) as the user sees them."""
    names = WindowsNames()
    for im in doc.get("images", []):
        names.add(im["file"])
    names.refuse(images, terms)


class WindowsNames:
    """``refuse_windows_names`` of the names given one at a time (``add``), then ``refuse``."""

    def __init__(self) -> None:
        self.foreign: Optional[str] = None
        self.common = CommonFolder()

    def add(self, name: str) -> None:
        # string tests (the page reruns this); "//x" is a POSIX name too: only a backslashed share counts
        if self.foreign is None and ((name[1:2] == ":" and name[:1].isalpha()) or name.startswith("\\\\")):
            self.foreign = name
        self.common.add(name)

    def refuse(self, images: Optional[str], terms: Tuple[str, str] = CLI_TERMS) -> None:
        """``ResultsError`` as ``refuse_windows_names`` gives it, where a name given was a Windows one."""
        if self.foreign is None:
            return
        foreign, shared = self.foreign, self.common.folder()
        hint = f" (these names share '{shared}')" if shared else ""
        now = f" (now '{images}')" if images else ""
        raise ResultsError(f"'{foreign}' was written on Windows and names no file on this machine: give the folder "
                           f"the names begin with there as the path prefix ({terms[0]}){hint}, and the folder it is "
                           f"here as the images folder ({terms[1]}){now}; or write a file with names relative to it: "
                           "python -m ssd results rebase RESULTS.json --relative-to PREFIX -o NEW.json "
                           "(nothing was written)")


def output_path_checked(results: str, out: str) -> None:
    """``ResultsError`` when ``out`` is the results file itself (a rebase never replaces its input)."""
    refuse_replacing(out, [results], "rebased file")
