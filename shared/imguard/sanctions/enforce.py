"""Counting a sender's definite blocks, and muting through IM when the ladder says so.

Runs after the answer is decided and never changes it. Only definite verdicts count: a block by a
rule, by CI, or by a flood check. Never the fail policy's guess (a degraded decision), never a
whitelisted sender, never IM_ADMIN_IDENTIFIER. Each step fires once per its window, however many
instances see the blocks (the claim is in the shared counters). Every sanction is an audit record.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Optional

from imguard import logs
from imguard.audit.record import AuditRecord
from imguard.audit.trail import AuditTrail
from imguard.im.rest import UPDATED, ImRestClient
from imguard.sanctions.counters import Counters, Window
from imguard.sanctions.ladder import Ladder, Step

WORKERS = 2
MAX_BACKLOG = 64  # sanctions being applied per instance; past this one is logged and left
ANSWER_WAIT_S = 0.2  # what an answer waits for a mute it started; the rest finishes after
IM_BUDGET_S = 5.0
LIFT_BUDGET_S = 10.0  # an operator waits for a lift: IM gets longer than a callback's mute

_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="imguard-sanction")
_BACKLOG = threading.BoundedSemaphore(MAX_BACKLOG)

MUTED, MUTED_IN_GROUP, RECORDED, LIFTED, FAILED = "muted", "muted_in_group", "recorded", "lifted", "failed"


@dataclass(frozen=True)
class Offence:
    """One definite block: who, where, and which callback saw it."""

    sender: str
    group_id: str
    request_id: str
    command: str


class Sanctions:
    def __init__(self, counters: Counters, trail: AuditTrail, im: Optional[ImRestClient], admin: str,
                 whitelist: frozenset):
        self.counters = counters
        self._trail = trail
        self._im = im
        self._admin = admin
        self._whitelist = whitelist

    def count(self, ladder: Ladder, offence: Offence, deadline: float) -> None:
        """Count one definite block; if a step is reached for the first time in its window, apply it (waiting
        for that at most ANSWER_WAIT_S, and never past ``deadline``)."""
        if not ladder.steps or offence.sender in self._whitelist or offence.sender in ("", self._admin):
            return
        counts = self.counters.record([Window(f"imguard:blocks:{offence.sender}", ladder.windows, ladder.cap)],
                                      time.time())
        step = ladder.reached(counts[0]) if counts else None
        if step is None:
            return
        # Once per window for each place the step acts on: a group step per group (a C2C block, which it can
        # only record, must not use up the mute another group's spam would earn), a global step once.
        where = (offence.group_id or "c2c") if step.scope == "group" else "global"
        if not self.counters.claim(f"imguard:sanctioned:{offence.sender}:{step.index}:{where}", step.within_s):
            return  # already applied in this window (by this instance or another), or the counters went away
        if not _BACKLOG.acquire(blocking=False):
            logs.emit("sanction.dropped", level="error", user=offence.sender, step=step.index,
                      detail=f"more than {MAX_BACKLOG} sanctions waiting")
            return
        future = _POOL.submit(self._apply, step, offence, counts[0][step.index - 1])
        future.add_done_callback(lambda _: _BACKLOG.release())
        wait([future], timeout=max(0.0, min(ANSWER_WAIT_S, deadline - time.monotonic())))

    def _apply(self, step: Step, offence: Offence, blocks: int) -> None:
        details = dict(step=step.index, blocks=blocks, within_s=step.within_s, mute_s=step.mute_s, scope=step.scope)
        group = offence.group_id if step.scope == "group" else ""
        if step.record_only or self._im is None or (step.scope == "group" and not group):
            why = ("record_only" if step.record_only else "no IM_SECRET_KEY to call IM with" if self._im is None
                   else "a group step reached by a C2C block: no group to mute in")
            self._record(offence, RECORDED, group, dict(details, why=why))
            return
        deadline = time.monotonic() + IM_BUDGET_S
        if group:
            result = self._im.forbid_send_msg(group, offence.sender, step.mute_s, deadline)
        else:
            result = self._im.set_no_speaking(offence.sender, step.mute_s, deadline)
        action = (MUTED_IN_GROUP if group else MUTED) if result.status == UPDATED else FAILED
        self._record(offence, action, group, dict(details, im_error_code=result.error_code or None,
                                                  im_detail=result.detail or None))

    def _record(self, offence: Offence, action: str, group_id: str, details: dict) -> None:
        self._trail.record(AuditRecord(
            event="sanction.applied", request_id=offence.request_id, function="im_callback", command=offence.command,
            scene="sanction", action=action, sender=offence.sender, group_id=group_id,
            level="warning" if action != FAILED else "error", details=details))


def lift(im: ImRestClient, store: Any, user: str, group_id: str, by: str, via: str) -> str:
    """Undo a mute through IM (the global one, or the one in ``group_id``) and record who did it, ``via`` the
    command line or the console; ``lifted``, or ``failed`` when IM did not."""
    deadline = time.monotonic() + LIFT_BUDGET_S
    if group_id:
        result = im.forbid_send_msg(group_id, user, 0, deadline)
    else:
        result = im.set_no_speaking(user, 0, deadline)
    action = LIFTED if result.status == UPDATED else FAILED
    store.write([AuditRecord(event="sanction.lifted", request_id=via, function=via, command="sanctions lift",
                             scene="sanction", action=action, sender=user, group_id=group_id,
                             details={"by": by, "im_status": result.status})])
    return action
