"""Every message a page shows about an error goes through ``md_escape``.

Why: ``st.error``/``st.warning``/``st.info`` render Markdown, and an exception's text quotes names
from outside (dataset files, uploads, model folders, paths): a name like ``[x](http://evil)`` must
show as text, not as a link. A page that passes an exception in unescaped is named here.
"""
from __future__ import annotations

import ast
import glob
import os

from conftest import REPO_ROOT

SHOWN = {"error", "warning", "info", "success", "toast"}
ESCAPES = {"md_escape", "_plain"}


def _unescaped_names(node: ast.AST, exceptions: set) -> list:
    """Exception variables used in ``node`` outside any escaping call."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in ESCAPES:
        return []
    if isinstance(node, ast.Name) and node.id in exceptions:
        return [node.id]
    return [n for child in ast.iter_child_nodes(node) for n in _unescaped_names(child, exceptions)]


def _exception_names(tree: ast.AST) -> set:
    return {h.name for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler) and h.name}


def test_no_page_shows_an_exception_as_markdown():
    found = []
    for path in sorted(glob.glob(os.path.join(REPO_ROOT, "app_pages", "*.py")) + [os.path.join(REPO_ROOT, "app.py")]):
        tree = ast.parse(open(path, encoding="utf-8").read())
        exceptions = _exception_names(tree)
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in SHOWN:
                for arg in call.args[:1]:
                    if _unescaped_names(arg, exceptions):
                        found.append(f"{os.path.relpath(path, REPO_ROOT)}:{call.lineno}")
    assert found == [], "pass the exception through md_escape: " + ", ".join(found)


def test_the_check_sees_an_unescaped_exception():
    tree = ast.parse("try:\n    f()\nexcept OSError as err:\n    st.error(f'no: {err}')\n    st.info(md_escape(err))\n")
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "attr", "") in SHOWN]
    flagged = [c.func.attr for c in calls if _unescaped_names(c.args[0], _exception_names(tree))]
    assert flagged == ["error"]
