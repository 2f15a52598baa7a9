"""``python -m ssd detect``: detect objects in images and folders; table, MegaDetector JSON, CSV.

Arguments only: the run itself is ``ssd.camtrap.batch_run.run_batch``, shared with the app's
camera-trap jobs.

Why a file that cannot be read does not fail the command: a season holds thousands of photos and a
few are always truncated or not photos at all; each is an entry with its ``failure`` in the results
(as MegaDetector writes it), so a script that checks the exit status must still go on to the
results. Only a run that did not complete exits non-zero (``EXIT_CODES``).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
from typing import Optional, Tuple

from ssd.base.errors import OutputError
from ssd.base.signals import stop_requests
from ssd.base.text import terminal_safe

#: What ``detect`` exits with (its ``--help`` prints them; the README and docs/CAMERA_TRAPS.md too).
EXIT_COMPLETED, EXIT_STOPPED = 0, 130     # 2: an SSDError, as for every command (ssd.cli.main)
EXIT_CODES = """exit status:
  0    the run completed: every image is in the results; those that could not be read carry their
       reason ("failure") there and are listed on stderr
  2    the run did not complete: bad arguments, a model or folder that cannot be used, an output
       that cannot be written (the message says which)
  130  stopped by Ctrl-C or SIGTERM: the checkpoint is kept, --resume goes on from it
  1    an unexpected error (a bug: the traceback says where)"""


def register(sub) -> None:
    from ssd.camtrap.settings import RunSettings

    d = sub.add_parser("detect", help="detect objects in images or folders (camera-trap batches)",
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    RunSettings.add_arguments(d)
    d.add_argument("--quiet", action="store_true", help="no table on stdout")
    d.set_defaults(func=cmd_detect)


STOP_NOTICE = ("stopping after the current file (a long video may take a while); the run can then be "
               "continued with --resume. Press Ctrl-C again to stop at once (the current file is redone)")


def cmd_detect(args: argparse.Namespace) -> int:
    from ssd.base.atomic import check_output_targets
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.results import write_results_csv, write_text_table
    from ssd.camtrap.species import species_names
    from ssd.camtrap.settings import RunSettings

    opts = RunSettings.from_args(args)
    opts, to_stdout = _stdout_outputs(opts)
    check_output_targets(opts.out_json, opts.out_csv)
    _note_replaced(opts)
    with stop_requests(second_interrupts=True, notice=STOP_NOTICE) as stop:
        res = run_batch(opts, stop=stop)
    if res.stopped:
        print(f"stopped after {res.processed}/{res.total} images; the checkpoint is {terminal_safe(res.checkpoint)}: "
              "run the same command with --resume to continue", file=sys.stderr)
        return EXIT_STOPPED
    for message in res.failure_messages:
        print(f"error: {terminal_safe(message)}", file=sys.stderr)
    if to_stdout == "json":
        _copy_results(res)
    elif to_stdout == "csv":
        write_results_csv(sys.stdout, res.head["detection_categories"], res.entries(), res.time_source,
                          species_names(res.head))
    elif not args.quiet:
        write_text_table(sys.stdout, res.head["detection_categories"], res.entries, args.threshold)
    hidden = f", {res.hidden_skipped} hidden file(s) skipped" if res.hidden_skipped else ""
    if res.companions_skipped:
        hidden += f", {res.companions_skipped} results or database file(s) skipped (JSON, CSV, XLSX, Timelapse)"
    suspects = f", {res.suspects} repeated detection(s) flagged suspect" if res.suspects else ""
    cut = f", {res.cut_short} video(s) cut short (\"warning\" in their entries)" if res.cut_short else ""
    print(f"{res.total - res.failures} image(s) processed, {res.failures} failed{cut}{hidden}{suspects}",
          file=sys.stderr)
    return EXIT_COMPLETED


def _note_replaced(opts) -> None:
    """Say which existing results files this run replaces when it finishes (MegaDetector's batch
    run warns too): an earlier season's file, perhaps another model's, named again by mistake is
    still whole until then, so a Ctrl-C now keeps it. A resumed run finishes its own file: no note."""
    if opts.resume:
        return
    for dest in (opts.out_json, opts.out_csv):
        if dest and os.path.isfile(dest):
            print(f"note: {terminal_safe(dest)} exists: this run replaces it when it finishes (until then it is "
                  "left as it is)", file=sys.stderr)


def _copy_results(res) -> None:
    """``--json -``: the results file as the run wrote it, copied to stdout (one entry per line,
    valid JSON for jq or a pipe); parsing a season's document to print it took gigabytes."""
    if isinstance(res.results, str):
        with open(res.results, encoding="utf-8") as fh:
            shutil.copyfileobj(fh, sys.stdout)
        return
    res.results.seek(0)
    shutil.copyfileobj(res.results, sys.stdout)


def _stdout_outputs(opts) -> Tuple[object, Optional[str]]:
    """``--json -`` or ``--csv -``: that output goes to stdout (alone: no table), as a pipe expects,
    instead of a file named ``-``; returns the settings without it and ``"json"``/``"csv"``/None."""
    dash = [name for name, dest in (("json", opts.out_json), ("csv", opts.out_csv)) if dest == "-"]
    if len(dash) > 1:
        raise OutputError("--json - and --csv - both ask for stdout: send one of them to a file")
    if not dash:
        return opts, None
    return dataclasses.replace(opts, **{f"out_{dash[0]}": None}), dash[0]
