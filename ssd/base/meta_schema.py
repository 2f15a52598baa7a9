"""The schema of a model's ``meta.json``: what each field the code reads must be.

Why: metadata comes from other people (shared model folders) and older versions. Checking it once,
when it is read, turns ``"metrics": {"best": []}`` into "metrics.best must be an object" on one
broken folder instead of an AttributeError on every page that lists models.
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Callable, List, Tuple

_Check = Tuple[str, Callable[[Any], bool], str, bool]   # (dotted path, test, expected, required)

#: Largest meta.json read: ours are a few kB (a long training history, tens); a stranger's may be anything.
MAX_META_BYTES = 16 * 1024 * 1024


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


#: Most classes a model may name, and the longest name: LVIS has 1,203 and iNaturalist 10,000; a stranger's
#: million-name list only ended in a puzzle about weight shapes.
MAX_CLASSES, MAX_CLASS_NAME = 10_000, 200


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, str) and x for x in v)


def _class_names(v: Any) -> bool:
    """Distinct names (results and class reuse go by name), within ``MAX_CLASSES`` and ``MAX_CLASS_NAME``."""
    return (_str_list(v) and len(v) <= MAX_CLASSES and len(set(v)) == len(v)
            and all(len(x) <= MAX_CLASS_NAME for x in v))


def _three_numbers(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(_is_num(x) for x in v)


_CHECKS: List[_Check] = [
    ("arch", lambda v: isinstance(v, str) and bool(v), "a non-empty string", True),
    ("classes", _class_names, f"a non-empty list of distinct names (at most {MAX_CLASSES:,}, each up to "
                              f"{MAX_CLASS_NAME} characters)", True),
    ("input_size", lambda v: _is_int(v) and 16 <= v <= 4096, "an integer within 16..4096", True),
    ("name", lambda v: isinstance(v, str), "a string", False),
    ("status", lambda v: isinstance(v, str), "a string", False),
    ("format", lambda v: isinstance(v, str), "a string", False),
    ("default", lambda v: isinstance(v, bool), "true or false", False),
    ("anchors", lambda v: isinstance(v, dict), "an object", False),
    ("normalize", lambda v: isinstance(v, dict), "an object", False),
    ("normalize.mean", _three_numbers, "three numbers", False),
    ("normalize.std", lambda v: _three_numbers(v) and all(x > 0 for x in v), "three positive numbers", False),
    ("dataset", lambda v: isinstance(v, dict), "an object", False),
    ("training", lambda v: isinstance(v, dict), "an object", False),
    ("training.args", lambda v: isinstance(v, dict), "an object", False),
    ("versions", lambda v: isinstance(v, dict), "an object", False),
    ("export", lambda v: isinstance(v, dict), "an object", False),
    ("zoo", lambda v: isinstance(v, dict), "an object", False),
    ("source", lambda v: isinstance(v, dict), "an object", False),
    ("source.published", lambda v: isinstance(v, dict), "an object", False),
    ("class_mapping", lambda v: v is None or isinstance(v, list), "a list or null", False),
    ("metrics", lambda v: isinstance(v, dict), "an object", False),
    ("metrics.best", lambda v: isinstance(v, dict), "an object", False),
    ("metrics.best.val_map", _is_num, "a number", False),
    ("metrics.best.epoch", _is_int, "an integer", False),
    ("metrics.best.val_ap", lambda v: isinstance(v, dict) and all(x is None or _is_num(x) for x in v.values()),
     "an object of numbers", False),
    ("metrics.history", lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
     "a list of objects", False),
    ("metrics.pr_curves", lambda v: isinstance(v, dict), "an object", False),
]

_MISSING = object()


def _lookup(meta: Any, dotted: str) -> Any:
    cur = meta
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def meta_problems(meta: Any) -> List[str]:
    """Every way ``meta`` breaks the schema, one short phrase each (empty when it is fine)."""
    if not isinstance(meta, dict):
        return ["the file must hold a JSON object"]
    problems = []
    for path, test, expected, required in _CHECKS:
        value = _lookup(meta, path)
        if value is _MISSING:
            if required:
                problems.append(f"'{path}' is missing")
            continue
        if value is None and not required and path != "class_mapping":
            continue  # null reads as absent
        if not test(value):
            problems.append(f"'{path}' must be {expected}")
    return problems
