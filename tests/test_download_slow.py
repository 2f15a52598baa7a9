"""ssd.data.download against slow servers on 127.0.0.1: a stall mid-file, two downloads of one file at once."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator

import pytest

from ssd.base.errors import DownloadError
from ssd.data import download as dl


def _payload(n: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


# ------------------------------------------------------------------ slow servers: stalls, two downloads at once

class _Trickle(BaseHTTPRequestHandler):
    """Sends ``body`` in 10 kB pieces 30 ms apart; ``/stall`` stops after the first piece."""
    protocol_version = "HTTP/1.1"
    body = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        for i in range(0, len(self.body), 10_000):
            self.wfile.write(self.body[i:i + 10_000])
            self.wfile.flush()
            if self.path == "/stall":
                time.sleep(3)
                return
            time.sleep(0.03)


@pytest.fixture()
def trickle() -> Iterator[str]:
    _Trickle.body = _payload(200_000)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_two_downloads_of_one_file_at_once_both_succeed(trickle: str, tmp_path: Path) -> None:
    """Two pulls of the same file (two terminals): the second waits and finds it done, no error."""
    dest = tmp_path / "w.bin"
    results: Dict[str, object] = {}

    def pull(key: str) -> None:
        try:
            results[key] = dl.download(f"{trickle}/f", str(dest), sha1=_sha1(_Trickle.body), progress=lambda *a: None)
        except DownloadError as err:
            results[key] = err

    first = threading.Thread(target=pull, args=("a",))
    second = threading.Thread(target=pull, args=("b",))
    first.start()
    time.sleep(0.15)   # the first is mid-transfer
    second.start()
    first.join(30)
    second.join(30)
    assert results == {"a": str(dest), "b": str(dest)}
    assert dest.read_bytes() == _Trickle.body
    assert sorted(os.listdir(tmp_path)) == ["w.bin"]   # no .part or .lock left behind


def test_a_server_that_stalls_mid_file_is_not_called_offline(trickle: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as err:
        dl.download(f"{trickle}/stall", str(tmp_path / "w.bin"), timeout=0.5, progress=lambda *a: None)
    msg = str(err.value)
    assert "stopped sending data for 0.5 s" in msg and "offline" not in msg
    assert not (tmp_path / "w.bin").exists()
