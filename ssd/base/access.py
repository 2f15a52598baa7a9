"""Who may use the pages that read and write the server's folders: a password, stored hashed.

Why: the Camera traps page runs a folder, shows its photos and sorts them into another folder; the
Train page reads any dataset folder. On a server that listens only on 127.0.0.1 that is the
person at the keyboard; once it listens on a network address, anyone who reaches the port would
read and write wherever the server's process can. So beyond the loopback those pages ask for a
password whose hash is kept in Streamlit's secrets (never the password itself): PBKDF2-HMAC-SHA256
with a random salt (``hash_password``; ``python -m ssd password`` prints the line to store), or a
plain SHA-256 hex digest for those who make one with ``sha256sum``.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from typing import Optional

PBKDF2_ITERATIONS = 600_000          # OWASP's figure for PBKDF2-HMAC-SHA256 (2023)
_SCHEME = "pbkdf2_sha256"
LOCAL_NAMES = frozenset(("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"))


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS, salt: Optional[bytes] = None) -> str:
    """``pbkdf2_sha256$ITERATIONS$SALT$HASH`` (hex) of ``password``: what the secrets file holds."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a ``hash_password`` string or a SHA-256 hex digest);
    compared in constant time. A malformed ``stored`` matches nothing."""
    stored = str(stored or "").strip()
    if stored.startswith(_SCHEME + "$"):
        try:
            _, iterations, salt, digest = stored.split("$")
            mine = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt), int(iterations))
            return hmac.compare_digest(mine.hex(), digest.lower())
        except ValueError:
            return False
    if len(stored) == 64 and all(c in "0123456789abcdefABCDEF" for c in stored):
        return hmac.compare_digest(hashlib.sha256(password.encode("utf-8")).hexdigest(), stored.lower())
    return False


def listens_beyond_loopback(address: Optional[str]) -> bool:
    """Whether a server bound to ``address`` (Streamlit's ``server.address``) can be reached from
    other machines: unset means every interface; a name other than localhost counts as reachable."""
    if not address:
        return True
    name = str(address).strip().strip("[]").lower()
    if name in LOCAL_NAMES:
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True
