"""A thread-safe least-recently-used cache bounded both in entries and in bytes.

Why it exists: a Streamlit server is one long-lived process shared by every session; a cache
bounded only by count (``st.cache_data(max_entries=…)``) still grows with the size of what it
holds (a batch of photos, figures of a large image), and one bounded by nothing grows forever.
Every cache of the app that holds data (detections with their pictures, rendered figures) is one
of these, with its limits named where it is made.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Generic, Hashable, Optional, Tuple, TypeVar

V = TypeVar("V")


class BytesLRU(Generic[V]):
    """``get`` / ``put`` with the size of each value given by the caller; the oldest go first."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        self.max_bytes, self.max_entries = int(max_bytes), int(max_entries)
        self._items: "OrderedDict[Hashable, Tuple[V, int]]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> Optional[V]:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: Hashable, value: V, nbytes: int) -> None:
        """Store ``value`` (``nbytes`` large); a value over the whole budget is not kept at all."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if nbytes > self.max_bytes:
                return
            self._items[key] = (value, int(nbytes))
            self._bytes += int(nbytes)
            while self._items and (self._bytes > self.max_bytes or len(self._items) > self.max_entries):
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def stats(self) -> Any:
        """``{"entries", "bytes", "max_entries", "max_bytes"}`` (for a memory report)."""
        return {"entries": len(self._items), "bytes": self._bytes, "max_entries": self.max_entries,
                "max_bytes": self.max_bytes}
