"""A phone (390 px) and a desktop (1280 px) in Debian's /usr/bin/chromium (Playwright; no browser is
downloaded): what a person moves sits by what it changes, figures stack on a phone, nothing is cut
short, and the confidence slider's round trip. Screenshots are written under the test's tmp_path;
to keep them (the ones in docs/img were made so, with the shipped model):

    SSD_SCREENSHOT_DIR=docs/img .venv/bin/python -m pytest tests/test_browser_layout.py
"""
from __future__ import annotations

import os
import re
import shutil
import statistics

import pytest

from app_pages._shared import FIGURE_DPI
from scripts.chromium_app import CHROMIUM, CHROMIUM_ARGS, app_server, laptop_page, slider_round_trips
from test_browser import _keep, _no_exception, _settle

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent (install Debian's chromium: apt-get install chromium)")


_CLIPPED = """els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""


def _clipped(locator) -> list:
    """Texts of ``locator``'s elements cut short (wider than their box: an ellipsis or a hidden end)."""
    return locator.evaluate_all(_CLIPPED)


def _box(locator) -> dict:
    box = locator.bounding_box()
    assert box, "not displayed"
    return box


def _shot(page, shots: list, tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.jpg"
    page.screenshot(path=str(path), type="jpeg", quality=70)
    shots.append(path)


def _home(page, width: int) -> None:
    """Every link whole; the SSD diagram once: its figure on a desktop, its text (wrapping) on a phone."""
    links = page.locator('[data-testid="stMain"] [data-testid="stPageLink"] p')
    assert links.count() == 4 and _clipped(links) == []
    wide, narrow = page.locator(".ssd-diagram-wide"), page.locator(".ssd-diagram-narrow")
    assert wide.is_visible() is (width > 640) and narrow.is_visible() is (width <= 640)
    if width <= 640:
        assert _box(narrow)["width"] <= width and "anchors in all" in narrow.inner_text()
    assert page.get_by_text("The diagram as text").count() == 0


def _detect(page, width: int) -> None:
    """The view controls above the pictures (not only in the sidebar), the confidence slider still on
    screen when the last picture is, the boxes laid exactly over their picture, whole button labels."""
    main_slider = page.locator('[data-testid="stMain"]').get_by_role("slider", name="Confidence threshold")
    assert main_slider.count() == 1
    assert page.locator('[data-testid="stSidebar"]').get_by_role("slider", name="Confidence threshold").count() == 0
    first = page.locator('[class*="st-key-detect_pic_"]').first
    assert _box(main_slider)["y"] < _box(first)["y"]
    boxes, picture = _box(first.locator("img.ssd-boxes")), _box(first.locator('[data-testid="stImage"] img'))
    assert all(abs(boxes[k] - picture[k]) <= 1.5 for k in ("x", "y", "width", "height")), (boxes, picture)
    page.locator('[class*="st-key-detect_pic_"]').last.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    slider = _box(main_slider)
    assert 0 <= slider["y"] and slider["y"] + slider["height"] <= page.viewport_size["height"]


def _pull_buttons(page) -> None:
    page.get_by_text("Real-world detectors").first.click()
    buttons = page.locator('[data-testid="stMain"] button').filter(has_text="Download")
    buttons.first.wait_for()
    assert buttons.count() >= 6 and _clipped(buttons.locator("p")) == []


def _multiscale(page, width: int) -> None:
    """Three panels: side by side on a desktop, one under another (each nearly the screen's width) on a phone."""
    panels = page.locator('[data-testid="stMain"] [data-testid="stImage"] img')
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img').length >= 3")
    b = [_box(panels.nth(i)) for i in range(3)]
    if width > 640:
        assert abs(b[0]["y"] - b[2]["y"]) < 2 and b[0]["x"] < b[1]["x"] < b[2]["x"]
    else:
        assert b[0]["y"] < b[1]["y"] < b[2]["y"] and min(x["width"] for x in b) >= 0.8 * width


def _losses(page, width: int) -> None:
    """The box-loss and class-loss plots: side by side on a desktop, one under another on a phone, each
    shown at a readable scale (at least 60 screen pixels per figure inch: the figures' 8-10 pt labels and
    legends stay 7 px or more). Both in one 11-inch-wide figure, a 390 px phone drew them at 32 px an inch."""
    heading = _box(page.get_by_text("What the class loss sees on one image").first)
    images = page.locator('[data-testid="stMain"] [data-testid="stImage"] img')
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    curves = [images.nth(i) for i in range(images.count()) if _box(images.nth(i))["y"] < heading["y"]]
    assert len(curves) == 2, len(curves)
    b = [_box(c) for c in curves]
    per_inch = [box["width"] / c.evaluate("i => i.naturalWidth") * FIGURE_DPI for box, c in zip(b, curves)]
    assert min(per_inch) >= 60, per_inch
    if width > 640:
        assert abs(b[0]["y"] - b[1]["y"]) < 2 and b[0]["x"] < b[1]["x"]
    else:
        assert b[0]["y"] + b[0]["height"] <= b[1]["y"]


def _nms(page) -> None:
    """The suppressed boxes' table is exactly as tall as its rows (no blank row at its end)."""
    text = page.locator('[data-testid="stMain"] p').filter(has_text=re.compile(r"Step 1 of \d+")).first.inner_text()
    n = int(re.search(r"suppresses (\d+)", text).group(1))
    if n:
        table = _box(page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').first)
        assert abs(table["height"] - ((min(n, 10) + 1) * 35 + 2)) <= 2, (n, table)


@pytest.fixture
def layout_server(app_env, monkeypatch, tmp_path):
    """The app as the other tests see it; when screenshots are kept for the docs ($SSD_SCREENSHOT_DIR),
    with a copy of the shipped default model in its own models folder, so they show what a person sees."""
    keep = os.environ.get("SSD_SCREENSHOT_DIR")
    shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "tiny-pikachu")
    if keep and os.path.isdir(shipped):
        root = tmp_path / "shipped-models"
        shutil.copytree(shipped, root / "tiny-pikachu", ignore=shutil.ignore_patterns("checkpoints"))
        monkeypatch.setenv("SSD_MODELS_DIR", str(root))
    with app_server(log_path=str(tmp_path / "streamlit.log")) as srv:
        yield srv.url


def test_phone_and_desktop_layouts(layout_server, tmp_path):
    """At 390 px (a phone) and 1280 px: what a person moves sits by what it changes, figures stack
    on the phone, nothing is cut short; a screenshot of each page at each width; and the confidence
    slider's round trip in Chromium (page clock, pointer release to the new boxes shown)."""
    from playwright.sync_api import expect, sync_playwright

    shots, round_trip = [], None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for width, height, device in ((390, 844, "phone"), (1280, 900, "desktop")):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(90_000)
                expect.set_options(timeout=90_000)

                def visit(path: str, landmark: str) -> None:
                    page.goto(layout_server + path)
                    expect(page.get_by_text(landmark).first).to_be_visible()
                    _settle(page)
                    _no_exception(page)

                visit("", "How SSD sees an image")
                _home(page, width)
                _shot(page, shots, tmp_path, f"{device}_home")
                visit("/detect", "Detections shown")
                _detect(page, width)
                _shot(page, shots, tmp_path, f"{device}_detect")
                if width > 640:
                    page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
                    round_trip = slider_round_trips(page, moves=10)
                _pull_buttons(page)
                visit("/learn_anchors", "Anchors in all")
                _multiscale(page, width)
                _shot(page, shots, tmp_path, f"{device}_multiscale_anchors")
                visit("/learn_losses", "What the class loss sees on one image")
                _losses(page, width)
                _shot(page, shots, tmp_path, f"{device}_losses")
                visit("/learn_nms", "Kept after NMS")
                _nms(page)
                page.locator('[data-testid="stMain"] [data-testid="stImage"]').first.scroll_into_view_if_needed()
                _shot(page, shots, tmp_path, f"{device}_nms")
                for path, landmark, name in (("/anchors", "Anchors in this cell", "anchors"),
                                             ("/learn_eval", "The whole split", "evaluation"),
                                             ("/train", "4 · Saved models", "train")):
                    visit(path, landmark)
                    page.locator('[data-testid="stMain"] [data-testid="stImage"]').first.scroll_into_view_if_needed()
                    _shot(page, shots, tmp_path, f"{device}_{name}")
                page.close()
        finally:
            browser.close()
    median = statistics.median(round_trip["ms"])
    print(f"confidence slider round trip in Chromium: median {median:.0f} ms over {len(round_trip['ms'])} moves "
          f"(counts {round_trip['counts']})")
    assert median < 1000          # a loose bound for a shared machine; scripts/bench_slider.py measures it
    _keep(*shots)
    assert len(shots) == 16 and all(s.stat().st_size > 5_000 for s in shots)


# Every element of the main area whose text ends in an ellipsis because it is wider than its box.
_ELLIPSIZED = """() => [...document.querySelectorAll('[data-testid=stMain] *')].filter(e =>
  getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""


# Every widget label of the main area that wraps (taller than two font sizes: one line is about 1.7).
_WRAPPED_LABELS = """() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stWidgetLabel]')].filter(l =>
  l.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(l).fontSize)).map(l => l.innerText)"""
_CLIPPED_VALUES = """els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.value || e.innerText)"""


def _run_form_whole(page) -> None:
    """The run form at a laptop's width: the Camera folder choice read whole (it was "automatic: the
    photo's folder without date and card-overflow fol"), every value whole (an episode gap "120.0"
    once its column was narrowed), and no label on two lines ("Flag repeats…")."""
    camera = page.locator('[data-testid="stSelectbox"]').filter(has_text="Camera folder")
    assert camera.count() == 1 and "automatic" in camera.locator("input").input_value()
    assert page.locator('[data-testid="stMain"] input').evaluate_all(_CLIPPED_VALUES) == []   # "120.0" too
    assert page.evaluate(_WRAPPED_LABELS) == []


@pytest.fixture
def own_data_server(app_env, monkeypatch, tmp_path):
    """The app with a data folder of its own: a camera-trap run another test finished in the shared
    one would be offered first, and the results path field would not be drawn."""
    (tmp_path / "own-data").mkdir()
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "own-data"))
    with app_server(log_path=str(tmp_path / "streamlit.log")) as srv:
        yield srv.url


def test_camera_traps_labels_whole_on_a_laptop(own_data_server, tmp_path):
    """A season's results at 1280×800 (a laptop, sidebar open): no filter label nor total cut short
    ("Hide suspect" and "Episodes with detections" were "Hide …" and "Episodes with det…"), and the
    run form whole (``_run_form_whole``)."""
    from playwright.sync_api import expect

    from test_camtrap_page import write_season

    write_season(tmp_path)
    with laptop_page(own_data_server + "/camera_traps") as page:
        expect.set_options(timeout=90_000)
        expect(page.get_by_text("Run a folder")).to_be_visible()
        _settle(page)
        _run_form_whole(page)
        for label, value in (("Results JSON (path)", tmp_path / "season.json"),
                             ("Folder its paths start from", tmp_path / "photos")):
            box = page.get_by_label(label, exact=True)
            box.fill(str(value))
            box.press("Enter")
            _settle(page)
        expect(page.locator('[data-testid="stMetric"]').filter(has_text="Episodes with detections")).to_be_visible()
        _no_exception(page)
        assert page.evaluate(_ELLIPSIZED) == []
        # the results view's Camera folder too (it read "automatic: the photo's folder without date anc")
        choices = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(has_text="Camera folder")
        assert choices.count() == 2 and choices.locator("input").evaluate_all(_CLIPPED_VALUES) == []
        shots = []
        _shot(page, shots, tmp_path, "laptop_camera_traps")
        _keep(*shots)


# Every metric label or value, on the main area, cut short by an ellipsis.
_METRICS_ELLIPSIZED = """() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stMetric] *')].filter(e =>
  getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""


def test_train_run_numbers_whole_on_a_laptop(app_env, tiny_model_dir, monkeypatch, tmp_path):
    """A finished run's numbers at 1280×800 (sidebar open): five metrics in one row cut the validation
    micro-F1 / accuracy to "0.002 / …" and its label to "Val micro-F1 / accur…"."""
    from playwright.sync_api import expect

    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny-test")
    monkeypatch.setenv("SSD_MODELS_DIR", str(tmp_path / "models"))
    with app_server(log_path=str(tmp_path / "streamlit.log")) as srv, laptop_page(srv.url + "/train") as page:
        metric = page.locator('[data-testid="stMetric"]').filter(has_text="Val micro-F1")
        expect(metric).to_be_visible(timeout=90_000)
        _settle(page)
        _no_exception(page)
        assert re.search(r"\d\.\d{3} / \d\.\d{4}", metric.inner_text())
        assert page.evaluate(_METRICS_ELLIPSIZED) == []
