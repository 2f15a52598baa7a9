"""Cost of holding INT8 graphs to their weights (ssd.inference.int8_trust) where a user meets it.

    python scripts/bench_int8_trust.py [BASELINE_CHECKOUT] [--runs N]

Each case is a whole process (``python -m ssd detect`` on one image, fresh ``$SSD_CACHE_DIR``):

* ``shipped``: the default model, as shipped (its files match the library's manifest: hashes only);
* ``copy``: a copy of it whose meta.json was re-saved (same content, other bytes), so neither the
  manifest nor a verdict vouches: the first detection runs the full check (one conversion, MXNet's
  import included), and ``copy, again`` the same with its verdict remembered.

With BASELINE_CHECKOUT (another checkout of the repository, e.g. ``git worktree add /tmp/base main``),
``shipped`` also runs there, interleaved, for the ratio. Models are copied to a temporary folder.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _detect(checkout: str, model: str, image: str, cache: str) -> float:
    env = dict(os.environ, SSD_CACHE_DIR=cache, PYTHONPATH=checkout)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", model, image, "--quiet"], cwd=checkout,
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    import numpy as np
    from PIL import Image

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
    baseline = args[0] if args and os.path.isdir(args[0]) else None
    tmp = tempfile.mkdtemp(prefix="bench-int8-")
    try:
        image = os.path.join(tmp, "x.jpg")
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(image)
        shipped = os.path.join(REPO, "models", "tiny-pikachu")
        copy = os.path.join(tmp, "copy")
        shutil.copytree(shipped, copy)
        with open(os.path.join(copy, "meta.json")) as fh:
            meta = json.load(fh)
        with open(os.path.join(copy, "meta.json"), "w") as fh:
            json.dump(meta, fh)
        times = {k: [] for k in ("baseline shipped", "shipped", "copy", "copy, again")}
        for i in range(runs):
            cache = os.path.join(tmp, f"cache{i}")
            if baseline:
                times["baseline shipped"].append(_detect(baseline, os.path.join(baseline, "models", "tiny-pikachu"),
                                                         image, cache + "b"))
            times["shipped"].append(_detect(REPO, shipped, image, cache))
            times["copy"].append(_detect(REPO, copy, image, cache))
            times["copy, again"].append(_detect(REPO, copy, image, cache))
        base = statistics.median(times["baseline shipped"]) if baseline else None
        for name, ts in times.items():
            if ts:
                med = statistics.median(ts)
                ratio = f"  ({med / base:.2f}x the baseline's shipped)" if base else ""
                print(f"{name:18s} median {med:.2f} s  min {min(ts):.2f}  max {max(ts):.2f}  ({len(ts)} runs){ratio}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
