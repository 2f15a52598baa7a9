"""What ``results draw`` and ``results crops`` share: which photos, where their outputs go, and a tally.

Why one place: both read a season's photos named by an untrusted results file and write new files
under a folder of the user's; the rules are the same for both. Every photo is read inside the
images folder (``InsideResolver``: neither ``..``, an absolute name elsewhere nor a link leads
out; such a name is counted and named, never read). The output folder is never the images folder
nor inside it (its copies would be listed as photos by the next detection run, as ``results sort``
refuses), and no output may land on a photo of the results (refused before anything is written). Each output
is written atomically (``atomic_write_bytes``) and a file already there is left as it is and
counted as skipped, so a run stopped half way is resumed by running it again. A missing or
unreadable photo and a failed entry are counted and the run goes on.

A video (MegaDetector's video entries: ``frames_processed``, a ``frame_number`` on each detection)
is worked on frame by frame: each frame that carries a shown box is one item, read by the
browser's own reader (``video.read_frame``: the frame counted as detection counted it, upright
as detection saw it), so its boxes land on the picture they were found in. A video the reader
cannot open is unreadable, named once.
"""
from __future__ import annotations

import errno
import os
import random
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ssd.base import atomic
from ssd.base.errors import ImageError, OutputError
from ssd.base.safe_paths import InsideResolver, PathRefused, is_inside, same_file_key
from ssd.base.text import name_on_disk
from ssd.camtrap.megadetector import ResultsError, is_failed
from ssd.camtrap.video import is_video, shown_frame
from ssd.inference.filtering import ShownFilter

#: Photos decoded at once: Pillow lets go of the GIL while it decodes, resizes and encodes, so a few
#: threads can use a few cores; more only add memory (each holds a full-size photo). Not yet shown
#: faster: the one machine measured (docs/CAMERA_TRAPS.md) had its 2 cores taken by other work.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))

#: ``--seed``'s default: the same ``--sample`` each time unless another is asked for.
DEFAULT_SEED = 0

#: Photos handed to the pool at a time: bounds the outcomes held, not the speed.
_BATCH = 64


@dataclass
class Tally:
    """What a run did, for its summary: counts, and the names behind the problems."""

    written: int = 0
    skipped: int = 0                      # already there from an earlier run
    quiet_videos: int = 0                 # videos with no box shown: no frame to write
    failed: int = 0                       # entries the detector could not read
    missing: List[str] = field(default_factory=list)
    unreadable: List[str] = field(default_factory=list)
    unwritten: List[str] = field(default_factory=list)      # photos whose output could not be written
    unwritten_why: str = ""                                 # the first one's reason
    outside: List[str] = field(default_factory=list)
    left_out: int = 0                     # by --classes, or not in the --sample
    stale: int = 0                        # temporary files of a killed run, removed
    small: int = 0                        # boxes below --min-size (crops)
    empty: int = 0                        # boxes with no area in the photo (crops)

    def note_unreadable(self, name: str) -> None:
        """Name an unreadable file once: the frames of a video come one after another."""
        if not self.unreadable or self.unreadable[-1] != name:
            self.unreadable.append(name)

    def note_unwritten(self, name: str, why: str) -> None:
        """Name a photo whose output could not be written (once), keeping the first reason."""
        self.unwritten_why = self.unwritten_why or why
        if not self.unwritten or self.unwritten[-1] != name:
            self.unwritten.append(name)

    def lines(self, what: str) -> List[str]:
        """The summary a person reads: what was written, then each kind of problem with an example."""
        from ssd.base.text import terminal_safe

        out = [f"{what}: {self.written} written, {self.skipped} skipped (already there)"]
        for names, why in ((self.outside, "outside the images folder (not read)"), (self.missing, "missing"),
                           (self.unreadable, "unreadable"),
                           (self.unwritten, f"could not be written ({self.unwritten_why})")):
            if names:
                more = f", … ({len(names) - 3} more)" if len(names) > 3 else ""
                out.append(f"{len(names)} {why}: " + ", ".join(repr(terminal_safe(n)) for n in names[:3]) + more)
        if self.stale:
            out.append(f"{self.stale} unfinished temporary file(s) of a stopped run removed")
        if self.quiet_videos:
            out.append(f"{self.quiet_videos} video(s) without a box at these thresholds (nothing written for them)")
        if self.failed:
            out.append(f"{self.failed} failed entry(ies) skipped (the detector could not read them)")
        if self.small:
            out.append(f"{self.small} box(es) smaller than --min-size left out")
        if self.empty:
            out.append(f"{self.empty} box(es) with no area in the photo left out")
        if self.left_out:
            out.append(f"{self.left_out} photo(s) left out by --classes or --sample")
        return out


@dataclass
class Photo:
    """One picture to work on: its entry, its resolved path and its components below the images
    folder; for a video, the number of the frame (``frame``), else None."""

    entry: Dict[str, Any]
    path: str
    parts: List[str]
    frame: Optional[int] = None


def is_video_entry(entry: Dict[str, Any]) -> bool:
    """A video's entry: named as one, or carrying the video fields (a clip of another extension)."""
    return is_video(entry["file"]) or "frames_processed" in entry


def frame_of(entry: Dict[str, Any], detection: Dict[str, Any]) -> int:
    """The frame a video's detection was found in: its ``frame_number``, else the frame the browser
    shows for the entry (``shown_frame``), so the two agree on where an unnumbered box belongs."""
    number = detection.get("frame_number")
    return int(number) if isinstance(number, int) else shown_frame(entry)


def on_picture(photo: Photo, detection: Dict[str, Any]) -> bool:
    """Whether ``detection`` belongs on ``photo``'s picture: always for a photo, for a frame its own."""
    return photo.frame is None or frame_of(photo.entry, detection) == photo.frame


def picture_entry(photo: Photo) -> Dict[str, Any]:
    """``photo``'s entry with only the detections of its picture (a video's: of its frame)."""
    if photo.frame is None:
        return photo.entry
    return {**photo.entry, "detections": [d for d in photo.entry.get("detections") or []
                                          if isinstance(d, dict) and on_picture(photo, d)]}


def open_picture(photo: Photo, draft_to: Optional[int] = None):
    """The photo as detection decoded it (``load_image``: EXIF-upright), or the video's frame
    (``read_frame``); ``ImageError`` when it cannot be read (a damaged file, a codec missing)."""
    from ssd.camtrap.video import read_frame
    from ssd.data.images import load_image

    if photo.frame is None:
        return load_image(photo.path, photo.entry["file"], draft_to=draft_to).image
    img = read_frame(photo.path, photo.frame)
    if img is None:
        raise ImageError(f"frame {photo.frame} of '{photo.entry['file']}' could not be read")
    return img


def with_classes(shown: ShownFilter, classes: Optional[Sequence[str]], categories: Dict[str, str]) -> ShownFilter:
    """``shown`` limited to ``classes`` (None: all); ``ResultsError`` for a class the results lack
    (a typo would otherwise quietly give nothing)."""
    import dataclasses

    from ssd.camtrap.megadetector import check_class_names

    if not classes:
        return shown
    check_class_names(dict.fromkeys(classes, 0.0), categories)     # the per-class thresholds' own check
    return dataclasses.replace(shown, classes=frozenset(classes))


def choose_photos(doc: Dict[str, Any], image_root: str, out: str, shown: ShownFilter, tally: Tally,
                  outputs_of: Callable[[Photo], Iterable[List[str]]], sample: Optional[int] = None,
                  seed: int = DEFAULT_SEED) -> List[Photo]:
    """The photos to work on, in file order, each read inside ``image_root``; the rest counted in ``tally``.

    ``shown.classes`` keeps the photos showing one of them; ``sample`` then takes that many at
    random (``seed``: the same ones each time). ``outputs_of(photo)`` names the files a photo's
    output may be written to (components below ``out``): ``ResultsError`` before anything is
    written when ``out`` is the images folder or one of those would land on a photo of the results.
    """
    if not image_root or not os.path.isdir(image_root):
        raise ResultsError(f"the images folder {image_root!r} is not a folder: give the folder the results' "
                           "paths start from (--images)")
    root, target = os.path.realpath(image_root), os.path.realpath(out)
    if target == root:
        raise ResultsError(f"--out '{out}' is the images folder: write into another folder, so that no original "
                           "can be touched (nothing was written)")
    if is_inside(root, target):
        raise ResultsError(f"--out '{out}' is inside the images folder '{image_root}': write into a folder outside "
                           "it, so that no original can be touched and the next detection run does not list the "
                           "copies as photos (nothing was written)")
    names = doc.get("detection_categories") or {}
    resolver, photos, seen = InsideResolver(root), [], {}
    for entry in doc.get("images", []):
        if is_failed(entry):
            tally.failed += 1
        elif shown.classes is not None and not shown.entry_detections(entry, names):
            tally.left_out += 1
        else:
            photo = _resolved(resolver, entry, tally)
            if photo is not None:
                _refuse_listed_twice(photo, seen)
                photos += _frames(photo, shown, names, tally) if is_video_entry(entry) else [photo]
    if sample is not None and sample < len(photos):
        keep = sorted(random.Random(seed).sample(range(len(photos)), sample))
        tally.left_out += len(photos) - len(keep)
        photos = [photos[k] for k in keep]
    if is_inside(target, root):     # apart, no output can be a photo
        _refuse_landing_on_originals(photos, target, root, outputs_of, out)
    return photos


def _refuse_listed_twice(photo: Photo, seen: Dict[Tuple[str, ...], Dict[str, Any]]) -> None:
    """``ResultsError`` when another entry named the same file (``seen``: parts → that entry), as
    ``results sort`` and the COCO export refuse it: one output with a second entry counted as
    "already there", or a crop's row twice in crops.csv, would hide which entry was meant."""
    first = seen.setdefault(tuple(photo.parts), photo.entry)
    if first is not photo.entry:
        from ssd.base.text import terminal_safe

        name, other = first["file"], photo.entry["file"]
        also = "" if name == other else f" (also as {terminal_safe(other)!r})"
        raise ResultsError(f"{terminal_safe(name)!r} is listed twice in the results{also}: one entry an image "
                           "(results merge joins shards without repeats; nothing was written)")


def refuse_shared_outputs(photos: Sequence[Photo], output_of: Callable[[Photo], List[str]], done: str) -> None:
    """``ResultsError`` (before anything is written) when two entries' outputs would be one file:
    ``output_of(photo)`` (components below ``out``; a video's frames, one entry, may share it)
    equal, or equal but for case or Unicode form (``same_file_key``), which on Windows, macOS and
    most USB drives (exFAT) is one file, as ``results split`` refuses. Written, the second replaced
    the first or was counted as already there, its picture lost (a TIFF's copy ``a.tif.jpg`` beside
    a photo ``a.tif.jpg``; ``IMG_1.JPG`` beside ``img_1.jpg``). Keyed by the name's hash, checked on
    a hit: a season's million names are not held a second time."""
    from ssd.base.text import terminal_safe

    first: Dict[int, Photo] = {}
    for p in photos:
        name = "/".join(output_of(p))
        other = first.setdefault(hash(same_file_key(name)), p)
        if other.entry is not p.entry and same_file_key("/".join(output_of(other))) == same_file_key(name):
            same = "/".join(output_of(other)) == name
            how = f"would both be {done} as '{terminal_safe(name)}'" if same else (
                f"would be {done} as '{terminal_safe('/'.join(output_of(other)))}' and '{terminal_safe(name)}', "
                "names that differ only in case or Unicode form: one file on Windows, macOS and most USB drives")
            raise ResultsError(f"{terminal_safe(other.entry['file'])!r} and {terminal_safe(p.entry['file'])!r} "
                               f"{how}: rename one of them (nothing was written)")


def _frames(video: Photo, shown: ShownFilter, names: Dict[str, str], tally: Tally) -> List[Photo]:
    """One item per frame of ``video`` that carries a shown box, in frame order; none (counted) when
    no box is shown: a clip's thousand frames without one are not worth a copy each."""
    frames = sorted({frame_of(video.entry, d) for d in shown.entry_detections(video.entry, names)})
    if not frames:
        tally.quiet_videos += 1
    return [Photo(video.entry, video.path, video.parts, n) for n in frames]


def _resolved(resolver: InsideResolver, entry: Dict[str, Any], tally: Tally) -> Optional[Photo]:
    """The entry's photo inside the images folder; None (counted in ``tally``) when it lies outside
    or is missing. A name that is not UTF-8 is tried in its escaped form, as ``results sort`` does."""
    file = entry["file"]
    try:
        for name in dict.fromkeys((file, name_on_disk(file))):
            parts, path = resolver.resolve(name)
            if os.path.isfile(path):
                return Photo(entry, path, parts)
    except PathRefused:
        tally.outside.append(file)
        return None
    tally.missing.append(file)
    return None


def _refuse_landing_on_originals(photos: Sequence[Photo], target: str, root: str,
                                 outputs_of: Callable[[Photo], Iterable[List[str]]], out: str) -> None:
    """``ResultsError`` when an output would be a photo's own path, or any path inside the images
    folder ``root`` (``out`` above it: the copy of ``photos/x.jpg`` in the images folder's parent
    is ``photos/x.jpg``; a new file there is listed as a photo by the next detection run)."""
    sources = {os.path.normcase(p.path) for p in photos}
    for p in photos:
        for parts in outputs_of(p):
            dest = os.path.realpath(os.path.join(target, *parts))
            if os.path.normcase(dest) in sources:
                raise ResultsError(f"--out '{out}' would write over the original '{p.entry['file']}': write into "
                                   "a folder outside the images folder (nothing was written)")
            if is_inside(root, dest):
                raise ResultsError(f"--out '{out}' would write the output of '{p.entry['file']}' inside the images "
                                   "folder, where the next detection run would list it as a photo: write into a "
                                   "folder outside the images folder (nothing was written)")


@contextmanager
def held_output(target: str, action: str) -> Iterator[None]:
    """One ``results draw`` (or ``crops``) at a time writes into ``target``: a lock file there
    (``.results-ACTION.busy``, flock) for the run, removed at its end. Why: a second run's start removes
    the stale temporary files of a killed one, which would be the first run's files in flight, and both
    would write the same outputs. Where locks are unsupported (Windows, some network mounts), nothing is
    checked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = os.path.join(target, f".results-{action}.busy")
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            locked = False
        except OSError:             # a filesystem without locks: not checked
            yield
            return
        # a lock taken on a file its holder removed meanwhile holds nothing: busy too
        if not locked or not os.path.exists(path) or os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino:
            raise ResultsError(f"another 'results {action}' is writing into '{target}': wait for it to end, or "
                               "give another --out (nothing was written)")
        try:
            yield
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass


def remove_stale_temps_under(out: str, image_root: str, ours: Callable[[str], bool]) -> int:
    """Delete the temporary files a killed run left under ``out``: regular files named exactly as
    the atomic writes name them (``atomic.temp_target``) for an output ``ours`` accepts; how many.

    Why: a run killed while writing leaves ``.NAME.XXXXXXXX.tmp`` beside NAME, which a rerun
    never reuses. Nothing else is touched: not another name, a link, a folder, another command's
    outputs, nor anything in the images folder (walked past when ``out`` lies above it). Links to
    folders are not followed. Call it after the refusals: it is the run's first change.
    """
    from ssd.base.atomic import temp_target

    root, removed = os.path.realpath(image_root), 0
    for folder, dirs, files in os.walk(os.path.realpath(out)):
        dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(folder, d)) != root]
        for name in files:
            target, path = temp_target(name), os.path.join(folder, name)
            if target is not None and ours(target) and not os.path.islink(path) and os.path.isfile(path):
                try:
                    os.unlink(path)
                    removed += 1
                except OSError:
                    pass
    return removed


def make_folders(target: str, folders: Iterable[Tuple[str, ...]], made: set) -> None:
    """Create the output folders (in the caller's thread), each checked to stay inside ``target``.

    Why here: ``atomic.temp_beside`` sets the umask to 0 for a moment, so a folder made by another
    thread at that moment would be world-writable; made here, before the pool writes, none is.
    A link planted on the way that leads out of ``target`` is refused (``ResultsError``), before
    anything is made through it (checked again after: one planted meanwhile).
    """
    for parts in folders:
        if parts in made:
            continue
        path = os.path.join(target, *parts)
        _refuse_leading_out(target, path)       # before: through a link, folders would be made at its end
        os.makedirs(path, exist_ok=True)
        _refuse_leading_out(target, path)
        made.add(parts)


def _refuse_leading_out(target: str, path: str) -> None:
    if not is_inside(target, path):
        raise ResultsError(f"'{path}' leads out of the output folder through a symbolic link: write into a "
                           "new folder (stopped)")


class NotWritten(OSError):
    """An output that could not be written (its name too long for the disk, say), told apart from
    a photo that could not be read: the photo is fine, and a summary calling it unreadable misled."""


#: Write errors after which no output can be written: the run stops rather than decode a season for nothing.
_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def write_output(dest: str, data: bytes) -> None:
    """``atomic_write_bytes``; ``NotWritten`` when it fails, ``OutputError`` (stopping the run, what
    is written kept) when the disk is full or read-only."""
    try:
        atomic.atomic_write_bytes(dest, data)
    except OSError as err:
        why = err.strerror or str(err)
        if err.errno in _DISK_ERRORS:
            raise OutputError(f"'{dest}' could not be written: {why}; make room and run the same command again "
                              "(what is written is kept and skipped)") from None
        raise NotWritten(err.errno, why) from None


#: Told ``(photos done, photos to do, unreadable so far)`` as a run goes: a season's run takes hours.
OnProgress = Optional[Callable[[int, int, int], None]]


def succeeded(results: Iterable[Tuple[Photo, Any]], tally: Tally) -> Iterator[Tuple[Photo, Any]]:
    """The photos whose work succeeded, with its outcome; the others noted in ``tally`` (a write that
    failed, with its reason, or a photo that could not be read): draw and crops count them alike."""
    for photo, outcome in results:
        if isinstance(outcome, NotWritten):
            tally.note_unwritten(photo.entry["file"], outcome.strerror)
        elif isinstance(outcome, Exception):
            tally.note_unreadable(photo.entry["file"])
        else:
            yield photo, outcome


def in_batches(photos: Sequence[Photo], work: Callable[[Photo], Any], before: Callable[[Sequence[Photo]], None],
               workers: int = DEFAULT_WORKERS, progress: OnProgress = None) -> Iterator[Tuple[Photo, Any]]:
    """``(photo, work(photo))`` in order, ``workers`` photos at a time; ``before(batch)`` runs in this
    thread first (making folders); ``progress`` is told after each batch. ``ImageError`` and
    ``OSError`` of one photo come back as its outcome, never stopping the run."""
    def guarded(photo: Photo) -> Any:
        try:
            return work(photo)
        except (ImageError, OSError) as err:
            return err

    unreadable = 0
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for start in range(0, len(photos), _BATCH):
            batch = photos[start:start + _BATCH]
            before(batch)
            for photo, outcome in zip(batch, pool.map(guarded, batch)):
                unreadable += isinstance(outcome, Exception) and not isinstance(outcome, NotWritten)
                yield photo, outcome
            if progress is not None:
                progress(start + len(batch), len(photos), unreadable)


def upright_size(path: str) -> Tuple[int, int]:
    """A photo's ``(width, height)`` as detection saw it (EXIF-rotated), from its header alone.

    Why: a resumed crop run writes the CSV rows of crops already there without decoding the photo.
    ``ImageError`` for a file Pillow refuses (not an image, or a decompression bomb: its error is
    no ``OSError``, and stopped the whole run), so the photo is counted unreadable as when decoded."""
    from PIL import Image

    from ssd.data.decoding import PIL_ERRORS, SIDE_SWAPPING

    try:
        im = Image.open(path)
    except PIL_ERRORS as err:
        raise ImageError(f"'{path}' cannot be read as an image: {err}") from None
    with im:
        try:
            swapped = im.getexif().get(274, 1) in SIDE_SWAPPING
        except Exception:
            swapped = False
        return (im.height, im.width) if swapped else im.size
