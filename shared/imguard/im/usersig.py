"""UserSig for IM REST calls, from Tencent's tls-sig-api-v2, cached per warm instance."""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional, Tuple

from TLSSigAPIv2 import TLSSigAPIv2

# Tencent recommends at least 24 h; renewing an hour early means a REST call never carries a dying sig.
LIFETIME_S = 2 * 86400
RENEW_BEFORE_S = 3600


class UserSigCache:
    def __init__(self, sdk_app_id: int, secret_key: str, identifier: str, clock: Callable[[], float] = time.time):
        self._api = TLSSigAPIv2(sdk_app_id, secret_key)
        self._identifier = identifier
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: Optional[Tuple[str, float]] = None  # (sig, expires at)

    def get(self) -> str:
        with self._lock:
            now = self._clock()
            if self._cached is None or self._cached[1] - now < RENEW_BEFORE_S:
                self._cached = (self._api.gen_sig(self._identifier, LIFETIME_S), now + LIFETIME_S)
            return self._cached[0]

    def invalidate(self) -> None:
        """IM said the sig is bad (70001-70016): the next get() makes a new one."""
        with self._lock:
            self._cached = None
