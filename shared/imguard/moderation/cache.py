"""Verdicts CI already gave, kept for a while: a spam flood of one text or one image costs one CI call.

Only definite verdicts are kept (pass, block, suspicious); a failure or a timeout
is asked again next time. Keys are the sha256 of the text and the image URL, so
the cache holds no message text. It is per warm instance, bounded in size, and
safe to share between the threads that answer concurrent callbacks.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Callable, Optional, Tuple

from imguard.logs import text_sha256
from imguard.moderation.verdict import Outcome, Verdict

MAX_ENTRIES = 20_000
_KEPT = (Outcome.PASS, Outcome.BLOCK, Outcome.SUSPICIOUS)

Key = Tuple[str, str]


def text_key(text: str) -> Key:
    return ("text", text_sha256(text))


def image_key(url: str) -> Key:
    return ("image", url)


class VerdictCache:
    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic):
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: "OrderedDict[Key, Tuple[float, Verdict]]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Key, check: str) -> Optional[Verdict]:
        """The kept verdict, renamed for this check and marked as cached; None when there is none."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return replace(entry[1], check=check, latency_ms=0.0, detail="cached")

    def put(self, key: Key, verdict: Verdict) -> Verdict:
        if verdict.outcome in _KEPT:
            with self._lock:
                self._entries[key] = (self._clock() + self._ttl_s, verdict)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return verdict

    def __len__(self) -> int:
        return len(self._entries)
