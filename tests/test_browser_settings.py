"""In Chromium, a student's Train settings survive a look at another page before Start.

AppTest sends every widget's value at once, so it cannot see what a browser does with a form: the
values typed into an ``st.form`` stay in the browser until its submit button is pressed, and a page
switch threw them away (epochs 1 came back as 20) although every field passes persist_state."""
from __future__ import annotations

import os

import pytest

from scripts.chromium_app import CHROMIUM, app_server, laptop_page, settle

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent (install Debian's chromium: apt-get install chromium)")


def test_train_settings_survive_a_visit_to_the_anchors_page(monkeypatch, tmp_path):
    for name in ("models", "data"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    typed = {"Training images": "40", "Validation images": "8",       # the synthetic set to make
             "Epochs": "1", "Batch size": "8", "Model name (folder in models/)": "my-first-ssd"}
    with app_server(log_path=str(tmp_path / "streamlit.log")) as srv, laptop_page(srv.url + "/train") as page:
        settle(page, 90_000)
        for label, value in typed.items():
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Tab")
            settle(page, 90_000)
        page.get_by_role("link", name="Anchors").first.click()
        settle(page, 90_000)
        page.get_by_role("link", name="Train").first.click()
        settle(page, 90_000)
        page.get_by_label("Epochs", exact=True).wait_for()
        assert {label: page.get_by_label(label, exact=True).input_value() for label in typed} == typed
        assert page.locator('[data-testid="stException"]').count() == 0
