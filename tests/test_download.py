"""ssd.data.download against a real HTTP server on 127.0.0.1 (no other network, ever)."""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from ssd.cli import data as cli_data
from ssd.data import archive, fetchers
from ssd.data import download as dl
from ssd.base.errors import DownloadError


class FileServer:
    """Serves in-memory files with Range support; can be told to fail, ignore Range, or cut off."""

    def __init__(self) -> None:
        self.files: Dict[str, bytes] = {}
        self.fail: Dict[str, int] = {}          # path -> HTTP status to answer instead
        self.ignore_range = False
        self.cut_after: Optional[int] = None     # send only this many body bytes, then hang up
        self.requests: List[Tuple[str, Optional[str]]] = []   # (path, Range header)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                with server._lock:
                    server.requests.append((path, rng))
                if path in server.fail:
                    self.send_error(server.fail[path])
                    return
                data = server.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not server.ignore_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if server.cut_after is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: server.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def ranges(self, path: str) -> List[Optional[str]]:
        return [r for p, r in self.requests if p == path]


@pytest.fixture()
def server() -> Iterator[FileServer]:
    srv = FileServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


def _payload(n: int = 300_000) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


# ------------------------------------------------------------------ download()

def test_download_with_matching_checksum_and_progress(server: FileServer, tmp_path: Path) -> None:
    data = _payload()
    server.files["/f.bin"] = data
    seen: List[Tuple[int, Optional[int]]] = []
    dest = tmp_path / "sub" / "f.bin"
    out = dl.download(f"{server.url}/f.bin", str(dest), sha1=_sha1(data),
                      progress=lambda d, t: seen.append((d, t)), chunk_size=65536)
    assert out == str(dest)
    assert dest.read_bytes() == data
    assert not Path(str(dest) + ".part").exists()
    assert seen[-1] == (len(data), len(data))
    assert len(seen) > 2


def test_existing_file_with_right_hash_is_not_downloaded_again(server: FileServer, tmp_path: Path) -> None:
    data = _payload(1000)
    dest = tmp_path / "f.bin"
    dest.write_bytes(data)
    dl.download(f"{server.url}/f.bin", str(dest), sha1=_sha1(data))
    assert server.requests == []
    # A stale copy (wrong hash) is replaced once the new one is verified.
    server.files["/f.bin"] = data[::-1]
    dl.download(f"{server.url}/f.bin", str(dest), sha1=_sha1(data[::-1]))
    assert dest.read_bytes() == data[::-1]


def test_checksum_mismatch(server: FileServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = _payload()
    dest = tmp_path / "f.bin"
    wrong = "0" * 40
    with pytest.raises(DownloadError) as info:
        dl.download(f"{server.url}/f.bin", str(dest), sha1=wrong)
    msg = str(info.value)
    assert wrong in msg and _sha1(_payload()) in msg
    assert str(dest.resolve()) in msg
    assert not dest.exists()
    assert not Path(str(dest) + ".part").exists()
    assert list(tmp_path.iterdir()) == []


def test_resume_from_partial_file(server: FileServer, tmp_path: Path) -> None:
    data = _payload()
    server.files["/big.zip"] = data
    dest = tmp_path / "big.zip"
    half = len(data) // 2
    Path(str(dest) + ".part").write_bytes(data[:half])
    seen: List[Tuple[int, Optional[int]]] = []
    dl.download(f"{server.url}/big.zip", str(dest), sha1=_sha1(data), progress=lambda d, t: seen.append((d, t)))
    assert server.ranges("/big.zip") == [f"bytes={half}-"]
    assert _sha1(dest.read_bytes()) == _sha1(data)
    assert seen[0] == (half, len(data))
    assert not Path(str(dest) + ".part").exists()


def test_server_ignoring_range_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    data = _payload()
    server.files["/big.zip"] = data
    server.ignore_range = True
    dest = tmp_path / "big.zip"
    Path(str(dest) + ".part").write_bytes(data[:1000])
    dl.download(f"{server.url}/big.zip", str(dest), sha1=_sha1(data))
    assert server.ranges("/big.zip") == ["bytes=1000-"]  # asked, got 200, started over
    assert dest.read_bytes() == data  # not 1000 bytes + a second full copy


def test_part_longer_than_file_starts_over(server: FileServer, tmp_path: Path) -> None:
    data = _payload(5000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    Path(str(dest) + ".part").write_bytes(b"x" * 6000)
    dl.download(f"{server.url}/f.bin", str(dest), sha1=_sha1(data))
    assert server.ranges("/f.bin") == ["bytes=6000-", None]  # 416, then a clean full request
    assert dest.read_bytes() == data


def test_resume_false_ignores_part(server: FileServer, tmp_path: Path) -> None:
    data = _payload(5000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    Path(str(dest) + ".part").write_bytes(b"garbage")
    dl.download(f"{server.url}/f.bin", str(dest), resume=False)
    assert server.ranges("/f.bin") == [None]
    assert dest.read_bytes() == data


def test_dropped_connection_keeps_part_and_next_run_resumes(server: FileServer, tmp_path: Path) -> None:
    data = _payload()
    server.files["/big.zip"] = data
    server.cut_after = 100_000
    dest = tmp_path / "big.zip"
    with pytest.raises(DownloadError) as info:
        # Small chunks: what arrived before the hang-up is on disk (at most one chunk is lost).
        dl.download(f"{server.url}/big.zip", str(dest), sha1=_sha1(data), timeout=5, chunk_size=16384)
    assert "broke during the transfer" in str(info.value)
    assert "resumes" in str(info.value)
    part = Path(str(dest) + ".part")
    assert part.exists() and 0 < part.stat().st_size < len(data)
    kept = part.stat().st_size
    assert not dest.exists()
    server.cut_after = None
    dl.download(f"{server.url}/big.zip", str(dest), sha1=_sha1(data))
    assert server.ranges("/big.zip")[-1] == f"bytes={kept}-"
    assert dest.read_bytes() == data


def test_unreachable_host_says_where_to_put_the_file(tmp_path: Path, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/pikachu/train.rec"
    dest = tmp_path / "data" / "train.rec"
    with pytest.raises(DownloadError) as info:
        dl.download(url, str(dest), sha1="a" * 40, timeout=5)
    msg = str(info.value)
    assert url in msg
    assert str(dest.resolve()) in msg
    assert "refused" in msg
    assert "a" * 40 in msg  # the hash the hand-placed file must have
    assert "Traceback" not in msg and not dest.exists()


def test_invalid_url_is_download_error(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="not a valid"):
        dl.download("notaurl", str(tmp_path / "x"))


@pytest.mark.parametrize("status,phrase", [(404, "does not exist"), (403, "denied"), (500, "server had an error")])
def test_http_errors(server: FileServer, tmp_path: Path, status: int, phrase: str) -> None:
    server.files["/f.bin"] = b"x"
    if status == 404:
        url = f"{server.url}/missing.bin"  # the server genuinely has no such file
    else:
        server.fail["/f.bin"] = status
        url = f"{server.url}/f.bin"
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError) as info:
        dl.download(url, str(dest))
    msg = str(info.value)
    assert f"HTTP {status}" in msg and phrase in msg
    assert str(dest.resolve()) in msg
    assert not dest.exists()


# ------------------------------------------------------------------ fetchers

def test_fetch_pikachu(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"train.rec": b"rec-train" * 100, "train.idx": b"0\t0\n1\t900\n", "val.rec": b"rec-val" * 50}
    for name, data in files.items():
        server.files[f"/pikachu/{name}"] = data
    monkeypatch.setattr(fetchers, "PIKACHU_FILES", {n: _sha1(d) for n, d in files.items()})
    out = tmp_path / "pikachu"
    assert fetchers.fetch_pikachu(str(out), base_url=f"{server.url}/pikachu/") == str(out)
    for name, data in files.items():
        assert (out / name).read_bytes() == data
    assert json.loads((out / "dataset.json").read_text()) == {"name": "pikachu", "classes": ["pikachu"]}
    # Second run: everything verified locally, nothing fetched.
    n = len(server.requests)
    fetchers.fetch_pikachu(str(out), base_url=f"{server.url}/pikachu")
    assert len(server.requests) == n


def test_fetch_pikachu_offline_points_to_synth(tmp_path: Path, closed_port: int) -> None:
    with pytest.raises(DownloadError) as info:
        fetchers.fetch_pikachu(str(tmp_path / "p"), base_url=f"http://127.0.0.1:{closed_port}/")
    msg = str(info.value)
    assert "train.rec" in msg and "data synth" in msg and "data banana" in msg
    assert "unreachable since February 2024" in msg
    assert str((tmp_path / "p" / "train.rec").resolve()) in msg


def test_fetch_pikachu_from_the_official_bucket_fails_fast(tmp_path: Path, monkeypatch, closed_port: int) -> None:
    """No base URL: the official bucket, with a short timeout (the host is gone, no one should wait)."""
    seen = {}

    def fake(url, dest, **kw):
        seen.update(kw, url=url)
        raise DownloadError("Download of x failed: offline.")

    monkeypatch.setattr(fetchers, "download", fake)
    with pytest.raises(DownloadError, match="data synth"):
        fetchers.fetch_pikachu(str(tmp_path / "p"))
    assert seen["url"].startswith(fetchers.PIKACHU_BASE_URL) and seen["timeout"] <= 10


def test_real_pikachu_hashes_are_the_published_ones() -> None:
    assert fetchers.PIKACHU_FILES["train.rec"] == "e6bcb6ffba1ac04ff8a9b1115e650af56ee969c8"
    assert fetchers.PIKACHU_FILES["train.idx"] == "dcf7318b2602c06428b9988470c731621716c393"
    assert fetchers.PIKACHU_FILES["val.rec"] == "d6c33f799b4d058e82f2cb5bd9a976f69d72d520"
    assert fetchers.BANANA_SHA1 == "5de26c8fce5ccdea9f91267273464dc968d20d72"


def _zip(members: Dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_fetch_banana_extracts(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _zip({"banana-detection/bananas_train/label.csv": b"img_name,label,xmin,ymin,xmax,ymax\n",
                 "banana-detection/bananas_train/images/0.png": b"png"})
    server.files["/d2l/banana-detection.zip"] = blob
    monkeypatch.setattr(fetchers, "BANANA_SHA1", _sha1(blob))
    out = tmp_path / "banana"
    root = fetchers.fetch_banana(str(out), base_url=f"{server.url}/d2l")
    assert root == str(out / "banana-detection")
    assert (out / "banana-detection" / "bananas_train" / "label.csv").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".extract-")]


@pytest.mark.parametrize("evil", ["../evil.txt", "banana-detection/../../evil.txt", "/tmp/evil-abs.txt",
                                  "..\\evil.txt", "C:/evil.txt"])
def test_fetch_banana_rejects_path_traversal(server: FileServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, evil: str) -> None:
    blob = _zip({"banana-detection/ok.txt": b"ok", evil: b"pwned"})
    server.files["/banana-detection.zip"] = blob
    monkeypatch.setattr(fetchers, "BANANA_SHA1", _sha1(blob))
    out = tmp_path / "inner" / "banana"
    with pytest.raises(DownloadError, match="refusing to extract"):
        fetchers.fetch_banana(str(out), base_url=server.url)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "inner" / "evil.txt").exists()
    assert not Path("/tmp/evil-abs.txt").exists()
    assert not (out / "banana-detection" / "ok.txt").exists()  # refused before writing anything


def test_fetch_banana_checksum_mismatch(server: FileServer, tmp_path: Path) -> None:
    server.files["/banana-detection.zip"] = _zip({"a.txt": b"a"})
    with pytest.raises(DownloadError, match=fetchers.BANANA_SHA1):
        fetchers.fetch_banana(str(tmp_path / "b"), base_url=server.url)
    assert not (tmp_path / "b" / "banana-detection.zip").exists()


def _ena24_meta() -> bytes:
    return json.dumps({"images": [{"id": "1", "file_name": "1.jpg", "width": 4, "height": 4}],
                       "annotations": [], "categories": [{"id": 0, "name": "Bird"}]}).encode()


def test_fetch_ena24(server: FileServer, tmp_path: Path) -> None:
    server.files["/lila/ena24/ena24.json"] = _ena24_meta()
    server.files["/lila/ena24/ena24.zip"] = _zip({"images/1.jpg": b"jpeg!", "images/2.jpg": b"jpeg2"})
    out = tmp_path / "ena24"
    base = f"{server.url}/lila/ena24/"
    assert fetchers.fetch_ena24(str(out), base_url=base) == str(out)
    assert (out / "ena24.json").exists()
    assert (out / "images" / "1.jpg").read_bytes() == b"jpeg!"  # wrapping images/ folder dropped
    assert not (out / "ena24.zip").exists()  # 3.6 GB zip removed after extraction
    n = len(server.requests)
    fetchers.fetch_ena24(str(out), base_url=base)  # rerun: json present, marker present -> no traffic
    assert len(server.requests) == n


def test_fetch_ena24_metadata_only_and_bad_json(server: FileServer, tmp_path: Path) -> None:
    server.files["/ena24.json"] = _ena24_meta()
    out = tmp_path / "e"
    fetchers.fetch_ena24(str(out), images=False, base_url=server.url)
    assert (out / "ena24.json").exists() and not (out / "images").exists()
    assert [p for p, _ in server.requests] == ["/ena24.json"]

    server.files["/ena24.json"] = b"<html>captive portal</html>"
    bad = tmp_path / "bad"
    with pytest.raises(DownloadError, match="not valid COCO Camera Traps JSON"):
        fetchers.fetch_ena24(str(bad), images=False, base_url=server.url)
    assert not (bad / "ena24.json").exists()


def test_damaged_zip_is_download_error(tmp_path: Path) -> None:
    blob = bytearray(_zip({"images/1.jpg": os.urandom(5000)}))
    blob[60:80] = b"\x00" * 20  # inside the compressed data: CRC or inflate fails
    path = tmp_path / "x.zip"
    path.write_bytes(bytes(blob))
    with pytest.raises(DownloadError, match="damaged|not a readable zip"):
        archive.safe_extract(str(path), str(tmp_path / "out"))
    path.write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="not a readable zip"):
        archive.safe_extract(str(path), str(tmp_path / "out"))


# ------------------------------------------------------------------ CLI

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssd")
    top = parser.add_subparsers(dest="cmd")
    data = top.add_parser("data").add_subparsers(dest="data_cmd")
    cli_data.register_downloads(data)
    return parser


def test_register_cli(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    args = parser.parse_args(["data", "ena24", "--out", str(tmp_path / "e"), "--metadata-only"])
    assert args.metadata_only and callable(args.func)
    assert parser.parse_args(["data", "banana", "--out", "x"]).func is not args.func

    files = {"train.rec": b"a", "train.idx": b"b", "val.rec": b"c"}
    for name, data in files.items():
        server.files[f"/{name}"] = data
    monkeypatch.setattr(fetchers, "PIKACHU_FILES", {n: _sha1(d) for n, d in files.items()})
    args = parser.parse_args(["data", "pikachu", "--out", str(tmp_path / "p"), "--base-url", server.url])
    assert args.func(args) == 0
    assert "ready" in capsys.readouterr().out

    server.files["/ena24.json"] = _ena24_meta()
    args = parser.parse_args(["data", "ena24", "--out", str(tmp_path / "e"), "--metadata-only",
                              "--base-url", server.url])
    assert args.func(args) == 0
    assert "no checksums" in capsys.readouterr().err

