"""Drive ``streamlit run app.py`` in Debian's /usr/bin/chromium (Playwright; no browser is downloaded).

Shared by the browser tests (``tests/test_browser.py``, ``tests/test_browser_layout.py``) and the
scripts that measure the running app (``scripts/bench_slider.py``, ``scripts/bench_memory.py``,
``scripts/bench_app.py``), so what a test checks and what a script times is the same page driven
the same way.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Dict, Iterator, List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """A running ``streamlit run APP``: its ``url`` and ``pid`` (to read its memory)."""

    def __init__(self, url: str, proc: subprocess.Popen) -> None:
        self.url, self.proc, self.pid = url, proc, proc.pid

    def rss_mib(self) -> Dict[str, float]:
        """``VmRSS`` (now) and ``VmHWM`` (peak) of the server process, in MiB (Linux)."""
        out = {}
        with open(f"/proc/{self.pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) / 1024
        return out


@contextlib.contextmanager
def app_server(env: Optional[Dict[str, str]] = None, app: str = os.path.join(REPO, "app.py"),
               log_path: Optional[str] = None, timeout_s: float = 90) -> Iterator[AppServer]:
    """Start the app on a free localhost port, wait for its health check, stop it afterwards."""
    port = free_port()
    log = open(log_path or os.devnull, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", app, "--server.port", str(port), "--server.headless", "true",
         "--server.address", "localhost", "--browser.gatherUsageStats", "false"],
        cwd=os.path.dirname(app), env=dict(env if env is not None else os.environ), stdout=log,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        _wait_healthy(url, proc, timeout_s, log_path)
        yield AppServer(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float, log_path: Optional[str]) -> None:
    deadline = time.time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log = open(log_path, errors="replace").read() if log_path and os.path.exists(log_path) else ""
            raise RuntimeError("streamlit did not start:\n" + log)
        time.sleep(0.3)


def launch(playwright):
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@contextlib.contextmanager
def laptop_page(url: str, width: int = 1280, height: int = 800, timeout_ms: int = 90_000) -> Iterator:
    """A page of Debian's Chromium at ``width``×``height`` (a laptop by default) opened on ``url``,
    the browser closed however the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_ms)
            page.goto(url)
            yield page
        finally:
            browser.close()


def settle(page, timeout_ms: int = 90_000) -> None:
    """Wait until the script run has finished (the 'Running…' status widget is gone)."""
    page.wait_for_timeout(400)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout_ms)
    page.wait_for_timeout(300)


# What "the page shows the new threshold" means, in the browser: the metric reads the expected count, no
# element of the main area is still the previous run's (Streamlit marks those data-stale until they are
# replaced) and every image has loaded (a new image URL must be fetched and decoded first). Checked on
# every animation frame in the page, which notes the time it first holds.
_SHOWN = """([label, n]) => {
  const m = [...document.querySelectorAll('[data-testid=stMetric]')].find(e => e.innerText.includes(label));
  if (!m || parseInt(m.querySelector('[data-testid=stMetricValue]').innerText) !== n) return false;
  if (document.querySelector('[data-testid=stMain] [data-stale=true]')) return false;
  const imgs = [...document.querySelectorAll('[data-testid=stMain] img')];
  if (!(imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0))) return false;
  window.__ssdShownAt = performance.now();
  return true;
}"""
# The moment the click ends (pointer up), as the page's own clock sees it.
_CLICK_CLOCK = """() => { window.__ssdClickAt = null;
  document.addEventListener('pointerup', () => { window.__ssdClickAt = performance.now(); }, {capture: true, once: true}); }"""


# The page has run to the end: ``text`` is on it, no element is the previous run's, every image loaded.
_DONE = """text => document.body.innerText.includes(text)
  && !document.querySelector('[data-testid=stMain] [data-stale=true]')
  && [...document.querySelectorAll('[data-testid=stMain] img')].every(i => i.complete && i.naturalWidth > 0)
  && !(document.querySelector('[data-testid=stStatusWidget]')?.innerText || '').includes('Running')"""


def timed_action(page, action, text: str) -> float:
    """Milliseconds from ``action()`` until the page shows ``text`` and has run to the end (checked
    on each animation frame after a short grace, so the previous run cannot pass for the new one)."""
    t0 = time.perf_counter()
    action()
    page.wait_for_timeout(50)
    page.wait_for_function(_DONE, arg=text, polling="raf", timeout=120_000)
    return (time.perf_counter() - t0) * 1000


def metric_value(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def steady_metric(page, label: str, quiet_ms: int = 1500) -> str:
    """The metric's value once the page is idle and it has not changed for ``quiet_ms``."""
    value, since = None, time.perf_counter()
    while True:
        settle(page)
        now = metric_value(page, label)
        if now != value:
            value, since = now, time.perf_counter()
        elif (time.perf_counter() - since) * 1000 >= quiet_ms:
            return value


def click_slider(page, label: str, fraction: float) -> None:
    """Click the slider named ``label`` at ``fraction`` of its track, as a person picks a value."""
    widget = page.locator('[data-testid="stSlider"]').filter(has=page.get_by_role("slider", name=label)).first
    track = widget.locator('[role="group"] > div').first.bounding_box()
    page.mouse.click(track["x"] + fraction * track["width"], track["y"] + track["height"] / 2)


def slider_round_trips(page, label: str = "Confidence threshold", fractions: Sequence[float] = (0.15, 0.97),
                       moves: int = 20, metric: str = "Detections shown") -> Dict[str, object]:
    """Milliseconds from a click on the slider to the page showing its result, ``moves`` times.

    The clicks alternate between two points of the track whose counts (``metric``) differ; a move
    is done when the metric reads its count and every image has loaded. ``ms``: the page's own clock,
    from the pointer's release to the first animation frame showing the result (what a person
    waits); ``driver_ms``: the same seen from Python, with the driver's own round trips.
    """
    counts = []
    for f in fractions:                      # warm-up: learn the count each point shows
        click_slider(page, label, f)
        counts.append(int(steady_metric(page, metric)))
    if counts[0] == counts[1]:
        raise RuntimeError(f"the two slider points show the same count ({counts[0]}); pick others")
    times: List[float] = []
    driver: List[float] = []
    for k in range(moves):
        i = k % 2
        page.evaluate(_CLICK_CLOCK)
        t0 = time.perf_counter()
        click_slider(page, label, fractions[i])
        page.wait_for_function(_SHOWN, arg=[metric, counts[i]], polling="raf", timeout=60_000)
        driver.append((time.perf_counter() - t0) * 1000)
        times.append(page.evaluate("() => window.__ssdShownAt - window.__ssdClickAt"))
        page.wait_for_timeout(150)
    return {"counts": counts, "ms": times, "driver_ms": driver}
