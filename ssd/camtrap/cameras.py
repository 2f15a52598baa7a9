"""Which folder is "the camera": the unit episodes, repeats and Camtrap DP deployments are made per.

Why not simply a photo's own folder: real seasons are laid out ``site/camera/2024-05-01/`` (a
folder per day or per visit) or ``site/camera/100RECNX/`` (the overflow folders a card makes
every few thousand frames). Taking the immediate folder as the camera made each day its own
deployment (6,000 deployments for 200 cameras) and split a burst across midnight into two
episodes. Timelapse users and MegaDetector's tools expect the camera to be the camera.

Two rules, one of which a run records in its results (``info.ssd_batch.camera_depth``) so that
later tools group the same way unless told otherwise:

* **automatic** (``"auto"``, the default): a file's folder with its trailing card-overflow
  folders (MegaDetector's patterns: ``100RECNX``, ``100EK113``, ``100_BTCF``, ``100MEDIA``,
  ``100DSCIM``) and trailing folders named as a date (``2024-05-01``, ``2024_05_01``,
  ``2024.05.01``, ``20240501``, ``01-05-2024``) removed, repeatedly from the end:
  ``site/cam/2024-05-01/100RECNX`` → ``site/cam``. A name that only looks like a date is kept
  (``20241399`` is no date; years outside 1980–2099 neither). Stripping never goes above the
  images folder: when the folder chosen *is* one camera's card (``100RECNX/``, ``101RECNX/`` or
  day folders at the top), every file belongs to one camera, the top folder ``.``.
* **depth N**: the camera is the first N folder levels below the images folder, whatever they
  are called; a file less deep than N belongs to its own folder. ``0`` makes the whole folder one
  camera. With ``--absolute-paths`` results, levels count from the top of the disk.
"""
from __future__ import annotations

import argparse
import calendar
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

AUTO = "auto"
#: The camera rule used when none is asked for or recorded: automatic (``None``).
DEFAULT_CAMERA_DEPTH: Optional[int] = None
_OVERFLOW = re.compile(r"\d+RECNX|\d+EK\d+|\d+_BTCF|\d+MEDIA|\d+DSCIM", re.ASCII | re.IGNORECASE)
_YMD = re.compile(r"((?:19|20)\d\d)([-_.]?)(\d\d)\2(\d\d)", re.ASCII)
_DMY = re.compile(r"(\d\d)([-_.])(\d\d)\2((?:19|20)\d\d)", re.ASCII)
_DRIVE = re.compile(r"[A-Za-z]:\Z")


def _is_day(year: int, month: int, day: int) -> bool:
    return 1980 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def is_date_folder(name: str) -> bool:
    """A folder named as one day (year first, or day/month first with separators): a visit, not a camera."""
    m = _YMD.fullmatch(name)
    if m:
        return _is_day(int(m.group(1)), int(m.group(3)), int(m.group(4)))
    m = _DMY.fullmatch(name)
    if m:       # 01-05-2024 reads as 1 May or January 5: either way a day
        a, b, y = int(m.group(1)), int(m.group(3)), int(m.group(4))
        return _is_day(y, b, a) or _is_day(y, a, b)
    return False


def is_overflow_folder(name: str) -> bool:
    """A camera card's numbered overflow folder (``100RECNX``, ``101MEDIA`` …)."""
    return _OVERFLOW.fullmatch(name) is not None


def _root_parts(parts: list) -> int:
    """How many leading parts of a split folder name the top of the disk (``/``, ``C:``): never a camera level."""
    return 1 if parts and (parts[0] == "" or _DRIVE.match(parts[0])) else 0


def camera_folder(folder: str, depth: Optional[int] = DEFAULT_CAMERA_DEPTH) -> str:
    """The camera folder of a file's folder (``/``-separated; ``""``: the images folder itself)."""
    if not folder:
        return ""
    parts = folder.split("/")
    top = _root_parts(parts)
    if depth is not None:
        return "/".join(parts[:top + depth]) if len(parts) > top + depth else folder
    end = len(parts)
    while end > top and (is_overflow_folder(parts[end - 1]) or is_date_folder(parts[end - 1])):
        end -= 1
    return "/".join(parts[:end]) if end > top else "/".join(parts[:top]) + ("/" if top else "")


@dataclass(frozen=True)
class CameraRule:
    """One of the two rules (``depth`` None: automatic), with a cache per folder name.

    Why the cache: episodes and repeats ask for the camera of every entry (200,000 in a season),
    while a season has a few thousand folders.
    """

    depth: Optional[int] = DEFAULT_CAMERA_DEPTH
    _cache: Dict[str, str] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if self.depth is not None and (isinstance(self.depth, bool) or not isinstance(self.depth, int)
                                       or self.depth < 0):
            raise ValueError(f"camera depth must be an integer ≥ 0 or None (automatic), got {self.depth!r}")

    def camera_of(self, file: str) -> str:
        """The camera folder of a results entry's file name (``""``: the top of the images folder)."""
        folder = posixpath.dirname(str(file).replace("\\", "/"))
        try:
            return self._cache[folder]
        except KeyError:
            camera = self._cache[folder] = camera_folder(folder, self.depth)
            return camera

    def recorded(self) -> Union[str, int]:
        """The value written into results (``info.ssd_batch.camera_depth``) and packages."""
        return AUTO if self.depth is None else self.depth

    def describe(self) -> str:
        """The rule in words, for help texts, summaries and the page."""
        if self.depth is None:
            return "automatic: the photo's folder without date and card-overflow folders"
        if self.depth == 0:
            return "0: the whole images folder is one camera"
        return f"{self.depth}: the first {self.depth} folder level{'s' if self.depth > 1 else ''}"


#: What the Camera traps page offers: automatic, then depths (most seasons are 1–3 levels deep). The
#: values a file records (``CameraRule.recorded``), "auto" rather than None: a select box shows a
#: None value as no choice made ("Choose an option"), not as "automatic".
CAMERA_DEPTH_CHOICES = (AUTO, 1, 2, 3, 4, 5, 0)


def depth_of(choice: Union[str, int, None]) -> Optional[int]:
    """A choice's depth: ``"auto"`` (or None) is the automatic rule (None)."""
    return None if choice is None or choice == AUTO else int(choice)


def describe_depth(choice: Union[str, int, None]) -> str:
    """``CameraRule(depth_of(choice)).describe()``: a choice's label."""
    return CameraRule(depth_of(choice)).describe()


def rule_from_record(value: Any) -> CameraRule:
    """The rule a results file records (``"auto"`` or a depth); anything else (older files,
    MegaDetector's own): the default rule."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return CameraRule(value)
    return CameraRule()


def file_camera_rule(doc: Dict[str, Any]) -> CameraRule:
    """The camera rule a results file's episodes were made with (see ``rule_from_record``)."""
    return rule_from_record(((doc.get("info") or {}).get("ssd_batch") or {}).get("camera_depth"))


def camera_depth(text: str) -> Optional[int]:
    """``--camera-depth``'s argparse type: ``auto`` (None) or an integer ≥ 0."""
    if str(text).strip().lower() == AUTO:
        return None
    try:
        value = int(str(text))
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer ≥ 0 (folder levels), got {text!r}")
    return value


def camera_rule_arg(text: str) -> CameraRule:
    """``results``' ``--camera-depth``: the rule asked for (the flag left out: the file's)."""
    return CameraRule(camera_depth(text))


CAMERA_DEPTH_HELP = ("which folder is the camera (episodes, repeats, Camtrap DP deployments): auto (default) = the "
                     "photo's folder without trailing date folders (2024-05-01, 20240501) and card-overflow folders "
                     "(100RECNX, 100MEDIA); N = the first N folder levels below the images folder")
