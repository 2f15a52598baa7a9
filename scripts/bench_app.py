"""Benchmark the app's hot paths; prints figures (not a test).

1. Re-rendering a batch of detected images after a slider move: ``RawDetections.filter`` + the
   boxes as SVG (``ssd.inference.batch.render_batch``), no network. Target: <= 150 ms for 10 images.
   Also reported: drawing the boxes into the pixels and encoding a JPEG instead (what the page did
   before it laid SVG over an unchanging picture), and the first (network) pass. The browser's side
   of a slider move is ``scripts/bench_slider.py``.
2. Resident memory (VmRSS / VmHWM) of a running ``streamlit run app.py`` with the default model
   loaded: the server is started on a free localhost port and the Detect page is opened in
   Debian's /usr/bin/chromium (Playwright), which loads the model and detects on the samples.

Usage: OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_app.py [--models-dir DIR] [--model DIR]
       [--images 10] [--size 1280x960] [--repeat 30] [--skip-rss]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def bench_render(model_dir: str, n: int, size, repeat: int) -> None:
    from PIL import Image

    from ssd.inference.batch import DetectionCache, detect_images, render_batch
    from ssd.inference.detector import Detector
    from ssd.data.synthetic import render_example

    det = Detector.load(model_dir)
    items = []
    for i in range(n):
        img = Image.fromarray(render_example(0, i, "val")[0]).resize(size, Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        items.append((f"val_{i:03d}.jpg", buf.getvalue()))
    cache = DetectionCache()
    t0 = time.perf_counter()
    results = detect_images(det, items, 0.45, cache, key="bench")
    first = (time.perf_counter() - t0) * 1000
    calls = det.forward_calls

    thresholds = [0.2 + 0.6 * (k % 7) / 6 for k in range(repeat)]
    render_ms, with_cache_ms, encode_ms = [], [], []
    shown = []
    for thr in thresholds:
        t0 = time.perf_counter()
        again = detect_images(det, items, 0.45, cache, key="bench")       # the page's cache lookup (hashing)
        t1 = time.perf_counter()
        rendered = render_batch(again, thr, None, 100)
        t2 = time.perf_counter()
        for r in rendered:                                                # boxes in the pixels, as before
            r.picture().save(io.BytesIO(), format="JPEG", quality=90)
        t3 = time.perf_counter()
        render_ms.append((t2 - t1) * 1000)
        with_cache_ms.append((t2 - t0) * 1000)
        encode_ms.append((t3 - t0) * 1000)
        shown.append(sum(len(r.shown) for r in rendered))
    assert det.forward_calls == calls, "a slider move ran the network"
    print(f"model: {model_dir}")
    print(f"batch: {n} JPEG images of {size[0]}x{size[1]} px, {repeat} slider moves (thresholds 0.2-0.8), "
          f"{min(shown)}-{max(shown)} boxes shown")
    print(f"first pass (decode + network + NMS, batched): {first:.0f} ms total, {first / n:.1f} ms/image")
    print(f"slider move, filter + SVG (render_batch):       median {statistics.median(render_ms):.1f} ms, "
          f"p95 {_pct(render_ms, 95):.1f} ms   [target <= 150 ms]")
    print(f"  + cache lookup (hash of the uploads' bytes):  median {statistics.median(with_cache_ms):.1f} ms, "
          f"p95 {_pct(with_cache_ms, 95):.1f} ms")
    print(f"  + boxes drawn into pixels + JPEG (before):   median {statistics.median(encode_ms):.1f} ms, "
          f"p95 {_pct(encode_ms, 95):.1f} ms")
    print(f"network forward calls during slider moves: {det.forward_calls - calls}")


def bench_rss(models_dir: str, data_dir: str) -> None:
    """The server's memory after Home, Detect and Anchors (the whole walk: ``scripts/bench_memory.py``)."""
    from scripts.chromium_app import CHROMIUM, app_server, launch

    env = dict(os.environ, SSD_MODELS_DIR=models_dir, SSD_DATA_DIR=data_dir)
    with app_server(env) as server:
        print(f"streamlit server pid {server.pid}: idle after start VmRSS {server.rss_mib()['VmRSS']:.0f} MiB")
        if not os.path.exists(CHROMIUM):
            print(f"{CHROMIUM} is absent: cannot open a page to load the model (apt-get install chromium)")
            return
        from playwright.sync_api import sync_playwright

        seen = {}
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            for path, landmark, name in (("", "Environment", "Home (model loaded, 3 samples detected)"),
                                         ("/detect", "Detections shown", "Detect (6 samples detected)"),
                                         ("/anchors", "Anchors in this cell", "Anchors")):
                page.goto(server.url + path)
                page.get_by_text(landmark).first.wait_for()
                page.wait_for_timeout(1500)
                seen[name] = server.rss_mib()
            browser.close()
    for name, rss in seen.items():
        print(f"after {name:40s} VmRSS {rss['VmRSS']:.0f} MiB, peak (VmHWM) {rss['VmHWM']:.0f} MiB")


def main() -> int:
    from ssd.workspace import models_dir
    from ssd.store import default_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=models_dir())
    ap.add_argument("--data-dir", default=None, help="SSD_DATA_DIR for the server (default: a temp folder)")
    ap.add_argument("--model", help="model folder for the render benchmark (default: the default model)")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--size", default="1280x960", help="WxH of the benchmark images")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--skip-rss", action="store_true")
    args = ap.parse_args()
    model = args.model
    if model is None:
        info = default_model(args.models_dir)
        if info is None:
            raise SystemExit(f"no usable model in {args.models_dir}; pass --models-dir or --model")
        model = info.path
    w, h = (int(v) for v in args.size.lower().split("x"))
    print("== slider re-render (no network) ==")
    bench_render(model, args.images, (w, h), args.repeat)
    if not args.skip_rss:
        print("\n== memory of a running `streamlit run app.py` ==")
        bench_rss(args.models_dir, args.data_dir or tempfile.mkdtemp(prefix="bench_data_"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
