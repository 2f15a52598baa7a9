"""Error types that carry a message meant for a person, not a traceback.

The CLI prints ``str(err)`` of these on one line and exits non-zero; the app shows them
next to the file they concern. Anything else escaping is a bug.
"""


class SSDError(Exception):
    """Base class: the message is complete and user-facing."""

    #: Whether the message is several lines by design (each already escaped where it quotes
    #: outside text): the CLI then prints its line breaks, not ``\\n`` escapes.
    multiline = False


class ImageError(SSDError):
    """An image could not be used (not an image, truncated, empty, too large...)."""


class DatasetError(SSDError):
    """A dataset folder is missing, malformed or of an unknown layout."""


class ModelError(SSDError):
    """A saved model is missing or does not load."""


class DownloadError(SSDError):
    """A download failed (offline, host gone, checksum mismatch); says where to put files by hand."""


class JobError(SSDError):
    """A training job could not be started or controlled (e.g. one is already running)."""


def error_gist(err: BaseException, limit: int = 300) -> str:
    """The informative line of an exception message.

    MXNet errors embed a C++ stack ("Traceback (most recent call last): ... File ...") before the
    actual reason; showing a person that first line says nothing. Prefer the line that states the
    failed check, else the last non-empty line that is not a stack frame.
    """
    lines = [l.strip() for l in str(err).splitlines() if l.strip()]
    if not lines:
        return type(err).__name__
    for line in reversed(lines):
        if "Check failed" in line or "Error" in line.split(":")[0]:
            return line[:limit]
    frames = ("Traceback", "File ", "[bt]", "Stack trace")
    meaningful = [l for l in lines if not l.startswith(frames) and not l[:1].isdigit()]
    return (meaningful[-1] if meaningful else lines[-1])[:limit]


class OutputError(SSDError):
    """An output file cannot be written where asked (missing folder, not a regular file...)."""
