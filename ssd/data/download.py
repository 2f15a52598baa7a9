"""Resumable, checksummed, atomic downloads, and the dataset fetchers built on them.

Why it is built this way:

* **``dest + '.part'`` then ``os.replace``**: a file under its final name is always complete,
  so "the file exists" can be trusted by every other module, and a killed download leaves only
  a ``.part`` file behind.
* **Resume with ``Range: bytes=N-``**: ENA24's images zip is 3.6 GB; a dropped connection at
  90 % must not restart from zero. A server that ignores ``Range`` answers 200 with the whole
  file, and we then start the part file over instead of appending a second copy to it.
* **SHA-1 when known**: the Pikachu and banana hashes come from the MXNet/d2l loaders. A mismatch
  deletes the part file (resuming a corrupt prefix would never converge) and names both hashes.
* **Every failure is a** :class:`~ssd.base.errors.DownloadError` that says what failed *and* where to
  put the file by hand (URL and exact destination path): the Pikachu hosting may be gone, and
  many machines that train models have no internet access.
* ``Accept-Encoding: identity`` is sent so byte counts, ``Range`` offsets and hashes all refer
  to the file itself, not to a transparently gzip-decoded stream.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from typing import Any, Callable, List, Optional

import requests

from ssd.data.staging import in_progress
from ssd.base.errors import DownloadError
from ssd.base.atomic import atomic_write_json

Progress = Callable[[int, Optional[int]], None]

USER_AGENT = "ssd-studio-downloader/1.0 (+python-requests)"

# ---- Dataset facts (see shared REFERENCE.md). Module-level so tests and mirrors can override.
PIKACHU_BASE_URL = "https://apache-mxnet.s3-accelerate.amazonaws.com/gluon/dataset/pikachu/"
#: file name -> sha1, as published with the MXNet Gluon tutorial's downloader.
PIKACHU_FILES = {
    "train.rec": "e6bcb6ffba1ac04ff8a9b1115e650af56ee969c8",
    "train.idx": "dcf7318b2602c06428b9988470c731621716c393",
    "val.rec": "d6c33f799b4d058e82f2cb5bd9a976f69d72d520",
}
PIKACHU_TIMEOUT_S = 8
PIKACHU_GONE = ("The official Pikachu files sit in MXNet's S3 bucket, which has been unreachable since February "
                "2024 (MXNet was retired in September 2023). Make a synthetic Pikachu set offline with: python -m "
                "ssd data synth --out DIR, or download d2l's banana set, its successor, with: python -m ssd data "
                "banana --out DIR")
BANANA_BASE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
BANANA_ZIP = "banana-detection.zip"
BANANA_SHA1 = "5de26c8fce5ccdea9f91267273464dc968d20d72"
ENA24_BASE_URL = "https://storage.googleapis.com/public-datasets-lila/ena24/"
ENA24_METADATA = "ena24.json"
ENA24_ZIP = "ena24.zip"
#: LILA publishes no checksums for ENA24; integrity is checked by parsing the JSON and by the
#: CRC-32 of every zip member during extraction instead.
ENA24_SHA1: Optional[str] = None

_CHUNK_HASH = 1 << 20


# --------------------------------------------------------------------------------------------
# Generic download
# --------------------------------------------------------------------------------------------

def file_digest(path: str, algo: str = "sha1", chunk_size: int = _CHUNK_HASH) -> str:
    """Hex digest (``sha1`` or ``sha256``) of a file, read in chunks (files can be gigabytes)."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def sha1_of_file(path: str, chunk_size: int = _CHUNK_HASH) -> str:
    """Hex SHA-1 of a file, read in chunks (dataset files can be gigabytes)."""
    return file_digest(path, "sha1", chunk_size)


def _by_hand(url: str, dest: str, check: Optional[str]) -> str:
    check = f" (its {check})" if check else ""
    return (f"To install it by hand, download {url} on a machine with internet access and save it "
            f"as {os.path.abspath(dest)}{check}, then run the same command again.")


def _fail(url: str, dest: str, sha1: Optional[str], what: str, part: Optional[str] = None) -> DownloadError:
    kept = ""
    if part and os.path.isfile(part) and os.path.getsize(part) > 0:
        kept = (f" The {os.path.getsize(part)} bytes received so far are kept in "
                f"{os.path.abspath(part)}; running again resumes from there.")
    return DownloadError(f"Download of {url} failed: {what}.{kept} {_by_hand(url, dest, sha1)}")


def _describe_request_error(err: requests.RequestException, url: str, timeout: float) -> str:
    """Turn a requests exception into a phrase a person understands (offline? DNS? refused?)."""
    host = requests.utils.urlparse(url).netloc or url
    text = str(err)
    low = text.lower()
    if isinstance(err, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                        requests.exceptions.InvalidURL)):
        return f"the address is not a valid http(s) URL ({text})"
    if isinstance(err, requests.exceptions.SSLError):
        return f"the secure (TLS) connection to {host} failed ({text[:200]})"
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return f"connecting to {host} timed out after {timeout:g} s (offline, or a firewall?)"
    if isinstance(err, requests.exceptions.ReadTimeout):
        return f"{host} stopped sending data for {timeout:g} s"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return f"the connection to {host} broke during the transfer"
    if isinstance(err, requests.exceptions.ConnectionError):
        if any(s in low for s in ("name or service not known", "nodename nor servname",
                                  "temporary failure in name resolution", "getaddrinfo failed",
                                  "nameresolutionerror", "no address associated")):
            return f"the host name {host} could not be resolved (this machine looks offline, or the host is gone)"
        if "connection refused" in low or "errno 111" in low:
            return f"{host} refused the connection (nothing is serving there)"
        if "network is unreachable" in low or "no route to host" in low:
            return f"{host} is unreachable (this machine looks offline)"
        if "remotedisconnected" in low or "connection aborted" in low or "connection reset" in low:
            return f"{host} closed the connection"
        return f"could not connect to {host} (offline?)"
    return f"{type(err).__name__}: {text[:200]}"


def _http_error(status: int, reason: str, url: str) -> str:
    if status == 404:
        return "the server says the file does not exist (HTTP 404 Not Found); the dataset may have moved"
    if status == 403:
        return ("access was denied (HTTP 403 Forbidden); on S3 this usually means the file was "
                "removed or the hosting withdrawn")
    if status == 401:
        return "the server wants a login (HTTP 401 Unauthorized)"
    if status == 410:
        return "the file was removed from the server (HTTP 410 Gone)"
    if 500 <= status < 600:
        return f"the server had an error (HTTP {status} {reason}); try again later"
    return f"the server answered HTTP {status} {reason}"


def _tqdm_progress(desc: str) -> tuple[Optional[Progress], Callable[[], None]]:
    """A tqdm bar when a person is watching stderr, else nothing (logs stay readable)."""
    try:
        isatty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        isatty = False
    if not isatty:
        return None, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the app's requirements
        return None, lambda: None
    bar: Any = None
    last = [0]

    def update(done: int, total: Optional[int]) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=desc, leave=True)
            last[0] = done
            return
        if done < last[0]:  # the server restarted us from zero
            bar.reset(total=total)
            last[0] = 0
        bar.update(done - last[0])
        last[0] = done

    def close() -> None:
        if bar is not None:
            bar.close()

    return update, close


class _Restart(Exception):
    """Internal: the resume offset was refused; start the part file over."""


def download(url: str, dest: str, *, sha1: Optional[str] = None, progress: Optional[Progress] = None,
             resume: bool = True, timeout: float = 30, chunk_size: int = 1 << 20,
             sha256: Optional[str] = None) -> str:
    """Download ``url`` to ``dest`` and return ``dest``.

    * Skips the transfer when ``dest`` exists and matches ``sha1`` (or exists and no ``sha1`` is
      given: a file under its final name is complete by construction).
    * Streams into ``dest + '.part'``; with ``resume`` an existing part file is continued with
      an HTTP ``Range`` request (appended on 206, started over on 200).
    * Verifies ``sha1`` (or ``sha256``, which wins) when given, then moves the part file into
      place with ``os.replace``.
    * ``progress(done_bytes, total_bytes_or_None)`` is called as data arrives; by default a
      tqdm bar is shown when stderr is a terminal.

    Raises :class:`DownloadError` for anything that goes wrong, naming the URL and where to
    put the file by hand.
    """
    dest = os.fspath(dest)
    algo, label, want = ("sha256", "SHA-256", sha256) if sha256 else ("sha1", "SHA-1", sha1)
    want = want.lower().strip() if want else None
    sha1 = f"{label} must be {want}" if want else None   # what the messages say about the hash
    if os.path.isfile(dest):
        if want is None:
            return dest
        try:
            if file_digest(dest, algo) == want:
                return dest
        except OSError as err:
            raise _fail(url, dest, sha1, f"the existing {dest} could not be read ({err})") from None
        # Wrong content under the final name (edited, or a different version): fetch again;
        # the atomic replace at the end swaps it only once the new copy is verified.
    part = dest + ".part"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    except OSError as err:
        raise _fail(url, dest, sha1, f"the folder for {dest} could not be created ({err})") from None
    if not resume and os.path.exists(part):
        _remove(part)

    close: Callable[[], None] = lambda: None
    if progress is None:
        progress, close = _tqdm_progress(os.path.basename(dest))
    try:
        try:
            digest = _transfer(url, dest, part, sha1, progress, timeout, chunk_size, resume, algo)
        except _Restart:
            _remove(part)
            digest = _transfer(url, dest, part, sha1, progress, timeout, chunk_size, False, algo)
    finally:
        close()

    if want is not None and digest != want:
        _remove(part)
        raise DownloadError(
            f"Download of {url} failed its checksum: expected {label} {want}, got {digest}. The "
            "corrupt copy was deleted; run again, and if it keeps failing the file on the server "
            f"has changed. {_by_hand(url, dest, sha1)}")
    try:
        os.replace(part, dest)
    except OSError as err:
        raise _fail(url, dest, sha1, f"the finished file could not be moved into place ({err})") from None
    return dest


def _transfer(url: str, dest: str, part: str, sha1: Optional[str], progress: Optional[Progress],
              timeout: float, chunk_size: int, resume: bool, algo: str = "sha1") -> str:
    """One HTTP request that fills ``part``; returns the ``algo`` digest of the whole part file."""
    offset = os.path.getsize(part) if resume and os.path.isfile(part) else 0
    headers = {"Accept-Encoding": "identity", "User-Agent": USER_AGENT}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    hasher = hashlib.new(algo)
    done = 0
    total: Optional[int] = None
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
            status = resp.status_code
            if offset > 0 and status == 416:
                raise _Restart()  # our part file is as long as (or longer than) the file
            if status == 206 and offset > 0:
                match = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != offset:
                    raise _Restart()  # a range we did not ask for: do not stitch it on
                total = int(match.group(3)) if match.group(3) != "*" else None
                mode = "ab"
                try:
                    with open(part, "rb") as fh:
                        for block in iter(lambda: fh.read(_CHUNK_HASH), b""):
                            hasher.update(block)
                except OSError as err:
                    raise _fail(url, dest, sha1, f"the partial file {part} could not be read ({err})") from None
                done = offset
            elif status == 200 or (status == 206 and offset == 0):
                mode = "wb"  # full body: start over even if we asked for a range
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            else:
                raise _fail(url, dest, sha1, _http_error(status, resp.reason or "", url), part)
            if progress is not None:
                progress(done, total)
            try:
                with open(part, mode) as fh:
                    for chunk in resp.iter_content(chunk_size=chunk_size):
                        if not chunk:
                            continue
                        fh.write(chunk)
                        hasher.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                    fh.flush()
                    os.fsync(fh.fileno())
            except requests.RequestException:
                raise  # requests' errors subclass OSError; they are network, not disk, trouble
            except OSError as err:
                raise _fail(url, dest, sha1, f"writing {part} failed ({err.strerror or err}); is the "
                            "disk full?", part) from None
    except requests.RequestException as err:
        raise _fail(url, dest, sha1, _describe_request_error(err, url, timeout), part) from None
    if total is not None and done != total:
        raise _fail(url, dest, sha1, f"the connection ended after {done} of {total} bytes", part)
    return hasher.hexdigest()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------------------------
# Safe zip extraction
# --------------------------------------------------------------------------------------------

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
    half-extracted); absolute paths, ``..`` components and symlinks are rejected. Files are
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
        plan: List[tuple[zipfile.ZipInfo, List[str]]] = []
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
        needed = sum(i.file_size for i, _ in plan if not i.is_dir())
        try:
            os.makedirs(dest_dir, exist_ok=True)
            free = shutil.disk_usage(dest_dir).free
        except OSError as err:
            raise DownloadError(f"cannot create {dest_dir} to extract {zip_path} ({err})") from None
        if needed > free:
            raise DownloadError(f"extracting {zip_path} needs {needed / 1e9:.2f} GB but only "
                                f"{free / 1e9:.2f} GB is free under {dest_dir}")
        staging = tempfile.mkdtemp(prefix=".extract-", dir=dest_dir)
        written: List[str] = []
        try:
            for info, parts in plan:
                target = os.path.join(staging, *parts)
                if os.path.commonpath([staging, os.path.abspath(target)]) != staging:
                    raise DownloadError(f"{zip_path} entry {info.filename!r} escapes the folder")
                if info.is_dir():
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK_HASH)
                written.append("/".join(parts))
            for rel in written:
                final = os.path.join(dest_dir, *rel.split("/"))
                if os.path.isdir(final):
                    raise DownloadError(f"cannot extract {rel} from {zip_path}: {final} is a folder")
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(os.path.join(staging, *rel.split("/")), final)
        except (zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise DownloadError(f"{zip_path} is damaged ({err}); delete it and run the command "
                                "again to download it afresh") from None
        except OSError as err:
            raise DownloadError(f"extracting {zip_path} into {dest_dir} failed ({err})") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return written


# --------------------------------------------------------------------------------------------
# Dataset fetchers
# --------------------------------------------------------------------------------------------

def _join(base_url: str, name: str) -> str:
    return base_url.rstrip("/") + "/" + name


def fetch_pikachu(out_dir: str, *, base_url: Optional[str] = None,
                  progress: Optional[Progress] = None) -> str:
    """Download the official Pikachu RecordIO set (train.rec, train.idx, val.rec) into ``out_dir``.

    Writes ``dataset.json`` (name and class list) so the folder is self-describing. Returns
    ``out_dir``. The MXNet S3 hosting may be gone; the error then names each file's destination,
    and ``python -m ssd data synth`` makes an offline stand-in.
    """
    base = base_url or PIKACHU_BASE_URL
    os.makedirs(out_dir, exist_ok=True)
    with in_progress(out_dir):   # until every file is in place, loaders and pickers refuse the folder
        for name, sha1 in PIKACHU_FILES.items():
            try:
                # the official bucket is gone: fail within seconds there, not after a long timeout
                download(_join(base, name), os.path.join(out_dir, name), sha1=sha1, progress=progress,
                         timeout=30 if base_url else PIKACHU_TIMEOUT_S)
            except DownloadError as err:
                raise DownloadError(
                    f"{err} The Pikachu dataset needs {', '.join(PIKACHU_FILES)} together in "
                    f"{os.path.abspath(out_dir)}. {PIKACHU_GONE}") from None
        atomic_write_json(os.path.join(out_dir, "dataset.json"), {"name": "pikachu", "classes": ["pikachu"]})
    return out_dir


def fetch_banana(out_dir: str, *, base_url: Optional[str] = None,
                 progress: Optional[Progress] = None) -> str:
    """Download d2l's banana-detection zip (SHA-1 checked) and extract it safely into ``out_dir``.

    The zip is kept (it is small, and keeping it makes a rerun skip the download). Returns the
    folder holding ``bananas_train``/``bananas_val`` (``out_dir/banana-detection`` for the
    official archive, else ``out_dir``).
    """
    url = _join(base_url or BANANA_BASE_URL, BANANA_ZIP)
    zip_path = os.path.join(out_dir, BANANA_ZIP)
    os.makedirs(out_dir, exist_ok=True)
    with in_progress(out_dir):
        download(url, zip_path, sha1=BANANA_SHA1, progress=progress)
        safe_extract(zip_path, out_dir)
    inner = os.path.join(out_dir, "banana-detection")
    return inner if os.path.isdir(inner) else out_dir


def fetch_ena24(out_dir: str, images: bool = True, *, base_url: Optional[str] = None,
                progress: Optional[Progress] = None, keep_zip: bool = False) -> str:
    """Download ENA24-detection from LILA: ``ena24.json`` and (with ``images``) the images.

    LILA publishes **no checksums** for these files, so integrity rests on the JSON parsing and
    on zip's per-member CRC-32 during extraction. Images are extracted into ``out_dir/images``
    (a single wrapping folder in the zip is dropped, so paths match the JSON's ``file_name``).
    The 3.6 GB zip is deleted after a successful extraction unless ``keep_zip``; a marker file
    ``.ena24.zip.extracted`` then makes a rerun skip both download and extraction. Returns
    ``out_dir``.
    """
    base = base_url or ENA24_BASE_URL
    os.makedirs(out_dir, exist_ok=True)
    with in_progress(out_dir):
        return _fetch_ena24(out_dir, images, base, progress, keep_zip)


def _fetch_ena24(out_dir: str, images: bool, base: str, progress: Optional[Progress], keep_zip: bool) -> str:
    """``fetch_ena24`` inside its in-progress marker."""
    meta_url = _join(base, ENA24_METADATA)
    meta = os.path.join(out_dir, ENA24_METADATA)
    download(meta_url, meta, sha1=ENA24_SHA1, progress=progress)
    try:
        with open(meta, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
        if not isinstance(doc, dict) or "images" not in doc or "annotations" not in doc:
            raise ValueError("it has no 'images'/'annotations' lists (not COCO Camera Traps)")
    except (ValueError, OSError) as err:
        _remove(meta)
        raise DownloadError(f"the downloaded {meta} is not valid COCO Camera Traps JSON ({err}); it "
                            f"was deleted. {_by_hand(meta_url, meta, None)}") from None
    if not images:
        return out_dir
    marker = os.path.join(out_dir, "." + ENA24_ZIP + ".extracted")
    images_dir = os.path.join(out_dir, "images")
    if os.path.isfile(marker) and os.path.isdir(images_dir):
        return out_dir
    zip_url = _join(base, ENA24_ZIP)
    zip_path = os.path.join(out_dir, ENA24_ZIP)
    download(zip_url, zip_path, sha1=ENA24_SHA1, progress=progress)
    files = safe_extract(zip_path, images_dir, strip_top=True)
    atomic_write_json(marker, {"files": len(files), "zip_bytes": os.path.getsize(zip_path)})
    if not keep_zip:
        _remove(zip_path)
    return out_dir


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
