"""In Chromium: a reload keeps the Anchors page's settings (they live in the address), writing the
address starts no other run, and the sidebar's navigation still works."""
from __future__ import annotations

import os

import pytest

from scripts.chromium_app import CHROMIUM, app_server, laptop_page, settle

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent (install Debian's chromium: apt-get install chromium)")

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
        assert size.input_value() == "320"                        # from the link
        assert "iou=" not in page.url                             # the invalid value is dropped, not shown
        size.fill("328")
        size.press("Tab")
        settle(page)
        assert "size=328" in page.url
        page.wait_for_timeout(1500)
        assert not page.evaluate(RUNNING), "writing the address started another run"
        page.reload()
        settle(page)
        assert page.get_by_label("Input size (px)", exact=True).input_value() == "328"
        page.get_by_role("link", name="Home").first.click()
        settle(page)
        assert "size=" not in page.url                            # the Anchors settings stay with their page
        page.get_by_role("link", name="Anchors").first.click()
        settle(page)
        assert page.get_by_label("Input size (px)", exact=True).input_value() == "328"
        assert "size=328" in page.url
        assert page.locator('[data-testid="stException"]').count() == 0
