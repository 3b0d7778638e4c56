"""Sliding-window counters for floods and sanctions: in Redis, shared by every instance, or in process.

SCF runs many instances of a function, so a count kept by one of them sees only its share of a sender's
messages. With ``REDIS_URL`` the counts live in Redis (TencentDB for Redis in production): each key is a
sorted set of timestamps, and one MULTI/EXEC pipeline adds this message, drops what left the window,
trims to what a decision needs and counts, for every key a message touches: one round trip.

Without it, ``LocalCounters`` keeps the same windows in this process (``make run``), and says once that
its counts are per instance. Either way a counter that cannot answer in time answers ``None``: a slow or
absent Redis never changes a decision, only leaves the flood checks and the ladder out, and says so.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Deque, List, NamedTuple, Optional, Protocol, Sequence

from imguard import logs

MAX_LOCAL_KEYS = 50_000  # senders and texts one instance keeps counts for; the least recent go first
RETRY_AFTER_S = 5.0  # after a Redis failure, ask again only this much later: a dead Redis costs one timeout
WARN_EVERY_S = 60.0


class Window(NamedTuple):
    key: str
    windows: Sequence[int]  # seconds: one count per window, each ending now
    cap: int  # the most any decision needs to see; a key keeps no more entries than this


class Counters(Protocol):
    """What both kinds answer."""

    def record(self, windows: Sequence[Window], now: float) -> Optional[List[List[int]]]:
        """Count this event under each key, then the events in each of its windows; None when unavailable."""

    def claim(self, key: str, ttl_s: int) -> Optional[bool]:
        """True for the first claim of ``key`` until ``ttl_s`` passes; None when unavailable."""


class LocalCounters:
    def __init__(self, max_keys: int = MAX_LOCAL_KEYS):
        self._events: "OrderedDict[str, Deque[float]]" = OrderedDict()
        self._claims: "OrderedDict[str, float]" = OrderedDict()
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._warned = False

    def record(self, windows: Sequence[Window], now: float) -> Optional[List[List[int]]]:
        self._warn_once()
        counts = []
        with self._lock:
            for window in windows:
                events = self._events.pop(window.key, None)
                if events is None or events.maxlen != window.cap:
                    events = deque(events or (), maxlen=window.cap)
                oldest = now - max(window.windows)
                while events and events[0] <= oldest:
                    events.popleft()
                events.append(now)
                self._events[window.key] = events
                counts.append([sum(1 for at in events if at > now - span) for span in window.windows])
            while len(self._events) > self._max_keys:
                self._events.popitem(last=False)
        return counts

    def claim(self, key: str, ttl_s: int) -> Optional[bool]:
        now = time.monotonic()
        with self._lock:
            until = self._claims.pop(key, None)
            if until is not None and until > now:
                self._claims[key] = until
                return False
            self._claims[key] = now + ttl_s
            while len(self._claims) > self._max_keys:
                self._claims.popitem(last=False)
        return True

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            logs.emit("counters.per_instance", level="warning",
                      detail="no REDIS_URL: flood and sanction counts are this instance's alone")


class RedisCounters:
    """The client is made by the first message that needs it: importing redis-py (it brings asyncio) costs
    about 120 ms on SCF's Python, which a new instance would otherwise spend before its first answer."""

    def __init__(self, url: str, timeout_ms: int):
        self._url = url
        self._timeout_s = timeout_ms / 1000
        self._redis: Any = None
        self._errors: tuple = (OSError,)
        self._making = threading.Lock()
        self._down_until = 0.0
        self._warned_at = -WARN_EVERY_S
        self._where = logs.safe_url(url)

    def record(self, windows: Sequence[Window], now: float) -> Optional[List[List[int]]]:
        def commands(pipe: Any) -> None:
            for window in windows:
                longest = max(window.windows)
                pipe.zadd(window.key, {f"{now:.6f}:{os.urandom(4).hex()}": now})
                pipe.zremrangebyscore(window.key, "-inf", now - longest)
                pipe.zremrangebyrank(window.key, 0, -(window.cap + 1))
                for span in window.windows:
                    pipe.zcount(window.key, f"({now - span}", "+inf")
                pipe.expire(window.key, longest + 1)

        answers = self._run(commands)
        if answers is None:
            return None
        counts, position = [], 0
        for window in windows:
            position += 3
            counts.append([int(n) for n in answers[position:position + len(window.windows)]])
            position += len(window.windows) + 1
        return counts

    def claim(self, key: str, ttl_s: int) -> Optional[bool]:
        answers = self._run(lambda pipe: pipe.set(key, "1", nx=True, ex=ttl_s))
        return None if answers is None else bool(answers[0])

    def _client(self) -> Any:
        with self._making:
            if self._redis is None:
                import redis

                self._errors = (redis.RedisError, OSError)
                # One timeout for connecting and for each answer: a VPC Redis answers in about a millisecond.
                self._redis = redis.Redis.from_url(self._url, socket_timeout=self._timeout_s,
                                                   socket_connect_timeout=self._timeout_s, health_check_interval=30)
        return self._redis

    def _run(self, commands: Any) -> Optional[List[Any]]:
        if time.monotonic() < self._down_until:
            return None
        try:
            client = self._redis or self._client()  # a URL redis-py cannot use fails here: unavailable, not a crash
            pipe = client.pipeline(transaction=True)
            commands(pipe)
            return pipe.execute()
        except (*self._errors, ValueError) as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_S
            if time.monotonic() - self._warned_at >= WARN_EVERY_S:
                self._warned_at = time.monotonic()
                logs.emit("counters.unavailable", level="warning", redis=self._where, error=type(exc).__name__,
                          detail=f"flood checks and sanctions skipped; Redis asked again in {RETRY_AFTER_S:.0f} s")
            return None


def counters_for(redis_url: Optional[str], timeout_ms: int) -> Counters:
    return RedisCounters(redis_url, timeout_ms) if redis_url else LocalCounters()
