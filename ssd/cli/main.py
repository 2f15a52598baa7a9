"""``python -m ssd``: make data, train, detect, evaluate, export, list models, work with batch results.

Each command lives in its own module of this package and registers its sub-parser; the
commands call the same library functions as the app. User errors (``SSDError``) print one
line on stderr and exit with status 2; nothing a person can cause should end in a traceback (a
full disk or a refused permission is an ``OSError``: one line too). Messages quote names from
outside, so they are printed with control characters escaped (``terminal_safe``).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from ssd.base.errors import SSDError
from ssd.base.text import terminal_safe
from ssd.cli import data, detect, evaluate, export, launch, models, password, quantize, results, train

COMMANDS = (data, train, detect, evaluate, export, models, results, quantize, launch, password)


def program_name() -> str:
    """How the user called us: ``ssd`` (the installed command) or ``python -m ssd``."""
    return "ssd" if os.path.basename(sys.argv[0] or "") == "ssd" else "python -m ssd"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=program_name(), description="SSD object detection: data, training, "
                                "detection and evaluation (MXNet + GluonCV).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    _describe(p)
    return p


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give each sub-command without a description its one-line help as one: ``ssd detect --help``
    then says what the command does before listing its options, as the command list does."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                child = action.choices[choice.dest]
                if child.description is None and choice.help:
                    child.description = choice.help[:1].upper() + choice.help[1:] + "."
                _describe(child)


def _stdout_gone() -> bool:
    """True when the process's standard output is a pipe whose reader has closed it (POLLERR)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ssd.base.engine import configure, kind_of_command
    configure(kind_of_command(args.command))  # before any command imports MXNet
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()   # inside the try: a reader that went away (``| head``) is seen here
        return status
    except BrokenPipeError:
        if not _stdout_gone():
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # so the exit flush is quiet too
        return 141   # 128 + SIGPIPE, what a shell reports for a command whose reader left
    except SSDError as err:
        print(f"error: {terminal_safe(err, keep_newlines=err.multiline)}", file=sys.stderr)
        return 2
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        print(f"error: {terminal_safe(f'{err.strerror or err}{where}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
