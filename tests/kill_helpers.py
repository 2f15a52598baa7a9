"""Killing a batch run half-way, as a crash would: shared by the photo and the video resume tests."""
import os
import signal
import subprocess
import sys
import time


def kill9_after_first_checkpoint(repo: str, argv, checkpoint, output, timeout: float = 240) -> None:
    """Start ``python -m ssd`` with ``argv``, SIGKILL it as soon as ``checkpoint`` exists, and check
    that it really died half-way (journal there, results not written)."""
    proc = subprocess.Popen([sys.executable, "-m", "ssd", *map(str, argv)], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not output.exists(), "the run ended before it could be killed half-way"
