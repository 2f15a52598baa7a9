"""What the .params header check costs next to MXNet's own load of the same file.

    python scripts/bench_params_check.py [PARAMS ...]

For the shipped ``models/tiny-pikachu/model.params`` (or the files given) and a ~120 MB file of random
float32 weights in an SSD512-like layout (written to a temporary folder), prints the median of
``check_params_file`` and of ``mx.nd.load`` over several runs, and their ratio. Files are read from
the page cache after the first run (a cold disk would add the same seek costs to both).
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ssd.base.params_file import check_params_file  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(REPO, "models", "tiny-pikachu", "model.params")


def median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def big_params(folder: str) -> str:
    """~120 MB of float32 in 65 arrays: 13 convolutions of 512x512x3x3 plus their biases and BN."""
    import mxnet as mx
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {}
    for i in range(13):
        arrays[f"features.{i}.weight"] = mx.nd.array(rng.standard_normal((512, 512, 3, 3), dtype=np.float32) * 0.01)
        for part in ("bias", "gamma", "beta", "running_mean"):
            arrays[f"features.{i}.{part}"] = mx.nd.array(rng.standard_normal(512, dtype=np.float32))
    path = os.path.join(folder, "ssd512.params")
    mx.nd.save(path, arrays)
    return path


def main(paths) -> None:
    import mxnet as mx

    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print(f"machine: {model}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for path in list(paths) + [big_params(tmp)]:
            mb = os.path.getsize(path) / 1e6
            check = median_s(lambda: check_params_file(path), 50)
            load = median_s(lambda: mx.nd.load(path), 5)
            print(f"{os.path.basename(path):20s} {mb:7.1f} MB  check {check * 1e3:7.3f} ms  "
                  f"mx.nd.load {load * 1e3:8.1f} ms  check/load {check / load:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:] or [SHIPPED])
