"""MXNet's C++ start banner (``… engine.cc:54: MXNet start using engine: NaiveEngine``) stays off
the terminal of ``detect --engine mxnet``; everything else MXNet writes still shows."""
from __future__ import annotations

import os
import subprocess
import sys

from PIL import Image

from conftest import REPO_ROOT, SHIPPED_MODEL


def test_detect_with_mxnet_prints_no_engine_banner_but_says_what_ran(tmp_path):
    Image.new("RGB", (64, 48), (30, 120, 40)).save(tmp_path / "a.jpg")
    env = {k: v for k, v in os.environ.items() if k != "MXNET_ENGINE_TYPE"}
    env.update(PYTHONPATH=REPO_ROOT, SSD_FORCE_CPU="1")
    done = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", SHIPPED_MODEL, "--engine", "mxnet",
                           str(tmp_path / "a.jpg")], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "start using engine" not in done.stderr and "engine.cc" not in done.stderr
    assert "engine: mxnet" in done.stderr and "on CPU" in done.stderr


def test_only_the_banner_is_dropped_from_what_was_written_meanwhile(capfd):
    from ssd.base.engine import BANNER, _stderr_without

    with _stderr_without(BANNER):
        os.write(2, b"[12:00:00] ../src/engine/engine.cc:54: MXNet start using engine: NaiveEngine\n")
        os.write(2, b"[12:00:00] ../src/storage/storage.cc:1: another message\n")
        print("from Python", file=sys.stderr)
    err = capfd.readouterr().err
    assert "start using engine" not in err
    assert "another message" in err and "from Python" in err
