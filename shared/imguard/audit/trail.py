"""Where decisions go: the JSON log line at once, the SQL store from a background writer.

The callback's answer never waits on the database for longer than AUDIT_WAIT_MS
(and never past its own deadline). Records the store has not taken by then
stay queued and are written after the answer; SCF may freeze the instance in
between, in which case they are written when it thaws. A store that is down
costs nothing but a counter and a log line per failed batch: the JSON log
line, written first and always, carries the same record.

The queue is bounded in bytes as well as in records, and when the store keeps
no content (AUDIT_STORE_CONTENT=false) a queued record holds no text or URLs,
only their digest: a flood of long messages while the store is down must not
outgrow the function's memory.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Deque, List, Optional

from imguard import logs
from imguard.audit.record import AuditRecord
from imguard.config import AuditSettings

MAX_QUEUED = 10_000  # beyond this the oldest queued records are dropped (and counted)
MAX_QUEUED_BYTES = 8 * 1024 * 1024  # and beyond this estimate (AuditRecord.footprint) too
TICKET_BYTES = 1200  # a ticket's own cost, mostly its threading.Event (measured with tracemalloc)
MAX_BATCH = 200
MAX_ATTEMPTS = 3  # a record the store could not be reached for this often is given up
BACKOFF_S = (1.0, 5.0, 30.0)


class _Ticket:
    __slots__ = ("record", "size", "attempts", "done")

    def __init__(self, record: AuditRecord):
        self.record = record
        self.size = TICKET_BYTES + record.footprint()
        self.attempts = 0
        self.done = threading.Event()


class DeferredStore:
    """The SQL store, built by the writer thread the first time it writes: SQLAlchemy, its dialects and
    the engine cost a cold start about a third of a second, and no answer needs them."""

    def __init__(self, dsn: str, store_content: bool):
        self.store_content = store_content
        self._dsn = dsn
        self._store = None
        self._lock = threading.Lock()

    def _built(self):
        with self._lock:
            if self._store is None:
                from imguard.audit.store import AuditStore

                self._store = AuditStore(self._dsn, self.store_content)
            return self._store

    @property
    def display_name(self) -> str:
        # From the DSN itself (password hidden): it names the store in the log line of a store that failed to
        # build, so building it here would fail again, outside any handler.
        return logs.safe_url(self._dsn)

    def write(self, records: List[AuditRecord]) -> None:
        self._built().write(records)

    @staticmethod
    def unreachable(exc: BaseException) -> bool:
        from imguard.audit.store import AuditStore

        return AuditStore.unreachable(exc)


class AuditTrail:
    def __init__(self, store=None, wait_ms: int = 100):
        self._store = store  # an AuditStore (or one DeferredStore builds), or None for log-only
        self._wait_s = wait_ms / 1000
        self._queue: Deque[_Ticket] = deque()
        self._queued_bytes = 0  # the tickets in _queue, not a batch out at the store (at most MAX_BATCH)
        self._cond = threading.Condition()
        self._writer: Optional[threading.Thread] = None
        self._retry_at = 0.0
        self._busy = False  # a batch is out at the store
        self.written = 0
        self.failed = 0  # records given up on after MAX_ATTEMPTS
        self.dropped = 0  # records pushed out of a full queue

    @classmethod
    def from_settings(cls, audit: AuditSettings) -> "AuditTrail":
        if not audit.dsn:
            return cls()
        return cls(DeferredStore(audit.dsn, audit.store_content), audit.wait_ms)

    @property
    def queued(self) -> int:
        """Records waiting for the store (not counting a batch being written)."""
        with self._cond:
            return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """The estimated size of the records waiting for the store."""
        with self._cond:
            return self._queued_bytes

    def pending(self) -> List[AuditRecord]:
        """The records waiting for the store, oldest first, as queued (without content unless the store keeps it)."""
        with self._cond:
            return [ticket.record for ticket in self._queue]

    def record(self, *records: AuditRecord, deadline: Optional[float] = None) -> None:
        """Log ``records`` and queue them for the store; wait for the store at most AUDIT_WAIT_MS,
        and not past ``deadline`` (a time.monotonic() value)."""
        for record in records:
            logs.emit(record.event, level=record.level, **record.log_fields())
        if self._store is None or not records:
            return
        if not self._store.store_content:
            records = tuple(record.without_content() for record in records)
        tickets = [_Ticket(record) for record in records]
        with self._cond:
            for ticket in tickets:
                self._make_room(1, ticket.size)
                self._queue.append(ticket)
                self._queued_bytes += ticket.size
            self._start_writer()
            self._cond.notify()
        if self._retry_at > time.monotonic():
            return  # the store is failing: waiting on it would only slow every answer down
        limit = time.monotonic() + self._wait_s
        if deadline is not None:
            limit = min(limit, deadline)
        # Batches are written in queue order, so the last ticket done means all are.
        tickets[-1].done.wait(max(0.0, limit - time.monotonic()))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued has been written or given up on (for the CLI and tests)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _make_room(self, count: int, size: int) -> None:
        """Drop the oldest queued records until ``count`` more of ``size`` bytes fit (called holding _cond)."""
        while self._queue and (len(self._queue) + count > MAX_QUEUED
                               or self._queued_bytes + size > MAX_QUEUED_BYTES):
            dropped = self._queue.popleft()
            self._queued_bytes -= dropped.size
            dropped.done.set()
            self.dropped += 1
            logs.emit("audit.dropped", level="error", dropped_total=self.dropped, queued=len(self._queue))

    def _start_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._run, name="imguard-audit", daemon=True)
            self._writer.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                pause = self._retry_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with self._cond:
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                self._queued_bytes -= sum(ticket.size for ticket in batch)
                self._busy = True
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, batch: List[_Ticket]) -> None:
        try:
            self._store.write([t.record for t in batch])
        except Exception as exc:  # the store's trouble is never the callback's
            if self._store.unreachable(exc):
                self._failed(batch, exc)
            elif len(batch) > 1:
                # The store answered but refused the batch: a record is bad; write them one by one.
                for ticket in batch:
                    self._write([ticket])
            else:
                self._refused(batch[0], exc)
            return
        self._retry_at = 0.0
        self.written += len(batch)
        for ticket in batch:
            ticket.done.set()

    def _refused(self, ticket: _Ticket, exc: Exception) -> None:
        """A record the store will never take: retrying it would only hold up the others."""
        self.failed += 1
        ticket.done.set()
        logs.failure("audit.record_refused", exc, store=self._store.display_name, request_id=ticket.record.request_id,
                     failed_total=self.failed, dropped_total=self.dropped)

    def _failed(self, batch: List[_Ticket], exc: Exception) -> None:
        retry, given_up = [], []
        for ticket in batch:
            ticket.attempts += 1
            (given_up if ticket.attempts >= MAX_ATTEMPTS else retry).append(ticket)
            ticket.done.set()  # nobody waits on a store that is failing
        self.failed += len(given_up)
        attempt = min(t.attempts for t in batch)
        self._retry_at = time.monotonic() + BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]
        with self._cond:
            # Records that arrived meanwhile are newer than these, so these go first: to the store, or out.
            self._queue.extendleft(reversed(retry))
            self._queued_bytes += sum(ticket.size for ticket in retry)
            self._make_room(0, 0)
        logs.failure("audit.store_failed", exc, store=self._store.display_name, batch=len(batch),
                     retrying=len(retry), failed_total=self.failed, dropped_total=self.dropped)

