"""What the console's overview reads from the audit store: decisions per hour by action, the degraded
rate and latency percentiles. Lists, stats and single decisions are the store's own reads."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional

from sqlalchemy import func, select

from imguard.audit.report import local_time
from imguard.audit.store import AuditStore, decisions

LATENCY_SAMPLE = 20_000  # the newest decisions the percentiles are taken over


@dataclass
class Overview:
    hours: List[datetime] = field(default_factory=list)  # each hour's start, in the operator's zone
    by_action: Dict[str, List[int]] = field(default_factory=dict)  # action -> count per hour
    total: int = 0
    degraded: int = 0
    latency: Dict[str, float] = field(default_factory=dict)  # p50, p90, p99 in ms
    stats: Dict[str, Any] = field(default_factory=dict)  # AuditStore.stats: labels, rules, senders

    @property
    def degraded_rate(self) -> float:
        return self.degraded / self.total if self.total else 0.0


def _hour(column: Any, dialect: str) -> Any:
    """The hour a time falls in, as text, in each backend's own words (SQL has no portable truncation)."""
    if dialect == "postgresql":
        return func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24:00:00")
    if dialect == "mysql":
        return func.date_format(column, "%Y-%m-%d %H:00:00")
    return func.strftime("%Y-%m-%d %H:00:00", column)


def overview(store: AuditStore, now: datetime, hours: int, tz: Any, top: int = 10) -> Overview:
    store.ensure_tables()
    since = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    result = Overview()
    starts = [since + timedelta(hours=i) for i in range(hours)]
    result.hours = [local_time(start, tz) for start in starts]
    position = {start.strftime("%Y-%m-%d %H:00:00"): i for i, start in enumerate(starts)}
    hour = _hour(decisions.c.created_at, store.engine.dialect.name).label("hour")
    recent = decisions.c.created_at >= since
    with store.engine.connect() as conn:
        for bucket, action, count in conn.execute(
                select(hour, decisions.c.action, func.count()).where(recent).group_by(hour, decisions.c.action)):
            index = position.get(str(bucket)[:19])
            if index is not None:
                result.by_action.setdefault(action, [0] * hours)[index] += count
        result.total = conn.execute(select(func.count()).select_from(decisions).where(recent)).scalar() or 0
        result.degraded = conn.execute(select(func.count()).select_from(decisions)
                                       .where(recent, decisions.c.degraded != "")).scalar() or 0
        latencies = [value for (value,) in conn.execute(
            select(decisions.c.latency_ms).where(recent, decisions.c.latency_ms.isnot(None),
                                                 decisions.c.function == "im_callback")
            .order_by(decisions.c.id.desc()).limit(LATENCY_SAMPLE))]
    result.latency = percentiles(latencies)
    result.stats = store.stats(since=since, top=top)
    return result


def percentiles(values: List[float]) -> Dict[str, float]:
    if len(values) < 2:
        return {name: round(values[0], 1) for name in ("p50", "p90", "p99")} if values else {}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 1), "p90": round(cuts[89], 1), "p99": round(cuts[98], 1)}


def since_for(window: str, now: datetime) -> Optional[datetime]:
    """The decisions page's time filter: 1h, 1d, 7d, 30d, or all."""
    spans = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
    return now - spans[window] if window in spans else None
