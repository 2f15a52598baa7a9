"""End to end in a real browser: ``streamlit run app.py`` on a free localhost port, driven by
Playwright with Debian's /usr/bin/chromium (no browser is downloaded). Opens every page, uploads
an image on Detect, moves the confidence slider, and saves a screenshot of each page under the
test's tmp_path (and under ``$SSD_SCREENSHOT_DIR`` when set, to keep them). The phone and desktop
layouts are ``tests/test_browser_layout.py``."""
from __future__ import annotations

import io
import os
import shutil

import pytest

from ssd.inference.detector import Detector

from scripts.chromium_app import CHROMIUM, CHROMIUM_ARGS, app_server, laptop_page, settle

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent (install Debian's chromium: apt-get install chromium)")


@pytest.fixture
def server(app_env, tmp_path):
    with app_server(log_path=str(tmp_path / "streamlit.log")) as srv:
        yield srv.url


def _settle(page, timeout_ms: int = 90_000) -> None:
    settle(page, timeout_ms)


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, \
        page.locator('[data-testid="stException"]').first.inner_text()


def _keep(*shots) -> None:
    """Copy screenshots to ``$SSD_SCREENSHOT_DIR`` when it is set (to look at them after the run)."""
    keep = os.environ.get("SSD_SCREENSHOT_DIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
        for s in shots:
            shutil.copy(s, os.path.join(keep, os.path.basename(str(s))))


def _png(index: int = 3) -> bytes:
    from PIL import Image

    from ssd.data.synthetic import render_example

    buf = io.BytesIO()
    Image.fromarray(render_example(0, index, "val")[0]).resize((640, 480)).save(buf, format="PNG")
    return buf.getvalue()


def test_pages_in_chromium(server, app_env, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = []

    def shot(page, name: str) -> None:
        # Streamlit scrolls inside its own container, so a full-page shot needs a tall viewport
        path = tmp_path / f"{name}.png"
        measure = ("() => Math.max(...[...document.querySelectorAll("
                   "'[data-testid=\"stMain\"], [data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight), 0)")
        for _ in range(3):     # images and figures load lazily: grow until the height settles
            height = int(min(max(page.evaluate(measure) + 80, 1000), 8000))
            if page.viewport_size["height"] >= height:
                break
            page.set_viewport_size({"width": 1400, "height": height})
            page.wait_for_timeout(800)
        page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size({"width": 1400, "height": 1000})
        shots.append(path)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(90_000)
            expect.set_options(timeout=90_000)   # expect's own 5 s default fails on a loaded 2-core machine

            def visit(path: str, *texts: str) -> None:
                """Open a page, wait for its landmarks and the end of its script run, check no exception."""
                page.goto(server + path)
                for text in texts:
                    expect(page.get_by_text(text)).to_be_visible()
                _settle(page)
                _no_exception(page)

            # A bookmark opened on a fresh server must get the app's navigation, not a file listing
            # (Streamlit's v1 multipage mode kicks in when a folder named pages/ exists).
            page.goto(server + "/detect")
            expect(page.get_by_text("Detections shown")).to_be_visible()
            nav = page.locator('[data-testid="stSidebarNav"]')
            expect(nav.get_by_text("Home", exact=True)).to_be_visible()
            expect(nav.get_by_text("shared", exact=True)).to_have_count(0)

            visit("", "How SSD sees an image", "Models available")
            shot(page, "home")

            visit("/detect", "Detections shown")
            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                files=[{"name": "photo.png", "mimeType": "image/png", "buffer": _png()}])
            expect(page.get_by_text("photo.png").first).to_be_visible()
            expect(page.get_by_text("1 of 1")).to_be_visible()
            _settle(page)
            shown = page.locator('[data-testid="stMetric"]').filter(has_text="Detections shown")
            count_before = int(shown.locator('[data-testid="stMetricValue"]').inner_text())
            slider = page.get_by_role("slider", name="Confidence threshold")
            before = float(slider.input_value())
            slider.focus()
            for _ in range(30):
                page.keyboard.press("ArrowLeft")
            _settle(page)
            after = float(page.get_by_role("slider", name="Confidence threshold").input_value())
            assert after < before
            # what the page must show, straight from the library: the same image, model and settings
            raw = Detector.load(app_env["model"]).detect(_png(), name="photo.png")
            assert count_before == len(raw.filter(before, max_detections=100))
            expected = len(raw.filter(after, max_detections=100))
            page.wait_for_function(
                "n => { const m = [...document.querySelectorAll('[data-testid=stMetric]')]"
                ".find(e => e.innerText.includes('Detections shown'));"
                " return m && parseInt(m.querySelector('[data-testid=stMetricValue]').innerText) === n; }",
                arg=expected, timeout=30_000)
            expect(page.get_by_text("photo.png").first).to_be_visible()
            _no_exception(page)
            shot(page, "detect")

            visit("/train", "Model and settings")
            shot(page, "train")

            visit("/anchors", "Anchors in this cell")
            shot(page, "anchors")

            for path, landmark in (("/learn_anchors", "Anchors in all"), ("/learn_losses", "Mined negatives (kept)"),
                                   ("/learn_nms", "Kept after NMS"), ("/learn_eval", "The whole split")):
                visit(path, landmark)
                shot(page, path.strip("/"))
        finally:
            browser.close()

    _keep(*shots)
    assert all(s.stat().st_size > 10_000 for s in shots)


def test_camera_trap_run_in_chromium(server, app_env, tmp_path):
    """The Camera traps page in a browser: start a run of a small folder, follow it, browse it."""
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    from ssd.data.synthetic import render_example

    folder = tmp_path / "photos" / "cam1"
    folder.mkdir(parents=True)
    for i in range(5):
        Image.fromarray(render_example(2, i, "val")[0]).resize((200, 150)).save(folder / f"{i}.jpg")
    (folder / "notes.txt").write_text("not a photo")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(90_000)
            page.goto(server + "/camera_traps")
            expect(page.get_by_text("Run a folder")).to_be_visible()
            _settle(page)
            box = page.get_by_label("Folder of photos (on the machine running this app)")
            box.fill(str(tmp_path / "photos"))
            box.press("Enter")
            _settle(page)
            page.get_by_role("button", name="Start").click()
            expect(page.get_by_text("Finished: 6 images, 1 failed")).to_be_visible(timeout=120_000)
            _settle(page)
            images = page.locator('[data-testid="stMetric"]').filter(has_text="Images")
            expect(images.first.locator('[data-testid="stMetricValue"]')).to_have_text("6")
            expect(page.locator('[data-testid="stImage"]')).to_have_count(5)    # the failure is text
            _no_exception(page)
            page.screenshot(path=str(tmp_path / "camera_traps.png"), full_page=True)
        finally:
            browser.close()
    _keep(tmp_path / "camera_traps.png")


def test_camera_trap_review_and_export_in_chromium(server, tmp_path):
    """A loaded season in a browser: one repeat review written to a cleaned file, one Camtrap DP export."""
    import json

    from playwright.sync_api import expect

    from camtrap_dp_offline import validate_offline
    from test_camtrap_page import write_season

    write_season(tmp_path)
    with laptop_page(server + "/camera_traps", width=1400, height=1600) as page:
        expect.set_options(timeout=90_000)
        _settle(page)

        def fill(label: str, value: str) -> None:
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Enter")
            _settle(page)

        if page.get_by_label("Results JSON (path)", exact=True).count() == 0:     # a finished run is shown
            page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Results", exact=True)).click()
            page.get_by_role("option", name="another results file…").click()
            _settle(page)
        fill("Results JSON (path)", str(tmp_path / "season.json"))
        fill("Folder its paths start from", str(tmp_path / "photos"))
        expect(page.get_by_text("cam1 · place 1 · 4 detection(s) in 4 image(s)")).to_be_visible()
        page.get_by_text("false positive", exact=True).click()
        _settle(page)
        fill("Cleaned results file", str(tmp_path / "clean.json"))
        page.get_by_role("button", name="Write cleaned results").click()
        expect(page.get_by_text("4 detection(s) removed")).to_be_visible()
        clean = json.loads((tmp_path / "clean.json").read_text())
        assert sum(len(im["detections"]) for im in clean["images"]) == 2
        fill("Latitude (all cameras)", "46.5")
        fill("Longitude (all cameras)", "7.25")
        fill("Write the Camtrap DP package into this folder", str(tmp_path / "package"))
        page.get_by_role("button", name="Write Camtrap DP package").click()
        # the success message (the field's label "…Camtrap DP package into…" would match a bare text search)
        expect(page.locator('[data-testid="stAlert"]').filter(has_text="deployment(s)")).to_be_visible()
        _no_exception(page)
        report, _ = validate_offline(str(tmp_path / "package" / "datapackage.json"))
        assert report.valid, report.flatten(["type", "note"])
        page.screenshot(path=str(tmp_path / "camera_review.png"), full_page=True)
    _keep(tmp_path / "camera_review.png")


def test_photo_roots_and_link_like_upload_names_in_chromium(server, app_env, tmp_path):
    """In a real browser: a folder outside the photo roots is refused with the reason and no run
    starts; an upload named like links shows its name in the error box with no link in it."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.set_default_timeout(90_000)
            expect.set_options(timeout=90_000)   # expect's own 5 s default fails on a loaded 2-core machine
            page.goto(server + "/camera_traps")
            expect(page.get_by_text("Run a folder")).to_be_visible()
            _settle(page)
            for label, value in (("Folder of photos (on the machine running this app)", "/etc"),
                                 ("Run name", "roots-probe")):
                box = page.get_by_label(label)
                box.fill(value)
                box.press("Enter")
                _settle(page)
            page.get_by_role("button", name="Start").click()
            alert = page.locator('[data-testid="stAlert"]').filter(has_text="outside the folders this app may use")
            expect(alert).to_be_visible()
            expect(alert).to_contain_text(os.environ["SSD_PHOTO_ROOTS"])
            assert not os.path.exists(os.path.join(app_env["data"], ".camera-runs", "roots-probe"))   # no run
            _no_exception(page)

            name = "see www.evil-example.com mail@evil-example.com https://127.0.0.1:9/p.jpg"
            page.goto(server + "/detect")
            expect(page.get_by_text("Detections shown")).to_be_visible()
            _settle(page)
            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                files=[{"name": name, "mimeType": "image/jpeg", "buffer": b"not an image at all" * 4}])
            error = page.locator('[data-testid="stAlert"]').filter(has_text="is not an image")
            expect(error).to_be_visible()
            assert name in error.inner_text().replace("\u2060", "")                # the name, as text
            assert error.locator("a").count() == 0, error.inner_html()             # and no link
            _no_exception(page)
        finally:
            browser.close()
