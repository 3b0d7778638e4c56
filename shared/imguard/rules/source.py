"""Where the rules in force come from: a file, and optionally a URL re-read while running.

With ``RULES_URL`` the rules are fetched again at most every ``RULES_REFRESH_S``
seconds with ``If-None-Match``; a new version is compiled aside and swapped in
whole, and a broken one is logged while the last good version stays in force.
The fetch runs in the background: a callback never waits for it.
"""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import requests

from imguard import logs
from imguard.moderation.runner import background
from imguard.rules.ruleset import RuleSet, RulesError, loads, no_rules


def load_file(path: str) -> RuleSet:
    text = Path(path).read_text(encoding="utf-8")
    return loads(text, version=f"file:{Path(path).name}:{hashlib.sha256(text.encode()).hexdigest()[:12]}")


class RulesSource:
    def __init__(
        self,
        initial: Optional[RuleSet] = None,
        url: Optional[str] = None,
        refresh_s: float = 60.0,
        session: Optional[requests.Session] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._rules = initial or no_rules()
        self._url = url
        self._refresh_s = refresh_s
        self._session = session or requests.Session()
        self._clock = clock
        self._etag: Optional[str] = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._refreshing = False
        if url:
            self.refresh()

    def current(self) -> RuleSet:
        """The rules in force; past the refresh interval, also starts a background fetch."""
        if self._url and self._clock() >= self._next_check:
            with self._lock:
                start = not self._refreshing
                self._refreshing = True
            if start:
                background(self._refresh_in_background)
        return self._rules

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        finally:
            with self._lock:
                self._refreshing = False

    def refresh(self) -> bool:
        """Fetch the URL now; True when a new version was swapped in."""
        self._next_check = self._clock() + self._refresh_s
        headers = {"If-None-Match": self._etag} if self._etag else {}
        try:
            response = self._session.get(self._url, headers=headers, timeout=(2.0, 5.0))
        except requests.RequestException as exc:
            logs.emit("rules.fetch_failed", level="error", url=self._url, detail=type(exc).__name__,
                      version=self._rules.version)
            return False
        if response.status_code == 304:
            return False
        if response.status_code != 200:
            logs.emit("rules.fetch_failed", level="error", url=self._url, detail=f"HTTP {response.status_code}",
                      version=self._rules.version)
            return False
        etag = response.headers.get("ETag")
        version = f"url:{etag or hashlib.sha256(response.content).hexdigest()[:12]}"
        try:
            rules = loads(response.content.decode("utf-8"), version=version)
        except (RulesError, UnicodeDecodeError) as exc:
            logs.emit("rules.rejected", level="error", url=self._url, detail=str(exc), kept=self._rules.version)
            return False
        self._rules, self._etag = rules, etag
        logs.emit("rules.loaded", url=self._url, version=version, entries=len(rules.entries))
        return True
