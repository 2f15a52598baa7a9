"""A download's ``.part`` file and what is kept beside it (``.part.validator``).

Why a file of its own: resuming a part is only safe while the file on the server is the one the
part began with. The ETag / Last-Modified of the response that started the part are kept beside
it (atomically), sent back as ``If-Range`` on resume, and removed with the part.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from ssd.base.atomic import atomic_write_json
from ssd.base.json_file import read_json_file
from ssd.base.meta_schema import MAX_META_BYTES

#: Beside ``dest + '.part'``: the validators of the response that started the part file.
VALIDATOR_SUFFIX = ".validator"


def record_validators(part: str, headers: Any) -> None:
    """Keep the ETag / Last-Modified of the response that starts ``part`` beside it (or none)."""
    found = {key: headers[name] for key, name in (("etag", "ETag"), ("last_modified", "Last-Modified"))
             if headers.get(name)}
    if found:
        atomic_write_json(part + VALIDATOR_SUFFIX, found)
    else:
        remove_quietly(part + VALIDATOR_SUFFIX)


def recorded_validators(part: str) -> dict:
    """What ``record_validators`` kept for ``part`` ({} when nothing, or nothing readable, was)."""
    try:
        found = read_json_file(part + VALIDATOR_SUFFIX, MAX_META_BYTES)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else {}


def if_range(recorded: dict) -> Optional[str]:
    """The validator for ``If-Range``: a strong ETag, else Last-Modified (a weak ETag is not allowed)."""
    etag = recorded.get("etag")
    return etag if etag and not etag.startswith("W/") else recorded.get("last_modified")


def drop_part(part: str) -> None:
    """Remove a part file and the validators kept beside it (starting over)."""
    remove_quietly(part)
    remove_quietly(part + VALIDATOR_SUFFIX)


def remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
