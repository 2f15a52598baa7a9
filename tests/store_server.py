"""GluonCV's model store served from 127.0.0.1 for the download tests (no other network, ever).

``ModelStoreServer({"/gluon/models/NAME-SHORTSHA1.zip": bytes})`` answers GETs (with ``Range``
resumes) and records every request; ``store_zip`` packs a ``.params`` as the store does.
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
                start = 0
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[len("bytes="):-1])
                    store.ranges.append(start)
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

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
