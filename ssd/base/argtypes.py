"""argparse types that check numbers where they are typed, naming the allowed range.

Why: batch size 0, a threshold of 7 or a negative learning rate used to be accepted and fail later
(or never). ``type=positive_int`` makes argparse print "--batch-size: must be an integer ≥ 1,
got 0" and exit with status 2 before any work starts.
"""
from __future__ import annotations

import argparse
import csv
import functools
import io
import math
from typing import Callable, Dict, Iterable, List


def _number(text: str, kind: Callable[[str], float], what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1 (batch size, epochs, image counts)."""
    value = int(_number(text, int, "an integer ≥ 1"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer ≥ 0 (random seeds, validation image counts)."""
    value = int(_number(text, int, "an integer ≥ 0"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rate)."""
    value = _number(text, float, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number ≥ 0 (weight decay, momentum, hard-negative ratio)."""
    value = _number(text, float, "a number ≥ 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """A score threshold within [0, 1]."""
    value = _number(text, float, "a number within 0–1")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number within 0–1, got {text!r}")
    return value


def nms_threshold(text: str) -> float:
    """An NMS IoU threshold within (0, 1]: 0 would suppress every overlapping box, even touching ones."""
    value = _number(text, float, "a number within (0, 1]")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number within (0, 1], got {text!r}")
    return value


def fraction(text: str) -> float:
    """A share within [0, 1) (validation fraction)."""
    value = _number(text, float, "a number within [0, 1)")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number within [0, 1), got {text!r}")
    return value


#: How a pair of ``--thresholds`` whose name holds a comma is written: quoted whole, value and all.
QUOTED_PAIR_HINT = 'a name holding a comma is quoted with its value, as in CSV: "deer, red=0.3"'


def split_names(text: str, hint: str = 'quote a name holding a comma as "deer, red"') -> List[str]:
    """A comma-separated list whose fields may be quoted as in CSV (``"deer, red",animal``): a species
    model's class names may hold commas or quotes. Fields stripped, blanks dropped. ``hint`` ends a
    refusal: how the caller's fields are quoted."""
    try:
        rows = list(csv.reader([str(text)], skipinitialspace=True, strict=True))
    except csv.Error as err:
        raise argparse.ArgumentTypeError(f"cannot read the list {text!r}: {err} ({hint}; a quote inside it "
                                         "doubled)") from None
    return [field.strip() for row in rows for field in row if field.strip()]


def join_names(fields: Iterable[str]) -> str:
    """The text ``split_names`` reads back as ``fields`` (quoted where a field holds a comma or quote):
    how a page hands class names to a command line."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(list(fields))
    return buf.getvalue()


def class_thresholds(text: str) -> Dict[str, float]:
    """``"animal=0.2,person=0.5"`` → ``{"animal": 0.2, "person": 0.5}``, each value within [0, 1]; a name
    holding a comma is quoted with its value (``"deer, red=0.3"``, ``split_names``)."""
    out: Dict[str, float] = {}
    for part in split_names(text, QUOTED_PAIR_HINT):
        name, sep, value = part.rpartition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected CLASS=THRESHOLD pairs separated by commas "
                                             f"(e.g. animal=0.2,person=0.5), got {part.strip()!r} "
                                             f"({QUOTED_PAIR_HINT})")
        try:
            threshold = probability(value.strip())
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{name.strip()}: {err}") from None
        if out.setdefault(name.strip(), threshold) != threshold:
            raise argparse.ArgumentTypeError(f"{name.strip()!r} is given twice, {out[name.strip()]} and "
                                             f"{threshold}: give each class one threshold")
    if not out:
        raise argparse.ArgumentTypeError("give at least one CLASS=THRESHOLD pair")
    return out


def seconds(text: str) -> float:
    """A duration in seconds > 0 (episode gaps, video frame spacing)."""
    return positive_float(text)


class DefaultsWhereSet(argparse.HelpFormatter):
    """Shows an option's default only where it has one: an unset option (None) takes the
    architecture's default, which its help names, and argparse's "(default: None)" beside "default:
    0.01 for tiny" read as a contradiction; switches' True/False say nothing a user can act on."""

    def _get_help_string(self, action):
        default = action.default
        if (not action.option_strings or default is None or isinstance(default, bool)
                or default is argparse.SUPPRESS or "%(default)" in (action.help or "")):
            return action.help
        return f"{action.help} (default: %(default)s)" if action.help else "default: %(default)s"


GIVEN = "given_options"   # the namespace attribute ``record_given`` fills


def record_given(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` note on its namespace (``GIVEN``, a set of dests) every option typed.

    Why: to argparse an option left out and one typed with its default value are the same, and
    ``train --resume`` must take the run's own value for the first and compare the second."""
    for action in parser._actions:
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            action.__class__ = _noting(type(action))


@functools.lru_cache(maxsize=None)
def _noting(cls: type) -> type:
    def __call__(self, parser, namespace, values, option_string=None):  # noqa: N807 - argparse's
        setattr(namespace, GIVEN, set(getattr(namespace, GIVEN, ())) | {self.dest})
        cls.__call__(self, parser, namespace, values, option_string)

    return type(f"Noting{cls.__name__}", (cls,), {"__call__": __call__})
