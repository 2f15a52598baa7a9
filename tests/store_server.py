"""GluonCV's model store served from 127.0.0.1 for the download tests (no other network, ever).

``ModelStoreServer({"/gluon/models/NAME-SHORTSHA1.zip": bytes})`` answers GETs (with ``Range``
resumes) and records every request; ``store_zip`` packs a ``.params`` as the store does. A file can
carry validators (``etags``, ``last_modified``), which ``If-Range`` is checked against as a real
server does (a mismatch sends the whole file, 200); ``cut_after`` hangs up after that many bytes.
"""
from __future__ import annotations

import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ModelStoreServer:
    """GluonCV's model store on 127.0.0.1: ``/gluon/models/NAME-SHORTSHA1.zip``; counts requests."""

    def __init__(self, files):
        self.files, self.hits, self.ranges = files, [], []
        self.etags, self.last_modified = {}, {}     # path -> validator sent with the file
        self.if_ranges = []                         # the If-Range header of every ranged request
        self.cut_after = None                       # send only this many body bytes, then hang up
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                store.hits.append(self.path)
                data = store.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = self._start(store, data)
                if start is None:
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                for name, table in (("ETag", store.etags), ("Last-Modified", store.last_modified)):
                    if self.path in table:
                        self.send_header(name, table[self.path])
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:][:store.cut_after])

            def _start(self, store, data):
                """Where the body starts (0: the whole file), or None once a 416 was sent."""
                rng = self.headers.get("Range", "")
                if not (rng.startswith("bytes=") and rng.endswith("-")):
                    return 0
                start = int(rng[len("bytes="):-1])
                store.ranges.append(start)
                if_range = self.headers.get("If-Range")
                store.if_ranges.append(if_range)
                if if_range is not None and if_range not in (store.etags.get(self.path),
                                                             store.last_modified.get(self.path)):
                    return 0   # the file changed since the client's copy began: send all of it
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return start

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def store_zip(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:   # stored: 57 MB of floats, no time to deflate
        zf.writestr(member, data)
    return buf.getvalue()
