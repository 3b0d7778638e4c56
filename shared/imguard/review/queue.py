"""The human review queue: delivered messages a person should look at, and what that person decided.

A message lands here when the rules' ``review`` list matches it, or CI calls it suspicious with
SUSPICIOUS_ACTION=review (or a scene's ``suspicious_action: review``). It was delivered; a moderator
keeps it or withdraws it. Withdrawing goes through the confirmation automatic withdrawals use: the
message is read back from IM and must exist, come from its sender (to its receiver), and hold the
text that was queued. Each decision is taken once (a second moderator finds it decided) and
records who took it and when.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import select, update

from imguard import logs
from imguard.audit.record import utc_now
from imguard.audit.store import AuditStore, review_items
from imguard.im.messages import extract
from imguard.im.rest import ImRestClient
from imguard.review.confirm import ALREADY_WITHDRAWN, CONFIRMED, UNAVAILABLE, confirm, withdraw

PENDING, KEPT, WITHDRAWN, UNCONFIRMED = "pending", "kept", "withdrawn", "unconfirmed"
WITHDRAWING = "withdrawing"  # taken by a moderator while IM is asked: nobody else can keep it meanwhile
IM_BUDGET_S = 10.0


class ReviewError(Exception):
    """The decision cannot be taken; the message says why."""


@dataclass(frozen=True)
class ReviewItem:
    """One queued message, as confirm() needs it."""

    id: int
    scene: str
    sender: str
    receiver: str
    group_id: str
    topic_id: str
    msg_key: str
    random: Optional[int]
    delivered_sha256: str  # empty for a message without text (an image CI called suspicious)
    status: str
    images: Tuple[str, ...] = ()
    msg_seq: int = 0  # a group message judged before delivery has none: found by its Random
    what: str = "content in the review queue"

    def carried_by(self, msg_body: Any) -> bool:
        content = extract(msg_body)
        if self.delivered_sha256:
            return logs.text_sha256(content.joined_text()) == self.delivered_sha256
        return bool(self.images) and sorted(content.images) == sorted(self.images)

    @classmethod
    def from_row(cls, row: Dict[str, Any]) -> "ReviewItem":
        urls = json.loads(row["content"] or "{}").get("urls") or []
        return cls(row["id"], row["scene"], row["sender"], row["receiver"], row["group_id"], row["topic_id"],
                   row["msg_key"], row["msg_random"], row["delivered_sha256"], row["status"], tuple(urls))


class ReviewQueue:
    def __init__(self, store: AuditStore):
        self._store = store

    def list(self, status: Optional[str] = PENDING, limit: int = 50) -> List[Dict[str, Any]]:
        self._store.ensure_tables()
        query = select(review_items).order_by(review_items.c.created_at.desc(), review_items.c.id.desc()).limit(limit)
        if status:
            query = query.where(review_items.c.status == status)
        with self._store.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            row["content"] = json.loads(row["content"] or "{}")
            row["reasons"] = json.loads(row["reasons"] or "[]")
        return rows

    def get(self, item_id: int) -> ReviewItem:
        self._store.ensure_tables()
        with self._store.engine.connect() as conn:
            row = conn.execute(select(review_items).where(review_items.c.id == item_id)).first()
        if row is None:
            raise ReviewError(f"no review item {item_id}")
        return ReviewItem.from_row(dict(row._mapping))

    def keep(self, item_id: int, by: str) -> str:
        return self._move(self.get(item_id).id, PENDING, KEPT, by, "kept by a moderator")

    def withdraw(self, item_id: int, by: str, im: ImRestClient) -> str:
        """Withdraw through IM once IM's own records confirm the message; the status it ends in. The item is
        taken first (``withdrawing``), so that nobody keeps it while IM is asked, and handed back if IM
        cannot be asked or did not act."""
        item = self.get(item_id)
        self._move(item.id, PENDING, WITHDRAWING, by, "asking IM")
        try:
            deadline = time.monotonic() + IM_BUDGET_S
            found = confirm(im, item, deadline)
            if found.status == UNAVAILABLE:
                raise ReviewError(f"IM could not be asked just now, nothing decided: {found.reason}")
            if found.status == ALREADY_WITHDRAWN:
                return self._move(item.id, WITHDRAWING, WITHDRAWN, by, found.reason)
            if found.status != CONFIRMED:
                return self._move(item.id, WITHDRAWING, UNCONFIRMED, by, found.reason)
            result = withdraw(im, item, deadline, found.msg_seq)
            if not result.done:
                raise ReviewError(f"IM did not withdraw it ({result.error_code}: {result.detail}); still pending")
            return self._move(item.id, WITHDRAWING, WITHDRAWN, by, f"withdrawn through IM ({result.status})")
        except BaseException:
            self._move(item.id, WITHDRAWING, PENDING, "", "")
            raise

    def _move(self, item_id: int, was: str, status: str, by: str, outcome: str) -> str:
        """``was`` → ``status``, only if the item is still ``was``: two moderators cannot both decide it."""
        decided_at = utc_now() if status != PENDING else None
        with self._store.engine.begin() as conn:
            changed = conn.execute(update(review_items)
                                   .where(review_items.c.id == item_id, review_items.c.status == was)
                                   .values(status=status, decided_by=by[:128], decided_at=decided_at,
                                           outcome=outcome[:255])).rowcount
        if changed != 1:
            raise ReviewError(f"review item {item_id} was already decided")
        return status
