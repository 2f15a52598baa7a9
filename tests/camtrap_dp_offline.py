"""Validate a Camtrap DP package with frictionless and no network: the profile's URLs are served
from the vendored copies (ssd/camtrap/schemas/camtrap-dp-1.0.2/sources.json maps URL → file); any
other URL fails, so a validation that needed the network would fail here, not pass silently."""
import io
import json
import os

import requests
from requests.adapters import BaseAdapter
from requests.models import Response

from ssd.camtrap.camtrap_dp import SCHEMA_DIR


class VendoredSchemas(BaseAdapter):
    """A requests transport answering only the vendored URLs; it records what was asked for."""

    def __init__(self) -> None:
        super().__init__()
        with open(os.path.join(SCHEMA_DIR, "sources.json"), encoding="utf-8") as fh:
            self.files = json.load(fh)
        self.served = []

    def send(self, request, **kwargs):
        url = request.url.split("#")[0]
        if url not in self.files:
            raise requests.ConnectionError(f"no network in tests: {url}")
        self.served.append(url)
        r = Response()
        r.url, r.request, r.status_code = request.url, request, 200
        with open(os.path.join(SCHEMA_DIR, self.files[url]), "rb") as fh:
            r.raw = io.BytesIO(fh.read())
        return r

    def close(self) -> None:
        pass


def validate_offline(descriptor_path: str):
    """(frictionless report, URLs served): the package validated against the vendored profile."""
    import frictionless

    adapter = VendoredSchemas()
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    with frictionless.system.use_context(http_session=session):
        report = frictionless.validate(descriptor_path)
    return report, adapter.served
