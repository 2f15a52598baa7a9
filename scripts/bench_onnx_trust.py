"""Cost of holding a cached model.onnx to its model.params (ssd.inference.onnx_trust), first and later.

    python scripts/bench_onnx_trust.py MODEL_DIR [ARCH ...]

MODEL_DIR is copied into a temporary folder (never changed); each ARCH is a random-weight network
of that architecture at its native size. Each case runs in fresh processes: the first check (one
conversion, MXNet's import included) against a load that only hashes (the verdict remembered), and
against the conversion itself (what the folder's model.onnx saved).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

CHECK = """
import os, sys, time
t0 = time.perf_counter()
from ssd.inference.onnx_export import cache_is_export, ensure_onnx
from ssd.store import read_meta
d = sys.argv[1]
ok = cache_is_export(d, read_meta(d))
print(f"{time.perf_counter() - t0:.2f} {ok} {os.path.getsize(os.path.join(d, 'model.onnx')) / 2**20:.1f}")
"""
RANDOM = """
import sys, mxnet as mx
from ssd.models.registry import recipe_for
from ssd.store import save_model
from ssd.inference.onnx_export import ensure_onnx
arch, d = sys.argv[1], sys.argv[2]
recipe = recipe_for(arch)
meta = {"arch": arch, "classes": ["a", "b", "c"], "input_size": recipe.native_size,
        "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}
if recipe.family == "gluoncv":
    from ssd.models.gluoncv.recipe import new_zoo_model
    net, meta = new_zoo_model(arch, meta["classes"], input_size=meta["input_size"])
else:
    net = recipe.build(meta); net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, meta["input_size"], meta["input_size"])))
save_model(d, net, meta)
ensure_onnx(d)
"""


def _run(code: str, *args: str, env=None) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="bench-trust-")
    env = dict(os.environ, SSD_CACHE_DIR=os.path.join(tmp, "cache"))
    try:
        cases = [("shipped", sys.argv[1])] + [(a, None) for a in sys.argv[2:]]
        for name, src in cases:
            d = os.path.join(tmp, name)
            if src:
                shutil.copytree(src, d)
                _run("import sys; from ssd.inference.onnx_export import ensure_onnx; ensure_onnx(sys.argv[1])", d,
                     env=dict(env, SSD_CACHE_DIR=os.path.join(tmp, "other")))
            else:
                _run(RANDOM, name, d, env=dict(env, SSD_CACHE_DIR=os.path.join(tmp, "other")))
            first, again = _run(CHECK, d, env=env), _run(CHECK, d, env=env)
            print(f"{name}: first check {first.split()[0]} s ({first.split()[1]}), "
                  f"remembered {again.split()[0]} s, model.onnx {first.split()[2]} MB", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
