"""Memory of the app's server process: a walk of every page in Chromium, then Detect reruns with the network.

``streamlit run app.py`` is started on a free localhost port and driven in Debian's /usr/bin/chromium
(Playwright), as a person would: every page at 1280 px and at 390 px (a phone), with Detect's
sliders moved, an upload, Custom anchors and the Learn pages' controls. The server's resident
memory (VmRSS, and the peak VmHWM) is read after each page. Then ``--reruns`` moves of Detect's NMS
slider, each a new value, so the network runs on every image each time; the growth over them is
what stays per rerun. Finally the sizes of the app's bounded caches are printed (the server
writes them when ``SSD_MEMORY_REPORT`` names a file).

    .venv/bin/python scripts/bench_memory.py [--models-dir models] [--reruns 17]

``--apptest N`` measures instead N detections in fresh reruns driven by Streamlit's AppTest (no
browser; each rerun uploads a new image); ``--baseline`` then runs the forwards in each rerun's own
thread (the behaviour before the inference worker), for a side-by-side figure.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.chromium_app import REPO, AppServer, app_server, launch, settle  # noqa: E402

# (path, a text that shows the page has run): every page of the app
PAGES = [("", "How SSD sees an image"), ("/detect", "Detections shown"), ("/train", "Model and settings"),
         ("/anchors", "Anchors in this cell"), ("/camera_traps", "Run a folder"),
         ("/learn_anchors", "Anchors in all"), ("/learn_losses", "Mined negatives (kept)"),
         ("/learn_nms", "Kept after NMS"), ("/learn_eval", "The whole split")]


def _photo() -> bytes:
    """A 1920×1080 JPEG (a synthetic scene enlarged): what a person uploads from a camera."""
    from PIL import Image

    from ssd.data.synthetic import render_example

    buf = io.BytesIO()
    Image.fromarray(render_example(0, 3, "val")[0]).resize((1920, 1080)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _visit(page, url: str, path: str, landmark: str) -> None:
    page.goto(url + path)
    page.get_by_text(landmark).first.wait_for()
    settle(page)


def _use_page(page, path: str) -> None:
    """What a person does on a page beyond opening it (each a rerun or more)."""
    if path == "/detect":
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": _photo()}])
        page.get_by_text("1 of 1").first.wait_for()
        settle(page)
        page.get_by_role("slider", name="Confidence threshold").focus()
        for _ in range(5):
            page.keyboard.press("ArrowLeft")
        settle(page)
    elif path == "/anchors":
        page.locator('[data-testid="stRadio"] label').filter(has_text="Custom").first.click()
        page.get_by_label("Aspect ratios (one group for all maps, or one per map)").wait_for()
        settle(page)
        box = page.get_by_label("Aspect ratios (one group for all maps, or one per map)")
        box.fill("1, 2, 0.5, 3")
        box.press("Enter")
        settle(page)
    elif path == "/learn_nms":
        page.get_by_role("slider", name="Step").focus()
        page.keyboard.press("ArrowRight")
        settle(page)


def walk(page, server: AppServer, widths=(1280, 390)) -> List[Tuple[str, float]]:
    """Every page at each width, used; ``(page, VmRSS MiB after it)`` in order."""
    seen = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
        for path, landmark in PAGES:
            _visit(page, server.url, path, landmark)
            if width == widths[0]:
                _use_page(page, path)
            seen.append((f"{path or '/'} @{width}", server.rss_mib()["VmRSS"]))
    return seen


def detect_reruns(page, server: AppServer, reruns: int) -> List[float]:
    """VmRSS after each of ``reruns`` new NMS values on Detect's samples (the network runs each time)."""
    _visit(page, server.url, "/detect", "Detections shown")
    slider = page.get_by_role("slider", name="NMS IoU threshold")
    slider.focus()
    page.keyboard.press("Home")                 # 0.05: then every ArrowRight is a value not seen yet
    settle(page)
    out = [server.rss_mib()["VmRSS"]]
    for _ in range(reruns):
        page.keyboard.press("ArrowRight")
        settle(page)
        page.get_by_text("Detections shown").first.wait_for()
        out.append(server.rss_mib()["VmRSS"])
    return out


def _self_rss_mib() -> float:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _png(i: int) -> bytes:
    from PIL import Image

    from ssd.data.synthetic import render_example

    buf = io.BytesIO()
    Image.fromarray(render_example(0, i, "val", size=128)[0]).save(buf, format="PNG")
    return buf.getvalue()


def measure(models_root: str, runs: int, warmup: int = 4) -> dict:
    """AppTest: RSS of this process after ``warmup`` detection reruns and after ``runs`` more."""
    from streamlit.testing.v1 import AppTest

    os.environ.update(SSD_MODELS_DIR=models_root, SSD_FORCE_CPU="1",
                      SSD_DATA_DIR=os.environ.get("SSD_DATA_DIR") or tempfile.mkdtemp())
    at = AppTest.from_file(os.path.join(REPO, "app.py"), default_timeout=300).run()
    at.switch_page("app_pages/detect.py").run()
    start = None
    for i in range(warmup + runs):
        if i == warmup:
            start = _self_rss_mib()
        at.file_uploader(key="detect_upload").set_value([(f"img{i}.png", _png(i), "image/png")]).run()
        assert not at.exception, [e.value for e in at.exception]
    stats = dict(at.session_state["detect_stats"])
    return {"runs": runs, "start_mib": start, "growth_mib": _self_rss_mib() - start,
            "forward_calls": stats["forward_calls"]}


def apptest_main(model: str, runs: int, baseline: bool) -> None:
    root = tempfile.mkdtemp()
    os.symlink(os.path.abspath(model), os.path.join(root, os.path.basename(os.path.normpath(model))))
    if baseline:
        from ssd.inference import detector

        real = detector.Detector.load.__func__
        detector.Detector.load = classmethod(
            lambda cls, d, ctx=None, precision=None, worker=False: real(cls, d, ctx, precision, False))
    r = measure(root, runs)
    mode = "baseline (forward in each rerun's thread)" if baseline else "inference worker"
    print(f"{mode}: {r['runs']} detections in fresh reruns, RSS {r['start_mib']:.0f} MiB at start, "
          f"growth {r['growth_mib']:+.1f} MiB ({r['growth_mib'] / r['runs']:+.2f} MiB per detection), "
          f"{r['forward_calls']} forward calls")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=os.path.join(REPO, "models"))
    ap.add_argument("--reruns", type=int, default=17)
    ap.add_argument("--app", default=os.path.join(REPO, "app.py"), help="another checkout's app.py (a baseline)")
    ap.add_argument("--apptest", type=int, default=0, metavar="N", help="N AppTest detection reruns instead")
    ap.add_argument("--model", default=os.path.join(REPO, "models", "tiny-pikachu"), help="for --apptest")
    ap.add_argument("--baseline", action="store_true", help="with --apptest: forwards in each rerun's thread")
    args = ap.parse_args()
    if args.apptest:
        apptest_main(args.model, args.apptest, args.baseline)
        return 0
    report = os.path.join(tempfile.mkdtemp(prefix="bench_memory_"), "caches.json")
    env = dict(os.environ, SSD_MODELS_DIR=os.path.abspath(args.models_dir), SSD_FORCE_CPU="1",
               SSD_DATA_DIR=os.environ.get("SSD_DATA_DIR") or tempfile.mkdtemp(prefix="bench_memory_data_"),
               SSD_MEMORY_REPORT=report)
    from playwright.sync_api import sync_playwright

    with app_server(env, app=args.app) as server, sync_playwright() as p:
        idle = server.rss_mib()["VmRSS"]
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(180_000)
            seen = walk(page, server)
            after_walk = server.rss_mib()
            reruns = detect_reruns(page, server, args.reruns)
            _visit(page, server.url, "", "How SSD sees an image")     # the server writes its cache report
        finally:
            browser.close()
        final = server.rss_mib()
    print(f"server: idle {idle:.0f} MiB")
    for name, rss in seen:
        print(f"  after {name:22s} {rss:6.0f} MiB")
    print(f"after the walk of every page at 1280 and 390 px: VmRSS {after_walk['VmRSS']:.0f} MiB "
          f"({after_walk['VmRSS'] * 1.048576:.0f} MB), peak {after_walk['VmHWM']:.0f} MiB")
    steps = [b - a for a, b in zip(reruns, reruns[1:])]
    print(f"{args.reruns} Detect reruns with the network (new NMS values, 6 images each): "
          f"{reruns[0]:.0f} -> {reruns[-1]:.0f} MiB, growth {reruns[-1] - reruns[0]:+.1f} MiB "
          f"(largest step {max(steps):+.1f}); final peak {final['VmHWM']:.0f} MiB")
    if os.path.exists(report):
        with open(report, encoding="utf-8") as fh:
            for name, st in json.load(fh).items():
                print(f"  cache {name}: {st['entries']} entries, {st['bytes'] / 2**20:.1f} MiB "
                      f"(bounds {st['max_entries']} entries, {st['max_bytes'] / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
