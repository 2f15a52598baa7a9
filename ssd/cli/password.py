"""``python -m ssd password``: the secrets lines that let the Camera traps and Train pages open on a
server reachable from other machines (only the hash is printed, never the password)."""
from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("password", help="print the hashed password to put in .streamlit/secrets.toml",
                       description="Ask for a password twice (from a pipe: its first line, once) and print the [auth] lines for "
                                   ".streamlit/secrets.toml: PBKDF2-SHA256 with a random salt. The app asks "
                                   "for it on the Camera traps and Train pages when it listens beyond 127.0.0.1.")
    p.set_defaults(func=cmd_password)


def _ask() -> str:
    """The password: typed twice at a terminal (a typo would lock the user out), else the first line
    of standard input (``echo … | ssd password`` in a script), which cannot be asked again."""
    import getpass

    from ssd.base.errors import SSDError

    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise SSDError("no password on standard input; type one at a terminal, or pipe it in")
        return line.rstrip("\r\n")
    try:
        first = getpass.getpass("password: ")
        again = getpass.getpass("again: ")
    except EOFError:
        raise SSDError("no password given; nothing was printed") from None
    if again != first:
        raise SSDError("the two passwords differ; nothing was printed")
    return first


def cmd_password(args: argparse.Namespace) -> int:
    from ssd.base.access import hash_password
    from ssd.base.errors import SSDError

    first = _ask()
    if len(first) < 8:
        raise SSDError("use a password of at least 8 characters")
    print("# .streamlit/secrets.toml (keep it out of version control), then restart the app")
    print("[auth]")
    print(f'password_hash = "{hash_password(first)}"')
    print("hashed with PBKDF2-SHA256; the password itself is stored nowhere", file=sys.stderr)
    return 0
