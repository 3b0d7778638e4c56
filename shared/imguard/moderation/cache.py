"""Verdicts CI already gave, kept for a while: a spam flood of one text or one image costs one CI call.

Only definite verdicts are kept (pass, block, suspicious); a failure or a timeout
is asked again next time. Keys are the sha256 of the text or the image URL, so
the cache holds no message text, and a long URL costs no more than a short one.
It is per warm instance, bounded in entries and in bytes (CI's keywords are
pieces of the text and can be long), and safe to share between the threads that
answer concurrent callbacks.
"""
from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Callable, Optional, Tuple

from imguard.moderation.verdict import Outcome, Verdict

MAX_ENTRIES = 20_000
MAX_BYTES = 8 * 1024 * 1024  # estimated as in _entry_size; the least recently used go first beyond it
# What every entry costs besides its strings: the OrderedDict slot and links, the key and entry tuples,
# the digest, the expiry float, the Verdict and its attribute dict: about 500 bytes with tracemalloc on
# CPython 3.9 to 3.13, rounded up.
ENTRY_OVERHEAD_BYTES = 600
_KEPT = (Outcome.PASS, Outcome.BLOCK, Outcome.SUSPICIOUS)

Key = Tuple[str, bytes]


def _digest(value: str) -> bytes:
    # The raw 32 bytes, not hex: half the size, and nobody reads a cache key.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def text_key(text: str, biz_type: str = "") -> Key:
    # A verdict holds for the CI policy (BizType) that gave it: scenes may use different ones.
    return ("text:" + biz_type, _digest(text))


def image_key(url: str, biz_type: str = "") -> Key:
    return ("image:" + biz_type, _digest(url))


def _entry_size(verdict: Verdict) -> int:
    strings = (verdict.label, verdict.sub_label, *verdict.keywords)
    return ENTRY_OVERHEAD_BYTES + sys.getsizeof(verdict.keywords) + sum(sys.getsizeof(s) for s in strings)


class VerdictCache:
    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic):
        self._ttl_s = ttl_s
        self._max = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: "OrderedDict[Key, Tuple[float, Verdict, int]]" = OrderedDict()  # expiry, verdict, size
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        """The estimated size of what is kept."""
        return self._bytes

    def get(self, key: Key, check: str) -> Optional[Verdict]:
        """The kept verdict, renamed for this check and marked as cached; None when there is none."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                if entry is not None:
                    self._remove(key)
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return replace(entry[1], check=check, latency_ms=0.0, detail="cached")

    def put(self, key: Key, verdict: Verdict) -> Verdict:
        if verdict.outcome in _KEPT:
            # get() sets these three anew; dropping them here keeps a long error or rule detail out of memory.
            kept = replace(verdict, check="", latency_ms=None, detail="")
            size = _entry_size(kept)
            with self._lock:
                if key in self._entries:
                    self._remove(key)
                self._entries[key] = (self._clock() + self._ttl_s, kept, size)
                self._bytes += size
                while len(self._entries) > self._max or self._bytes > self._max_bytes:
                    self._remove(next(iter(self._entries)))
        return verdict

    def _remove(self, key: Key) -> None:
        self._bytes -= self._entries.pop(key)[2]

    def __len__(self) -> int:
        return len(self._entries)
