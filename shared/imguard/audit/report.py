"""``imguard audit``: the audit trail as readable tables, or JSON for scripts."""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

from imguard.tables import cell, table, width

DEFAULT_TZ = "Asia/Shanghai"  # where most operators of a Chinese chat app read their times


def zone(name: Optional[str] = None) -> Any:
    """The operator's time zone (CONSOLE_TZ, default Asia/Shanghai); ValueError naming it when unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = name or os.environ.get("CONSOLE_TZ") or DEFAULT_TZ
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (CONSOLE_TZ): use an IANA name such as Asia/Shanghai") from None


def local_time(moment: datetime, tz: Any) -> datetime:
    """A stored time (UTC, without a zone) in the operator's zone."""
    return moment.replace(tzinfo=timezone.utc).astimezone(tz)


def milliseconds(value: Optional[float]) -> str:
    """A latency as people read it: 0.4 for a fast local decision, not 0."""
    if value is None:
        return ""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"

_SPAN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: datetime) -> datetime:
    """``30m``, ``1h``, ``7d``, ``2w`` back from ``now``, or an ISO date/time (UTC)."""
    match = _SPAN.match(value)
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2).lower()])
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"--since expects 30m, 1h, 7d, 2w or an ISO time, got {value!r}") from None
    # Records keep UTC without a zone; an ISO time with an offset is brought to that.
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def why(row: Dict[str, Any]) -> str:
    """One line saying why: what matched, where, how sure; and whether a policy (the fail policy, or the
    oversize policy for content past a cap) decided instead of a verdict. A sanction says which step and why."""
    details = row.get("details") or {}
    if row.get("scene") == "sanction" and "step" in details:
        return (f"step {details['step']}: {details.get('blocks')} blocks in {details.get('within_s')} s, "
                f"mute {details.get('mute_s')} s" + (f" ({details['why']})" if details.get("why") else ""))
    parts = []
    for reason in row.get("reasons", []):
        source, outcome = reason.get("source", "?"), reason.get("outcome", "")
        if reason.get("rule"):
            parts.append(f"rule {reason['rule']}")
        elif outcome in ("error", "timeout"):
            parts.append(f"{source} {outcome}")
        elif outcome == "oversize":
            parts.append(reason.get("detail") or "oversize")  # names the cap: "cap: more than 20 images"
        elif outcome != "pass" or reason.get("label"):
            label = "/".join(x for x in (reason.get("label"), reason.get("sub_label")) if x) or outcome
            text = f"{source}:{label}"
            if reason.get("score") is not None:
                text += f"({reason['score']})"
            if reason.get("field"):
                text += f" in {reason['field']}"
            if reason.get("keywords"):
                text += " " + ",".join(json.dumps(k, ensure_ascii=False) for k in reason["keywords"][:3])
            parts.append(text)
    if row.get("degraded") == "oversize":
        parts.append("OVERSIZE_ACTION")
    elif row.get("degraded"):
        parts.append(f"fail policy ({row['degraded']})")
    if row.get("whitelisted"):
        parts.append("whitelisted")
    return "; ".join(dict.fromkeys(parts)) or "-"


def list_table(rows: List[Dict[str, Any]], tz: Any) -> str:
    if not rows:
        return "no decisions recorded in that window"
    body = [
        (
            local_time(row["created_at"], tz).strftime("%Y-%m-%d %H:%M:%S"),
            row["action"],
            row["scene"],
            row["command"],
            row["sender"] or "-",
            row["group_id"] or row["receiver"] or "-",
            milliseconds(row["latency_ms"]),
            why(row),
        )
        for row in rows
    ]
    headers = (f"TIME ({tz.key})", "ACTION", "SCENE", "COMMAND", "SENDER", "TO", "MS", "WHY")
    return table(headers, body, (max(19, len(headers[0])), 14, 12, 34, 16, 16, 5, 80))


def stats_text(stats: Dict[str, Any], since: Optional[datetime], tz: Any) -> str:
    window = f"since {local_time(since, tz):%Y-%m-%d %H:%M} {tz.key}" if since else "all time"
    out = [f"{stats['total']} decisions, {window}"]
    sections = (
        ("by action", "by_action"),
        ("by scene", "by_scene"),
        ("by label (CI, IM cloud audit)", "by_label"),
        ("top senders (anything not allowed)", "top_senders"),
        ("top local rules", "top_rules"),
    )
    for title, key in sections:
        out.append("")
        out.append(title + ":")
        if not stats[key]:
            out.append("  -")
            continue
        size = min(40, max(width(str(name)) for name, _ in stats[key]))
        out += [f"  {cell(name, size)}  {count:>8}" for name, count in stats[key]]
    return "\n".join(out)


def as_json(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
