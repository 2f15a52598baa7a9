"""In Chromium: a reload keeps the Anchors page's settings (they live in the address), writing the
address starts no other run, and the sidebar's navigation still works."""
from __future__ import annotations

import os
import re

import pytest

from scripts.chromium_app import CHROMIUM, app_server, laptop_page, settle

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent (install Debian's chromium: apt-get install chromium)")

WAIT_MS = 30_000                 # how long a value may take to appear on a loaded 2-core machine
RUNNING = ("() => (document.querySelector('[data-testid=\"stStatusWidget\"]') || {innerText: ''})"
           ".innerText.includes('Running')")


def test_a_reload_keeps_the_anchors_settings_and_a_page_switch_still_works(monkeypatch, tmp_path):
    for name in ("models", "data"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    with app_server(log_path=str(tmp_path / "streamlit.log")) as srv, \
            laptop_page(srv.url + "/anchors?size=320&iou=abc") as page:
        settle(page)
        size = page.get_by_label("Input size (px)", exact=True)
        expect(size).to_have_value("320", timeout=WAIT_MS)         # from the link (a loaded machine's
        #                                                            first run may start after settle's first look)
        expect(page).not_to_have_url(re.compile("iou="), timeout=WAIT_MS)   # the invalid value is dropped
        size.fill("328")
        size.press("Tab")
        settle(page)
        expect(page).to_have_url(re.compile("size=328"), timeout=WAIT_MS)
        page.wait_for_timeout(1500)
        assert not page.evaluate(RUNNING), "writing the address started another run"
        page.reload()
        settle(page)
        expect(page.get_by_label("Input size (px)", exact=True)).to_have_value("328", timeout=WAIT_MS)
        page.get_by_role("link", name="Home").first.click()
        settle(page)
        expect(page).not_to_have_url(re.compile("size="), timeout=WAIT_MS)  # the settings stay with their page
        page.get_by_role("link", name="Anchors").first.click()
        settle(page)
        expect(page.get_by_label("Input size (px)", exact=True)).to_have_value("328", timeout=WAIT_MS)
        expect(page).to_have_url(re.compile("size=328"), timeout=WAIT_MS)
        assert page.locator('[data-testid="stException"]').count() == 0
