"""``python -m ssd detect``: detect objects in images and folders; table, MegaDetector JSON, CSV.

Arguments only: the run itself is ``ssd.camtrap.batch_run.run_batch``, shared with the app's
camera-trap jobs.
"""
from __future__ import annotations

import argparse
import sys

from ssd.base.signals import stop_requests
from ssd.base.text import terminal_safe


def register(sub) -> None:
    from ssd.camtrap.settings import RunSettings

    d = sub.add_parser("detect", help="detect objects in images or folders (camera-trap batches)")
    RunSettings.add_arguments(d)
    d.add_argument("--quiet", action="store_true", help="no table on stdout")
    d.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> int:
    from ssd.base.atomic import check_output_targets
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.results import text_table
    from ssd.camtrap.settings import RunSettings

    opts = RunSettings.from_args(args)
    check_output_targets(opts.out_json, opts.out_csv)
    with stop_requests(second_interrupts=True) as stop:
        res = run_batch(opts, stop=stop)
    if res.stopped:
        print(f"stopped after {res.processed}/{res.total} images; the checkpoint is {terminal_safe(res.checkpoint)}: "
              "run the same command with --resume to continue", file=sys.stderr)
        return 130
    for message in res.failure_messages:
        print(f"error: {terminal_safe(message)}", file=sys.stderr)
    if not args.quiet:
        print(text_table(res.document, args.threshold))
    hidden = f", {res.hidden_skipped} hidden file(s) skipped" if res.hidden_skipped else ""
    suspects = f", {res.suspects} repeated detection(s) flagged suspect" if res.suspects else ""
    print(f"{res.total - res.failures} image(s) processed, {res.failures} failed{hidden}{suspects}", file=sys.stderr)
    return 0 if res.failures == 0 else 1
