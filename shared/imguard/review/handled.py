"""Jobs this instance has already settled: a replayed CI callback is answered from memory.

CI calls again after an error, and anyone can replay a genuine callback body
they have seen. Either way a settled job costs no CI query and no IM call the
second time. Per warm instance and bounded; another instance asked the same
question finds the message already recalled in IM's records and does nothing.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Dict, Optional, Set, Tuple

MAX_JOBS = 2048  # entries are small (ids and a short answer); this bounds them to well under a MiB

Key = Tuple[str, str]  # (JobId, DataId)
Answer = Tuple[int, Dict[str, Any]]


class HandledJobs:
    def __init__(self, max_jobs: int = MAX_JOBS):
        self._max = max_jobs
        self._answers: "OrderedDict[Key, Answer]" = OrderedDict()
        self._in_flight: Set[Key] = set()
        self._lock = threading.Lock()

    def begin(self, key: Key) -> Tuple[bool, Optional[Answer]]:
        """(True, None) when this call should handle the job; otherwise (False, the settled answer,
        or None while another call is still handling it)."""
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return False, self._answers[key]
            if key in self._in_flight:
                return False, None
            self._in_flight.add(key)
            return True, None

    def settle(self, key: Key, answer: Optional[Answer]) -> None:
        """The job is done with; ``answer`` (None when it should be asked again) is remembered."""
        with self._lock:
            self._in_flight.discard(key)
            if answer is not None:
                self._answers[key] = answer
                while len(self._answers) > self._max:
                    self._answers.popitem(last=False)
