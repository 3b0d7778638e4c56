"""Where the rules in force come from: a file, and optionally a URL re-read while running.

With ``RULES_URL`` the rules are fetched again at most every ``RULES_REFRESH_S``
seconds with ``If-None-Match``; a new version is compiled aside and swapped in
whole, and a broken one is logged while the last good version stays in force.
The fetch runs in the background: a callback never waits for it, and a cold
start waits for the first one at most COLD_START_WAIT_S.
"""
from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any, Callable, Optional

from imguard import logs
from imguard.config import CosSettings
from imguard.moderation.runner import background
from imguard.rules import compiled
from imguard.rules.fetch import FetchError, fetcher_for
from imguard.rules.book import Rulebook, loads, no_book
from imguard.rules.errors import RulesError

# SCF counts the cold start against the first invocation, which IM gives 2 s in all:
# past this, the function starts with the file rules (or none) and the URL's arrive later.
COLD_START_WAIT_S = 1.0


def load_file(path: str) -> Rulebook:
    """The rules file at ``path``; for the bundled file, what ``make build`` compiled from it."""
    file = Path(path)
    text = file.read_bytes()
    version = f"file:{file.name}:{hashlib.sha256(text).hexdigest()[:12]}"
    rules = compiled.read(file, text, version)
    if rules is None:
        try:
            rules = loads(text.decode("utf-8"), version=version)
        except UnicodeDecodeError:
            raise RulesError("not UTF-8 text") from None
    return rules


class RulesSource:
    def __init__(
        self,
        initial: Optional[Rulebook] = None,
        url: Optional[str] = None,
        refresh_s: float = 60.0,
        session: Any = None,
        clock: Callable[[], float] = time.monotonic,
        cos: Optional[CosSettings] = None,
    ):
        self._rules = initial or no_book()
        self._url = url
        self._refresh_s = refresh_s
        self._fetcher = fetcher_for(url, cos, session) if url else None
        self._clock = clock
        self._etag: Optional[str] = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._refreshing = False
        if url and not wait([self._start_refresh()], timeout=COLD_START_WAIT_S).done:
            logs.emit("rules.url_slow", level="warning", url=logs.safe_url(self._url), waited_s=COLD_START_WAIT_S,
                      version=self._rules.version)

    def current(self) -> Rulebook:
        """The rules in force; past the refresh interval, also starts a background fetch."""
        if self._url and self._clock() >= self._next_check:
            self._start_refresh()
        return self._rules

    def _start_refresh(self) -> Optional[Future]:
        """The Future of a new background fetch; None when one is already under way."""
        with self._lock:
            if self._refreshing:
                return None
            self._refreshing = True
        return background(self._refresh_in_background)

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        finally:
            with self._lock:
                self._refreshing = False

    def refresh(self) -> bool:
        """Fetch the URL now; True when a new version was swapped in."""
        self._next_check = self._clock() + self._refresh_s
        url = logs.safe_url(self._url)
        try:
            fetched = self._fetcher.fetch(self._etag)
        except FetchError as exc:
            logs.emit("rules.fetch_failed", level="error", url=url, detail=str(exc), version=self._rules.version)
            return False
        if fetched is None:  # 304: what is in force is current
            return False
        body, etag = fetched
        version = f"url:{etag or hashlib.sha256(body).hexdigest()[:12]}"
        try:
            rules = loads(body.decode("utf-8"), version=version)
        except (RulesError, UnicodeDecodeError) as exc:
            logs.emit("rules.rejected", level="error", url=url, detail=str(exc), kept=self._rules.version)
            return False
        self._rules, self._etag = rules, etag
        logs.emit("rules.loaded", url=url, version=version, entries=rules.entries)
        return True
