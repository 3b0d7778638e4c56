"""Run a message's checks concurrently, under one deadline.

IM waits 2 seconds and then delivers the message anyway, so a check that has
not answered by the deadline is recorded as a timeout and the answer leaves
without it. Its thread finishes in the background; the pool is shared by the
warm instance, so a hung backend costs threads, never the deadline.
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Dict, List

from imguard import logs
from imguard.moderation.verdict import Outcome, Verdict

_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="imguard-check")


@dataclass(frozen=True)
class Check:
    source: str
    name: str
    run: Callable[[], Verdict]


def background(task: Callable[[], None]) -> Future:
    """Run ``task`` on the shared pool (used for work that may outlive the answer)."""
    return _POOL.submit(task)


def run_checks(checks: List[Check], deadline: float, stop_at_block: bool = True) -> List[Verdict]:
    """Verdicts in ``checks`` order. Stops waiting at ``deadline`` (a time.monotonic()
    value) or, with ``stop_at_block``, at the first BLOCK, since nothing can unblock a message."""
    futures: Dict[Future, Check] = {_POOL.submit(check.run): check for check in checks}
    pending = set(futures)
    results: Dict[Future, Verdict] = {}
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        done, pending = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
        for future in done:
            results[future] = _result(future, futures[future])
        if stop_at_block and any(v.outcome is Outcome.BLOCK for v in results.values()):
            break
    blocked = stop_at_block and any(v.outcome is Outcome.BLOCK for v in results.values())
    verdicts = []
    for future, check in futures.items():
        if future in results:
            verdicts.append(results[future])
        else:
            future.cancel()
            outcome = Outcome.SKIPPED if blocked else Outcome.TIMEOUT
            verdicts.append(Verdict(outcome, check.source, check.name))
    return verdicts


def _result(future: Future, check: Check) -> Verdict:
    try:
        return future.result()
    except Exception as exc:  # a check that raises is a failed check, not a crashed callback
        logs.failure("check.crashed", exc, check=check.name)
        return Verdict(Outcome.ERROR, check.source, check.name, detail=type(exc).__name__)
