"""Memory of the app process over many detections, each in a fresh Streamlit rerun.

Drives the Detect page with ``streamlit.testing.v1.AppTest`` (every ``run()`` is a new script
thread, as on a server): each rerun uploads a new image, so the network runs every time. Prints the
resident-memory growth after a warm-up. ``--baseline`` runs the forwards in each rerun's own
thread (the behaviour before the inference worker) for a side-by-side figure.

    python scripts/bench_memory.py --model models/tiny-pikachu --runs 100 [--baseline]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def rss_mib() -> float:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def png(i: int) -> bytes:
    from PIL import Image

    from ssd.data.synthetic import render_example

    buf = io.BytesIO()
    Image.fromarray(render_example(0, i, "val", size=128)[0]).save(buf, format="PNG")
    return buf.getvalue()


def measure(models_root: str, runs: int, warmup: int = 4) -> dict:
    """RSS after ``warmup`` detection reruns and after ``runs`` more; forward calls counted."""
    from streamlit.testing.v1 import AppTest

    os.environ.update(SSD_MODELS_DIR=models_root, SSD_FORCE_CPU="1",
                      SSD_DATA_DIR=os.environ.get("SSD_DATA_DIR") or tempfile.mkdtemp())
    at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=300).run()
    at.switch_page("app_pages/detect.py").run()
    start = None
    for i in range(warmup + runs):
        if i == warmup:
            start = rss_mib()
        at.file_uploader(key="detect_upload").set_value([(f"img{i}.png", png(i), "image/png")]).run()
        assert not at.exception, [e.value for e in at.exception]
    stats = dict(at.session_state["detect_stats"])
    return {"runs": runs, "start_mib": start, "growth_mib": rss_mib() - start, "forward_calls": stats["forward_calls"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "tiny-pikachu"))
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--baseline", action="store_true", help="forwards in each rerun's thread (old behaviour)")
    args = ap.parse_args()
    root = tempfile.mkdtemp()
    os.symlink(os.path.abspath(args.model), os.path.join(root, os.path.basename(os.path.normpath(args.model))))
    if args.baseline:
        from ssd.inference import detector

        real = detector.Detector.load.__func__
        detector.Detector.load = classmethod(lambda cls, d, ctx=None, precision=None, worker=False:
                                             real(cls, d, ctx, precision, False))
    r = measure(root, args.runs)
    mode = "baseline (forward in each rerun's thread)" if args.baseline else "inference worker"
    print(f"{mode}: {r['runs']} detections in fresh reruns, RSS {r['start_mib']:.0f} MiB at start, "
          f"growth {r['growth_mib']:+.1f} MiB ({r['growth_mib'] / r['runs']:+.2f} MiB per detection), "
          f"{r['forward_calls']} forward calls")


if __name__ == "__main__":
    main()
