"""The library's shape in numbers, at any commit: files per package, the longest files and functions.

Why a script: docs/ARCHITECTURE.md compares the layout before and after a reshaping; anyone can
recompute those figures for any revision (``git`` must be on the PATH; nothing is imported or run
from the revision, its files are parsed with ``ast``).

    python scripts/layout_report.py            # the working tree
    python scripts/layout_report.py 286dfb7    # a commit
"""
from __future__ import annotations

import argparse
import ast
import collections
import subprocess
from typing import Dict, Iterator, List, Optional, Tuple

ROOTS = ("ssd/", "app_pages/", "app.py")
FILE_LIMIT, FUNCTION_LIMIT = 400, 60


def _sources(rev: Optional[str]) -> Iterator[Tuple[str, str]]:
    """(path, text) of every Python file under ROOTS, at ``rev`` or in the working tree."""
    if rev:
        names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev], check=True, capture_output=True,
                               text=True).stdout.split()
    else:
        names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], check=True,
                               capture_output=True, text=True).stdout.split()
    for name in sorted(n for n in names if n.endswith(".py") and n.startswith(ROOTS)):
        if rev:
            text = subprocess.run(["git", "show", f"{rev}:{name}"], check=True, capture_output=True, text=True).stdout
        else:
            with open(name, encoding="utf-8") as f:
                text = f.read()
        yield name, text


def _functions(text: str) -> List[Tuple[int, str]]:
    """(lines, name) of every function and method."""
    out = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node.end_lineno - node.lineno + 1, node.name))
    return out


def _package(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[:2]) + ("/" if len(parts) > 2 else "") if parts[0] == "ssd" else parts[0]


def report(rev: Optional[str]) -> Dict[str, object]:
    per_package: Dict[str, int] = collections.Counter()
    files, functions = [], []
    for path, text in _sources(rev):
        per_package[_package(path)] += 1
        files.append((text.count("\n"), path))
        functions += [(n, f"{path}:{name}") for n, name in _functions(text)]
    files.sort(reverse=True)
    functions.sort(reverse=True)
    return {"files per package": dict(sorted(per_package.items())), "longest file": files[0],
            "longest function": functions[0],
            f"files over {FILE_LIMIT} lines": [f for f in files if f[0] > FILE_LIMIT],
            f"functions over {FUNCTION_LIMIT} lines": [f for f in functions if f[0] > FUNCTION_LIMIT]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev", nargs="?", help="a commit (default: the working tree)")
    for key, value in report(p.parse_args().rev).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
