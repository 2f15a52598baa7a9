"""Error types that carry a message meant for a person, not a traceback.

The CLI prints ``str(err)`` of these on one line and exits non-zero; the app shows them
next to the file they concern. Anything else escaping is a bug.
"""


class SSDError(Exception):
    """Base class: the message is complete and user-facing."""


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
