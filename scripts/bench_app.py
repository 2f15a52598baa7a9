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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
CHROMIUM = "/usr/bin/chromium"


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid: int):
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


def bench_rss(models_dir: str, data_dir: str) -> None:
    port = _free_port()
    env = dict(os.environ, SSD_MODELS_DIR=models_dir, SSD_DATA_DIR=data_dir)
    log = tempfile.NamedTemporaryFile(prefix="bench_streamlit_", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", os.path.join(REPO, "app.py"),
                             "--server.port", str(port), "--server.headless", "true",
                             "--server.address", "localhost", "--browser.gatherUsageStats", "false"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"streamlit did not start; see {log.name}")
                time.sleep(0.3)
        idle = _rss_kb(proc.pid)
        print(f"streamlit server pid {proc.pid}: idle after start VmRSS {idle['VmRSS'] / 1024:.0f} MiB")
        if not os.path.exists(CHROMIUM):
            print(f"{CHROMIUM} is absent: cannot open a page to load the model (apt-get install chromium)")
            return
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking", "--disable-component-update",
                                              "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_text("Environment").first.wait_for()
            page.wait_for_timeout(1500)
            home = _rss_kb(proc.pid)
            page.goto(url + "/detect")
            page.get_by_text("Detections shown").first.wait_for()
            page.wait_for_timeout(1500)
            detect = _rss_kb(proc.pid)
            page.goto(url + "/anchors")
            page.get_by_text("Anchors in this cell").first.wait_for()
            page.wait_for_timeout(1500)
            anchors = _rss_kb(proc.pid)
            browser.close()
        print(f"after Home (model loaded, 3 samples detected): VmRSS {home['VmRSS'] / 1024:.0f} MiB")
        print(f"after Detect (6 samples detected):              VmRSS {detect['VmRSS'] / 1024:.0f} MiB")
        print(f"after Anchors:                                  VmRSS {anchors['VmRSS'] / 1024:.0f} MiB, "
              f"peak (VmHWM) {anchors['VmHWM'] / 1024:.0f} MiB")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


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
