"""Whether a ``.json`` file is MegaDetector batch results, from its first few kilobytes only.

Why: the Camera traps page lists the results files of its run folders, on every rerun. Listing any
``.json`` offered files that are not results (a COCO dataset, a note, a decisions file), and opening
each whole to check would read gigabytes per rerun at a season's size. The first ``SNIFF_BYTES`` are
enough to see the document's shape, and the answer is kept per file version (path, size, mtime).
"""
from __future__ import annotations

import re

from ssd.base.file_cache import per_file_version

#: How much of a file is read to tell results from other JSON: a results document names its
#: ``images`` list, or its ``detection_categories``, within its first lines.
SNIFF_BYTES = 8192

# "images": [ followed by an entry with a "file" (COCO's image entries have "file_name"), or empty
_IMAGES = re.compile(rb'"images"\s*:\s*\[\s*(?:\]|\{.*?"file"\s*:)', re.S)
_CATEGORIES = re.compile(rb'"detection_categories"\s*:\s*\{')


def _prefix(path: str) -> bytes:
    """The first ``SNIFF_BYTES`` of ``path`` (b"" when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except OSError:
        return b""


@per_file_version(maxsize=4096, missing=False)
def is_results_file(path: str, size: int) -> bool:
    """Whether ``path`` starts as a MegaDetector results document: a JSON object naming its
    ``detection_categories`` or an ``images`` list of ``file`` entries (either comes first)."""
    head = _prefix(path).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and bool(_CATEGORIES.search(head) or _IMAGES.search(head))
