"""The pages' guards: a password beyond the loopback (``require_access``), folders under the photo
roots (``allowed_path``). The rules are the library's (``ssd.base.access``, ``ssd.workspace``);
this module only reads Streamlit's option and secrets and draws the form.

Secrets (``.streamlit/secrets.toml``, never in the repository)::

    [auth]
    password_hash = "pbkdf2_sha256$600000$…"     # python -m ssd password
    [paths]
    photo_roots = ["/data/seasons", "/mnt/cards"]  # else SSD_PHOTO_ROOTS, else data folder + home
"""
from __future__ import annotations

from typing import Any, List, Optional

import streamlit as st

from ssd.base.access import check_password, listens_beyond_loopback
from ssd.base.errors import SSDError
from ssd.base.text import md_escape
from ssd.workspace import check_photo_path, photo_roots

_UNLOCKED = "_access_unlocked"


def _secret(section: str, key: str) -> Optional[Any]:
    """``st.secrets[section][key]``, or None (no secrets file, no such entry)."""
    try:
        return (st.secrets.get(section) or {}).get(key)
    except Exception:  # noqa: BLE001 - no secrets file, or one that does not parse: nothing is set
        return None


def require_access(page: str) -> None:
    """Stop the page unless the server listens only on the loopback, or this session gave the password."""
    if not listens_beyond_loopback(st.get_option("server.address")) or st.session_state.get(_UNLOCKED):
        return
    stored = _secret("auth", "password_hash") or _secret("auth", "password_sha256")
    st.title(page)
    if not stored:
        st.warning("This server can be reached from other computers (server.address is not 127.0.0.1), and "
                   "this page reads and writes the server's folders, so it needs a password. Run "
                   "`python -m ssd password` and put the two lines it prints into `.streamlit/secrets.toml`, "
                   "then restart the app; or start it with `--server.address 127.0.0.1`.")
        st.stop()
    with st.form("access_form"):
        given = st.text_input("Password", type="password", key="access_password")
        sent = st.form_submit_button("Unlock")
    if sent and check_password(given or "", str(stored)):
        st.session_state[_UNLOCKED] = True
        st.rerun()
    if sent:
        st.error("Wrong password.")
    st.stop()


def roots() -> List[str]:
    """The photo roots (``SSD_PHOTO_ROOTS``, else ``[paths] photo_roots`` in the secrets, else defaults)."""
    setting = _secret("paths", "photo_roots")
    return photo_roots(setting if isinstance(setting, (list, tuple)) else None)


def allowed_path(path: str, what: str) -> Optional[str]:
    """``path`` resolved if it lies under the photo roots; else the reason is shown and None returned."""
    try:
        return check_photo_path(path, what, roots())
    except SSDError as err:
        st.error(md_escape(err))
        return None
