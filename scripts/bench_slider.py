"""The Detect page's confidence slider as a person feels it: browser round trip in Chromium.

Starts ``streamlit run app.py`` on a free localhost port, opens the Detect page in Debian's
/usr/bin/chromium (Playwright), and clicks the confidence slider back and forth between two points
of its track. A move is timed from the click until the page shows the new count and every image
has loaded; the bytes the browser received per move (websocket messages and image files) are
counted too. The two points repeat, so an app that draws the boxes into the pictures gets them
from the browser's memory cache from the third move on, which a person's new values would not:
its figure here is a lower bound. ``--baseline-app`` times another checkout's app.py in the same run, rounds
alternating, for a side-by-side ratio.

    .venv/bin/python scripts/bench_slider.py [--moves 20] [--rounds 2] [--width 1280]
        [--upload PHOTO ...] [--baseline-app /path/to/other/checkout/app.py] [--anchors]

``--anchors`` times the Anchors page instead: from the click on Custom, and from typing new aspect
ratios, until the page has run to the end with every figure loaded.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.chromium_app import REPO, app_server, launch, settle, slider_round_trips, timed_action  # noqa: E402


def _count_bytes(page) -> Dict[str, int]:
    """Bytes received by ``page`` from now on: websocket frames and HTTP responses of media."""
    got = {"ws": 0, "media": 0}

    def on_ws(ws) -> None:
        ws.on("framereceived", lambda payload: got.__setitem__("ws", got["ws"] + len(payload)))

    def on_request(req) -> None:
        if "/media/" in req.url:
            got["media"] += req.sizes()["responseBodySize"]

    page.on("websocket", on_ws)
    page.on("requestfinished", on_request)
    return got


def one_round(app: str, env: Dict[str, str], width: int, moves: int, uploads: List[str]) -> Dict[str, object]:
    from playwright.sync_api import sync_playwright

    with app_server(env, app=app) as server, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.set_default_timeout(120_000)
            got = _count_bytes(page)
            page.goto(server.url + "/detect")
            page.get_by_text("Detections shown").first.wait_for()
            settle(page)
            if uploads:
                page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(uploads)
                page.get_by_text(f"{len(uploads)} of {len(uploads)}").first.wait_for()
                settle(page)
            out = slider_round_trips(page, moves=2)             # warm-up, and the two counts
            before = dict(got)
            out = slider_round_trips(page, moves=moves)
            out["kb_per_move"] = (got["ws"] - before["ws"] + got["media"] - before["media"]) / 1024 / (moves + 2)
            return out
        finally:
            browser.close()


def anchors_round(app: str, env: Dict[str, str], width: int) -> Dict[str, float]:
    """The Anchors page: milliseconds to switch to Custom anchors, then to type new aspect ratios."""
    from playwright.sync_api import sync_playwright

    with app_server(env, app=app) as server, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(server.url + "/anchors")
            page.get_by_text("Anchors in this cell").first.wait_for()
            settle(page)
            custom = timed_action(page, lambda: page.locator('[data-testid="stRadio"] label').filter(
                has_text="Custom").first.click(), "Aspect ratios (one group for all maps")
            box = page.get_by_label("Aspect ratios (one group for all maps, or one per map)")
            box.fill("1, 2, 0.5, 3")
            ratios = timed_action(page, lambda: box.press("Enter"), "= 6805 anchors")   # 5 per cell now
            return {"custom": custom, "ratios": ratios}
        finally:
            browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=os.path.join(REPO, "models"))
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--upload", nargs="*", default=[], help="photos to upload (default: the six samples)")
    ap.add_argument("--baseline-app", help="another checkout's app.py, timed in the same run")
    ap.add_argument("--anchors", action="store_true", help="time the Anchors page's Custom anchors instead")
    args = ap.parse_args()
    env = dict(os.environ, SSD_MODELS_DIR=os.path.abspath(args.models_dir), SSD_FORCE_CPU="1",
               SSD_DATA_DIR=os.environ.get("SSD_DATA_DIR") or tempfile.mkdtemp(prefix="bench_slider_"))
    apps = {"this app": os.path.join(REPO, "app.py")}
    if args.baseline_app:
        apps["baseline"] = os.path.abspath(args.baseline_app)
    if args.anchors:
        return anchors_main(apps, env, args.width, args.rounds)
    times: Dict[str, List[float]] = {name: [] for name in apps}
    kb: Dict[str, List[float]] = {name: [] for name in apps}
    for r in range(args.rounds):
        for name, app in apps.items():
            out = one_round(app, env, args.width, args.moves, args.upload)
            times[name] += out["ms"]
            kb[name].append(out["kb_per_move"])
            print(f"round {r + 1}, {name}: median {statistics.median(out['ms']):.0f} ms "
                  f"(seen from the driver: {statistics.median(out['driver_ms']):.0f} ms) "
                  f"(counts {out['counts']}, {out['kb_per_move']:.0f} KB received per move)", flush=True)
    what = f"{len(args.upload)} upload(s)" if args.upload else "the six samples"
    print(f"\nslider round trip in Chromium at {args.width} px, {what}, {args.moves} moves x {args.rounds} rounds:")
    for name in apps:
        t = sorted(times[name])
        print(f"  {name:9s} median {statistics.median(t):6.0f} ms, p90 {t[int(0.9 * (len(t) - 1))]:6.0f} ms, "
              f"min {t[0]:4.0f} ms, {statistics.mean(kb[name]):.0f} KB per move")
    if args.baseline_app:
        ratio = statistics.median(times["baseline"]) / statistics.median(times["this app"])
        print(f"  baseline / this app: {ratio:.2f}x")
    return 0


def anchors_main(apps: Dict[str, str], env: Dict[str, str], width: int, rounds: int) -> int:
    got: Dict[str, List[Dict[str, float]]] = {name: [] for name in apps}
    for r in range(rounds):
        for name, app in apps.items():
            got[name].append(anchors_round(app, env, width))
            print(f"round {r + 1}, {name}: Custom {got[name][-1]['custom']:.0f} ms, "
                  f"new ratios {got[name][-1]['ratios']:.0f} ms", flush=True)
    print(f"\nAnchors page in Chromium at {width} px, best of {rounds} rounds:")
    for name in apps:
        print(f"  {name:9s} switch to Custom {min(g['custom'] for g in got[name]):6.0f} ms, "
              f"type new ratios {min(g['ratios'] for g in got[name]):6.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
