"""Resuming a ``.part`` file safely: ``If-Range`` keeps a changed file from being spliced onto the old
bytes, and a part that is already whole (answered 416) is finished without being fetched again."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from ssd.base.errors import DownloadError
from ssd.data import download as dl
from tests.store_server import ModelStoreServer

PATH = "/files/season.zip"
LAST_MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT"


@pytest.fixture()
def server() -> Iterator[ModelStoreServer]:
    srv = ModelStoreServer({})
    try:
        yield srv
    finally:
        srv.close()


def _payload(n: int, salt: int = 0) -> bytes:
    return bytes((i * 7 + i // 251 + salt) % 256 for i in range(n))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _serve(server: ModelStoreServer, data: bytes, validator: str, version: str) -> None:
    """Serve ``data`` at PATH with one validator of the kind ``validator`` naming ``version``."""
    server.files[PATH] = data
    server.etags.pop(PATH, None)
    server.last_modified.pop(PATH, None)
    if validator == "etag":
        server.etags[PATH] = f'"{version}"'
    else:
        server.last_modified[PATH] = LAST_MODIFIED.replace("2026", version)


def _interrupted(server: ModelStoreServer, dest: Path, data: bytes) -> int:
    """A first try that the server cuts off: returns how many bytes the ``.part`` kept."""
    server.cut_after = len(data) // 3
    with pytest.raises(DownloadError, match="resumes"):
        dl.download(server.url + PATH[1:], str(dest), sha1=_sha1(data), timeout=5, chunk_size=16384)
    server.cut_after = None
    kept = Path(str(dest) + ".part").stat().st_size
    assert 0 < kept < len(data)
    return kept


@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_a_resume_of_an_unchanged_file_asks_if_range_and_appends(server, tmp_path, validator) -> None:
    data = _payload(300_000)
    _serve(server, data, validator, "2026")
    dest = tmp_path / "season.zip"
    kept = _interrupted(server, dest, data)
    dl.download(server.url + PATH[1:], str(dest), sha1=_sha1(data))
    sent = server.etags.get(PATH) or server.last_modified.get(PATH)
    assert server.ranges == [kept] and server.if_ranges == [sent]   # only the rest was sent
    assert dest.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["season.zip"]   # no part, no validator file


@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_a_file_changed_on_the_server_is_fetched_whole_not_spliced(server, tmp_path, validator) -> None:
    """The old part's bytes and the new file's tail used to be stitched together (a checksum error
    at best, a corrupt file where no checksum is known); If-Range makes the server send it all."""
    old, new = _payload(300_000), _payload(300_000, salt=1)
    _serve(server, old, validator, "2026")
    dest = tmp_path / "season.zip"
    kept = _interrupted(server, dest, old)
    _serve(server, new, validator, "2027")
    dl.download(server.url + PATH[1:], str(dest), sha1=_sha1(new))
    assert server.ranges == [kept]
    assert server.if_ranges[0] in ('"2026"', LAST_MODIFIED)   # the validator the part began with
    assert dest.read_bytes() == new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["season.zip"]


def test_a_file_changed_twice_restarts_from_the_new_validator(server, tmp_path) -> None:
    """The restart records the new file's validator: the next resume asks for the new file's tail."""
    old, new = _payload(300_000), _payload(300_000, salt=1)
    _serve(server, old, "etag", "a")
    dest = tmp_path / "season.zip"
    _interrupted(server, dest, old)
    _serve(server, new, "etag", "b")
    kept = _interrupted(server, dest, new)       # restarted from zero, cut off again
    dl.download(server.url + PATH[1:], str(dest), sha1=_sha1(new))
    assert server.if_ranges[-1] == '"b"' and server.ranges[-1] == kept
    assert dest.read_bytes() == new


def test_a_complete_part_answered_416_is_finished_without_downloading_again(server, tmp_path) -> None:
    """A part that holds the whole file (a kill between the last byte and the rename) used to be
    deleted and fetched again from zero when the server said 416 Range Not Satisfiable."""
    data = _payload(200_000)
    _serve(server, data, "etag", "v1")
    dest = tmp_path / "season.zip"
    Path(str(dest) + ".part").write_bytes(data)
    dl.download(server.url + PATH[1:], str(dest), sha1=_sha1(data))
    assert server.hits == [PATH] and server.ranges == [len(data)]   # one request, no body
    assert dest.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["season.zip"]


def test_a_full_size_part_with_other_bytes_restarts_cleanly(server, tmp_path) -> None:
    data = _payload(200_000)
    _serve(server, data, "etag", "v1")
    dest = tmp_path / "season.zip"
    Path(str(dest) + ".part").write_bytes(_payload(200_000, salt=3))   # right size, wrong content
    dl.download(server.url + PATH[1:], str(dest), sha1=_sha1(data))
    assert server.ranges == [len(data)] and len(server.hits) == 2   # 416, then a clean full request
    assert dest.read_bytes() == data


def test_a_whole_part_without_checksum_or_validator_is_not_trusted(server, tmp_path) -> None:
    """With neither a checksum nor a validator the size alone proves nothing: fetch it again."""
    data = _payload(50_000)
    server.files[PATH] = data
    dest = tmp_path / "season.zip"
    Path(str(dest) + ".part").write_bytes(_payload(50_000, salt=5))
    dl.download(server.url + PATH[1:], str(dest))
    assert len(server.hits) == 2 and dest.read_bytes() == data
