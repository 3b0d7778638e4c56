"""The SQL side of the audit trail, through SQLAlchemy Core: SQLite, PostgreSQL or MySQL.

One row per decision, and one row per reason (a CI label, a local rule that
matched, IM's cloud-audit label), so that "which labels, which rules" is a
GROUP BY and not a scan of JSON. A third table is the human review queue: one
row per delivered message a person should look at (imguard.review.queue).
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    inspect,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError

from imguard.audit.record import AuditRecord

# Actions that mean nothing was found; everything else counts towards "top senders".
CLEAN_ACTIONS = ("allow", "passed", "submitted")

_Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only
_Time = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")  # MySQL keeps whole seconds otherwise
_MYSQL = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}  # MariaDB may default to latin1

metadata = MetaData()

decisions = Table(
    "imguard_audit",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("created_at", _Time, nullable=False, index=True),
    Column("request_id", String(64), nullable=False),
    Column("function", String(32), nullable=False),
    Column("command", String(64), nullable=False),
    Column("scene", String(32), nullable=False, index=True),
    Column("action", String(32), nullable=False, index=True),
    Column("sender", String(128), nullable=False, index=True),
    Column("receiver", String(128), nullable=False),
    Column("group_id", String(128), nullable=False),
    Column("msg_key", String(128), nullable=False),
    Column("msg_seq", BigInteger),
    Column("content_types", String(255), nullable=False),
    Column("degraded", String(16), nullable=False),
    Column("whitelisted", Boolean, nullable=False),
    Column("latency_ms", Float),
    Column("content_sha256", String(64), index=True),
    Column("content", Text),  # only with AUDIT_STORE_CONTENT=true
    Column("details", Text, nullable=False),  # JSON
    **_MYSQL,
)

reasons = Table(
    "imguard_audit_reason",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("audit_id", _Id, ForeignKey("imguard_audit.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("source", String(16), nullable=False),  # rules, ci, im_cloud, imguard
    Column("check_name", String(64), nullable=False),
    Column("field", String(128), nullable=False),  # profile tag or group field the text came from
    Column("outcome", String(16), nullable=False),
    Column("label", String(64), nullable=False, index=True),
    Column("sub_label", String(64), nullable=False),
    Column("rule", String(255), nullable=False),  # local rules: list:entry
    Column("score", Integer),
    Column("keywords", Text, nullable=False),  # JSON array
    Column("detail", String(255), nullable=False),
    **_MYSQL,
)


review_items = Table(
    "imguard_review",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("audit_id", _Id, ForeignKey("imguard_audit.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", _Time, nullable=False, index=True),
    Column("scene", String(32), nullable=False),
    Column("sender", String(128), nullable=False, index=True),
    Column("receiver", String(128), nullable=False),
    Column("group_id", String(128), nullable=False),
    Column("topic_id", String(128), nullable=False),
    Column("msg_key", String(128), nullable=False),
    Column("msg_random", BigInteger),
    Column("delivered_sha256", String(64), nullable=False),  # what IM holds (rewritten, if it was): the read-back's test
    Column("content", Text, nullable=False),  # JSON {text, urls}: the queue is for reading, whatever AUDIT_STORE_CONTENT says
    Column("reasons", Text, nullable=False),  # JSON
    Column("status", String(16), nullable=False, index=True),  # pending, kept, withdrawn, unconfirmed
    Column("decided_by", String(128), nullable=False),
    Column("decided_at", _Time),
    Column("outcome", String(255), nullable=False),  # what IM said, or why nothing was done
    **_MYSQL,
)


def _clean(text: str) -> str:
    """No database stores a lone surrogate, and PostgreSQL no NUL; IM text can carry both."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _cut(value: Any, size: int) -> str:
    return _clean(str(value or "")[:size])


def reason_rows(reason: Dict[str, Any]) -> List[Dict[str, Any]]:
    """A local-rules verdict lists its matched entries as keywords: one row per entry, so rules can be ranked."""
    base = {
        "source": _cut(reason.get("source"), 16),
        "check_name": _cut(reason.get("check"), 64),
        "field": _cut(reason.get("field"), 128),
        "outcome": _cut(reason.get("outcome"), 16),
        "label": _cut(reason.get("label"), 64),
        "sub_label": _cut(reason.get("sub_label"), 64),
        "rule": "",
        "score": reason.get("score") if isinstance(reason.get("score"), int) else None,
        "keywords": _clean(json.dumps(list(reason.get("keywords") or []), ensure_ascii=False)),
        "detail": _cut(reason.get("detail"), 255),
    }
    if base["source"] == "rules" and reason.get("keywords"):
        return [dict(base, rule=_cut(entry, 255), keywords="[]") for entry in reason["keywords"]]
    return [base]


def connect_args(url: str) -> Dict[str, Any]:
    """Timeouts, so that a store that is down fails fast instead of holding the writer."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"timeout": 5}
    if backend == "postgresql":
        # statement_timeout is the server's; keepalives and tcp_user_timeout catch a half-open connection.
        return {"connect_timeout": 3, "options": "-c statement_timeout=5000", "keepalives": 1,
                "keepalives_idle": 30, "keepalives_interval": 5, "keepalives_count": 3, "tcp_user_timeout": 10000}
    if backend == "mysql":
        return {"connect_timeout": 3, "read_timeout": 5, "write_timeout": 5, "charset": "utf8mb4"}
    return {}


class AuditStore:
    def __init__(self, dsn: str, store_content: bool = False):
        url = make_url(dsn)
        self.engine: Engine = create_engine(url, connect_args=connect_args(dsn), pool_pre_ping=True)
        self.store_content = store_content
        self._ready = False

    @property
    def display_name(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def ensure_tables(self) -> None:
        """Create what is missing. Done on first use, not at cold start: a store that is
        down or misplaced must not stop the function from answering IM."""
        if self._ready:
            return
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            try:
                metadata.create_all(self.engine, checkfirst=True)
                break
            except DatabaseError:
                # Another instance (or the CLI) created a table between our check and our CREATE:
                # look again, and create whatever is still missing.
                if set(metadata.tables) <= set(inspect(self.engine).get_table_names()):
                    break
                if attempt == 2:
                    raise
                time.sleep(0.05)
        self._ready = True

    @staticmethod
    def unreachable(exc: BaseException) -> bool:
        """The store could not be talked to (worth retrying), as opposed to refusing what it was given."""
        return isinstance(exc, (OperationalError, InterfaceError, OSError))

    def write(self, records: Sequence[AuditRecord]) -> None:
        """All records in one transaction: a failed batch leaves nothing half-written."""
        self.ensure_tables()
        with self.engine.begin() as conn:
            for record in records:
                audit_id = conn.execute(decisions.insert().values(self._row(record))).inserted_primary_key[0]
                rows = [dict(row, audit_id=audit_id) for reason in record.reasons for row in reason_rows(reason)]
                if rows:
                    conn.execute(reasons.insert(), rows)
                if record.review:
                    conn.execute(review_items.insert().values(self._review_row(record, audit_id)))

    @staticmethod
    def _review_row(record: AuditRecord, audit_id: Any) -> Dict[str, Any]:
        random = record.details.get("msg_random")
        return {
            "audit_id": audit_id, "created_at": record.created_at, "scene": _cut(record.scene, 32),
            "sender": _cut(record.sender, 128), "receiver": _cut(record.receiver, 128),
            "group_id": _cut(record.group_id, 128), "topic_id": _cut(record.details.get("topic_id"), 128),
            "msg_key": _cut(record.msg_key, 128),
            "msg_random": random if isinstance(random, int) and 0 <= random < 2**63 else None,
            "delivered_sha256": _cut(record.details.get("delivered_sha256") or record.content_sha256, 64),
            "content": _clean(json.dumps({"text": record.text, "urls": list(record.urls)}, ensure_ascii=False)),
            "reasons": _clean(json.dumps(list(record.reasons), ensure_ascii=False, default=str)),
            "status": "pending", "decided_by": "", "outcome": "",
        }

    def _row(self, record: AuditRecord) -> Dict[str, Any]:
        content = None
        if self.store_content and (record.text or record.urls):
            content = _clean(json.dumps({"text": record.text, "urls": list(record.urls)}, ensure_ascii=False))
        return {
            "created_at": record.created_at,
            "request_id": _cut(record.request_id, 64),
            "function": _cut(record.function, 32),
            "command": _cut(record.command, 64),
            "scene": _cut(record.scene, 32),
            "action": _cut(record.action, 32),
            "sender": _cut(record.sender, 128),
            "receiver": _cut(record.receiver, 128),
            "group_id": _cut(record.group_id, 128),
            "msg_key": _cut(record.msg_key, 128),
            "msg_seq": record.msg_seq if record.msg_seq is not None and abs(record.msg_seq) < 2**63 else None,
            "content_types": _cut(",".join(record.content_types), 255),
            "degraded": _cut(record.degraded, 16),
            "whitelisted": record.whitelisted,
            "latency_ms": record.latency_ms,
            "content_sha256": record.content_sha256,
            "content": content,
            "details": _clean(json.dumps({k: v for k, v in record.details.items() if v is not None},
                                         ensure_ascii=False, default=str)),
        }

    # --- reading, for `imguard audit` -------------------------------------------------------

    def recent(
        self,
        since: Optional[datetime] = None,
        user: Optional[str] = None,
        action: Optional[str] = None,
        sha256: Optional[str] = None,
        limit: int = 50,
        scene: Optional[str] = None,
        request_id: Optional[str] = None,
        group_id: Optional[str] = None,
        label: Optional[str] = None,
        rule: Optional[str] = None,
        decision_id: Optional[int] = None,
    ) -> List[Dict[str, Any]]:
        """Newest first, each with its reasons."""
        self.ensure_tables()
        query = select(decisions).order_by(decisions.c.created_at.desc(), decisions.c.id.desc()).limit(limit)
        query = self._window(query, since)
        if user:
            query = query.where(or_(decisions.c.sender == user, decisions.c.receiver == user,
                                    decisions.c.group_id == user))
        if action:
            query = query.where(decisions.c.action == action)
        if sha256:
            query = query.where(decisions.c.content_sha256 == sha256.lower())
        if scene:
            query = query.where(decisions.c.scene == scene)
        if request_id:
            query = query.where(decisions.c.request_id == request_id)
        if group_id:
            query = query.where(decisions.c.group_id == group_id)
        if decision_id is not None:
            query = query.where(decisions.c.id == decision_id)
        for column, value in ((reasons.c.label, label), (reasons.c.rule, rule)):
            if value:  # decisions with a reason carrying that label (CI, IM) or that local rule (list:entry)
                query = query.where(decisions.c.id.in_(select(reasons.c.audit_id).where(column == value)))
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
            by_id: Dict[Any, List[Dict[str, Any]]] = {row["id"]: [] for row in rows}
            if by_id:
                found = conn.execute(select(reasons).where(reasons.c.audit_id.in_(list(by_id))).order_by(reasons.c.id))
                for reason in found:
                    by_id[reason.audit_id].append(_reason_out(dict(reason._mapping)))
        for row in rows:
            row["reasons"] = by_id[row["id"]]
            row["details"] = json.loads(row["details"] or "{}")
            if row["content"] is not None:
                row["content"] = json.loads(row["content"])
        return rows

    def stats(self, since: Optional[datetime] = None, top: int = 10) -> Dict[str, Any]:
        self.ensure_tables()
        count = func.count().label("n")
        decisions_counted = func.count(func.distinct(reasons.c.audit_id)).label("n")
        with self.engine.connect() as conn:

            def grouped(column, query=None, limit=None, counted=count) -> List[List[Any]]:
                query = query if query is not None else select(column, counted)
                query = self._window(query, since).group_by(column).order_by(counted.desc(), column)
                if limit:
                    query = query.limit(limit)
                return [[value, n] for value, n in conn.execute(query)]

            joined = decisions.join(reasons, reasons.c.audit_id == decisions.c.id)
            return {
                "total": conn.execute(self._window(select(func.count()).select_from(decisions), since)).scalar(),
                "by_action": grouped(decisions.c.action),
                "by_scene": grouped(decisions.c.scene),
                # Decisions per label; local rules have their own ranking below.
                "by_label": grouped(
                    reasons.c.label,
                    select(reasons.c.label, decisions_counted)
                    .select_from(joined)
                    .where(reasons.c.outcome != "pass", reasons.c.label != "", reasons.c.source != "rules"),
                    counted=decisions_counted,
                ),
                "top_senders": grouped(
                    decisions.c.sender,
                    select(decisions.c.sender, count).where(decisions.c.action.notin_(CLEAN_ACTIONS),
                                                            decisions.c.sender != ""),
                    limit=top,
                ),
                "top_rules": grouped(
                    reasons.c.rule,
                    select(reasons.c.rule, count).select_from(joined).where(reasons.c.rule != ""),
                    limit=top,
                ),
            }

    def actions(self) -> List[str]:
        """The actions this store holds, for telling a typo from an empty result."""
        self.ensure_tables()
        with self.engine.connect() as conn:
            return [value for (value,) in conn.execute(select(decisions.c.action).distinct().order_by(decisions.c.action))]

    @staticmethod
    def _window(query, since: Optional[datetime]):
        return query if since is None else query.where(decisions.c.created_at >= since)

    def dispose(self) -> None:
        self.engine.dispose()


def _reason_out(row: Dict[str, Any]) -> Dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("id", "audit_id", "keywords") and v not in ("", None)}
    keywords = json.loads(row["keywords"] or "[]")
    return dict(out, keywords=keywords) if keywords else out

