"""Resumable, checksummed, atomic HTTP downloads (the dataset fetchers and model weights use them).

Why it is built this way:

* **``dest + '.part'`` then ``os.replace``**: a file under its final name is always complete,
  so "the file exists" can be trusted by every other module, and a killed download leaves only
  a ``.part`` file behind.
* **Resume with ``Range: bytes=N-``**: ENA24's images zip is 3.6 GB; a dropped connection at
  90 % must not restart from zero. A server that ignores ``Range`` answers 200 with the whole
  file, and we then start the part file over instead of appending a second copy to it.
* **``If-Range`` with the validator the part began with**: the ETag (or Last-Modified) of the
  response that started a part file is kept beside it (``.part.validator``, written atomically).
  A resume sends it, so a file that changed on the server between tries comes back whole (200)
  and the part starts over, instead of the new file's tail being spliced onto the old bytes.
* **A whole part answered 416** (a kill between the last byte and the rename) is finished in
  place when its size is the one the server reports and its checksum (or, without one, the
  validator) matches; anything else starts over.
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
import os
import re
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from ssd.base.errors import DownloadError
from ssd.data.part_file import (VALIDATOR_SUFFIX, drop_part, if_range, record_validators,
                                recorded_validators, remove_quietly)

if TYPE_CHECKING:
    import requests

Progress = Callable[[int, Optional[int]], None]

USER_AGENT = "ssd-studio-downloader/1.0 (+python-requests)"

#: Bytes read at a time when hashing or copying a file (dataset files can be gigabytes).
CHUNK = 1 << 20


def file_digest(path: str, algo: str = "sha1", chunk_size: int = CHUNK) -> str:
    """Hex digest (``sha1`` or ``sha256``) of a file, read in chunks (files can be gigabytes)."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def sha1_of_file(path: str, chunk_size: int = CHUNK) -> str:
    """Hex SHA-1 of a file, read in chunks (dataset files can be gigabytes)."""
    return file_digest(path, "sha1", chunk_size)


def by_hand(url: str, dest: str, check: Optional[str]) -> str:
    """``check``: what the messages say about the hash ("SHA-1 must be …"), or None."""
    check = f" (its {check})" if check else ""
    return (f"To install it by hand, download {url} on a machine with internet access and save it "
            f"as {os.path.abspath(dest)}{check}, then run the same command again.")


def _fail(url: str, dest: str, sha1: Optional[str], what: str, part: Optional[str] = None) -> DownloadError:
    kept = ""
    if part and os.path.isfile(part) and os.path.getsize(part) > 0:
        kept = (f" The {os.path.getsize(part)} bytes received so far are kept in "
                f"{os.path.abspath(part)}; running again resumes from there.")
    return DownloadError(f"Download of {url} failed: {what}.{kept} {by_hand(url, dest, sha1)}")


def _describe_request_error(err: "requests.RequestException", url: str, timeout: float) -> str:
    """Turn a requests exception into a phrase a person understands (offline? DNS? refused?)."""
    import requests

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
        if "read timed out" in low:   # a stall mid-body: requests wraps it as a ConnectionError
            return f"{host} stopped sending data for {timeout:g} s"
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
      an HTTP ``Range`` request, ``If-Range`` the validator it began with (appended on 206,
      started over on 200; a whole part answered 416 is finished when its checksum matches).
    * Verifies ``sha1`` (or ``sha256``, which wins), then moves the part file in with ``os.replace``.
    * ``progress(done_bytes, total_bytes_or_None)`` is called as data arrives; by default a
      tqdm bar is shown when stderr is a terminal.

    Raises :class:`DownloadError` for anything that goes wrong, naming the URL and where to
    put the file by hand.
    """
    dest = os.fspath(dest)
    algo, label, want = ("sha256", "SHA-256", sha256) if sha256 else ("sha1", "SHA-1", sha1)
    want = want.lower().strip() if want else None
    sha1 = f"{label} must be {want}" if want else None   # what the messages say about the hash
    if _already_there(url, dest, sha1, want, algo):
        return dest
    try:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    except OSError as err:
        raise _fail(url, dest, sha1, f"the folder for {dest} could not be created ({err})") from None
    with _exclusive(dest):   # a second download of the same file waits, then finds it done
        if _already_there(url, dest, sha1, want, algo):
            return dest
        _fetch_locked(url, dest, want, label, algo, sha1, progress, resume, timeout, chunk_size)
    return dest


def _already_there(url: str, dest: str, sha1: Optional[str], want: Optional[str], algo: str) -> bool:
    """True when ``dest`` is complete: it exists and (when a hash is known) has that hash. Wrong
    content under the final name (edited, another version) is fetched again; the atomic replace
    swaps it only once the new copy is verified."""
    if not os.path.isfile(dest):
        return False
    if want is None:
        return True
    try:
        return file_digest(dest, algo) == want
    except OSError as err:
        raise _fail(url, dest, sha1, f"the existing {dest} could not be read ({err})") from None


@contextmanager
def _exclusive(dest: str) -> Iterator[None]:
    """Hold an exclusive lock on ``dest + '.lock'`` while ``dest`` is fetched.

    Why: two pulls of the same model (two terminals, the app and the CLI) would otherwise write
    one ``.part`` file at once; one appends to what the other is writing, or finds it moved away.
    The lock file is removed afterwards; a waiter that got the lock on a removed file tries again.
    Where ``fcntl`` is missing (Windows), no lock is taken.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        yield
        return
    lock = dest + ".lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:   # a read-only folder: writing the part file will say so, clearly
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)   # the holder removed this lock file as we waited: take the new one
    try:
        yield
    finally:
        remove_quietly(lock)
        os.close(fd)


def _fetch_locked(url: str, dest: str, want: Optional[str], label: str, algo: str, sha1: Optional[str],
                  progress: Optional[Progress], resume: bool, timeout: float, chunk_size: int) -> None:
    """The transfer itself (resumed, restarted when the server refuses the range), checked and moved in."""
    part = dest + ".part"
    if not resume and os.path.exists(part):
        drop_part(part)
    close: Callable[[], None] = lambda: None
    if progress is None:
        progress, close = _tqdm_progress(os.path.basename(dest))
    try:
        try:
            digest = _transfer(url, dest, part, sha1, progress, timeout, chunk_size, resume, algo, want)
        except _Restart:
            drop_part(part)
            digest = _transfer(url, dest, part, sha1, progress, timeout, chunk_size, False, algo)
    finally:
        close()

    if want is not None and digest != want:
        drop_part(part)
        raise DownloadError(
            f"Download of {url} failed its checksum: expected {label} {want}, got {digest}. The "
            "corrupt copy was deleted; run again, and if it keeps failing the file on the server "
            f"has changed. {by_hand(url, dest, sha1)}")
    try:
        os.replace(part, dest)
    except OSError as err:
        raise _fail(url, dest, sha1, f"the finished file could not be moved into place ({err})") from None
    remove_quietly(part + VALIDATOR_SUFFIX)


def _hash_part(part: str, hasher: Any, url: str, dest: str, sha1: Optional[str]) -> None:
    """Feed the bytes already in ``part`` to ``hasher``: an appended download is checked whole."""
    try:
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                hasher.update(block)
    except OSError as err:
        raise _fail(url, dest, sha1, f"the partial file {part} could not be read ({err})") from None


def _transfer(url: str, dest: str, part: str, sha1: Optional[str], progress: Optional[Progress],
              timeout: float, chunk_size: int, resume: bool, algo: str = "sha1", want: Optional[str] = None) -> str:
    """One HTTP request that fills ``part``; returns the ``algo`` digest of the whole part file."""
    import requests   # here, not at the top: every command that builds the CLI imports this module

    offset = os.path.getsize(part) if resume and os.path.isfile(part) else 0
    headers = {"Accept-Encoding": "identity", "User-Agent": USER_AGENT}
    recorded = recorded_validators(part) if offset > 0 else {}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
        if if_range(recorded):
            headers["If-Range"] = if_range(recorded)
    hasher = hashlib.new(algo)
    done = 0
    total: Optional[int] = None
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
            status = resp.status_code
            if offset > 0 and status == 416:   # our part file is as long as (or longer than) the file
                return _whole_part(part, offset, resp.headers, algo, want, "If-Range" in headers, progress)
            if status == 206 and offset > 0:
                total, mode = _appended_total(resp.headers, offset, recorded), "ab"
                _hash_part(part, hasher, url, dest, sha1)
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
                    if mode == "wb":   # after the truncation: a kill never pairs old bytes with new validators
                        record_validators(part, resp.headers)
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


def _appended_total(headers: Any, offset: int, recorded: dict) -> Optional[int]:
    """The file's size from a 206 answer to a resume; ``_Restart`` for a range we did not ask for,
    or one of another file (its ETag is not the one the part began with): never stitch it on."""
    match = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != offset \
            or ("etag" in recorded and headers.get("ETag", recorded["etag"]) != recorded["etag"]):
        raise _Restart()
    return int(match.group(3)) if match.group(3) != "*" else None


def _whole_part(part: str, size: int, headers: Any, algo: str, want: Optional[str], validated: bool,
                progress: Optional[Progress]) -> str:
    """The digest of a part file the server says is complete (416, ``bytes */N`` with N its size).

    Why trusted: its checksum matches, or without one, ``If-Range`` was sent and the server still
    answered 416 (a changed file would have come back whole, 200). Else ``_Restart``.
    """
    match = re.fullmatch(r"bytes\s+\*/(\d+)", headers.get("Content-Range", "").strip())
    if not match or int(match.group(1)) != size or (want is None and not validated):
        raise _Restart()
    digest = file_digest(part, algo)
    if want is not None and digest != want:
        raise _Restart()
    if progress is not None:
        progress(size, size)
    return digest
