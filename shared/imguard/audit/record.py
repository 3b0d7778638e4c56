"""One decision, in the form both sinks keep (the JSON log line and the SQL store)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Sequence

from imguard import logs


def utc_now() -> datetime:
    # Stored without a zone: SQLite and MySQL DATETIME have none, and one convention beats three.
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class AuditRecord:
    event: str  # the log event name, e.g. callback.moderated
    request_id: str
    function: str  # im_callback or audio_result
    command: str
    scene: str  # c2c, group, friend, group_create, group_info, profile, cloud_audit
    action: str  # allow, block, rewrite, submitted, withdrawn, remediated, ...
    sender: str = ""
    receiver: str = ""
    group_id: str = ""
    msg_key: str = ""
    msg_seq: Optional[int] = None
    content_types: Sequence[str] = ()
    reasons: Sequence[Dict[str, Any]] = ()  # Verdict.as_reason() dicts: source, outcome, label, keywords, ...
    degraded: str = ""  # timeout or error when the fail policy decided
    whitelisted: bool = False
    review: bool = False  # queued for a person: the store keeps its text in the review queue whatever it keeps else
    latency_ms: Optional[float] = None
    text: str = field(default="", repr=False)  # the user text judged; only its digest leaves unless asked
    urls: Sequence[str] = ()  # images and media judged
    details: Dict[str, Any] = field(default_factory=dict)  # command-specific extras for the log and the store
    level: str = "info"
    created_at: datetime = field(default_factory=utc_now)
    # The digest an operator can recompute from a user's complaint ("I only wrote ..."). Derived from
    # ``text`` when not given; a field rather than a property so that it outlives the text (without_content).
    content_sha256: Optional[str] = None

    def __post_init__(self) -> None:
        if self.content_sha256 is None and self.text:
            object.__setattr__(self, "content_sha256", logs.text_sha256(self.text))

    @property
    def target(self) -> str:
        return self.group_id or self.receiver

    def without_content(self) -> "AuditRecord":
        """This record as a store that keeps no content needs it: the digest, not the text or the URLs. A
        record queued for review keeps them: a moderator cannot judge a digest."""
        return self if self.review else replace(self, text="", urls=())

    def footprint(self) -> int:
        """Roughly the bytes this record holds, for budgets: a walk over its values, no serialisation."""
        attributes = vars(self)  # its names are shared by every record; only the values are its own
        return sys.getsizeof(self) + sys.getsizeof(attributes) + sum(_footprint(v) for v in attributes.values())

    def log_fields(self) -> Dict[str, Any]:
        """The log line: everything but the text and URLs in clear."""
        return dict(
            request_id=self.request_id,
            command=self.command,
            scene=self.scene,
            sender=self.sender or None,
            target=self.target or None,
            msg_key=self.msg_key or None,
            msg_seq=self.msg_seq,
            types=list(self.content_types) or None,
            text=logs.fingerprint(self.text, self.content_sha256) if self.text else None,
            action=self.action,
            degraded=self.degraded or None,
            whitelisted=self.whitelisted or None,
            reasons=[_loggable(reason) for reason in self.reasons] or None,
            latency_ms=self.latency_ms,
            **self.details,
        )


def _footprint(value: Any, depth: int = 0) -> int:
    """sys.getsizeof over containers and what they hold, a few levels down (reasons and details are shallow)."""
    size = sys.getsizeof(value)
    if depth < 4:
        if isinstance(value, dict):
            size += sum(_footprint(k, depth + 1) + _footprint(v, depth + 1) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            size += sum(_footprint(item, depth + 1) for item in value)
    return size


def _loggable(reason: Dict[str, Any]) -> Dict[str, Any]:
    """CI's and IM's keywords are pieces of the user's text: the log gets their count, the
    SQL store the words. A local rule's entries are the operator's own list and stay."""
    if reason.get("source") == "rules" or not reason.get("keywords"):
        return reason
    logged = {k: v for k, v in reason.items() if k != "keywords"}
    logged["keyword_count"] = len(reason["keywords"])
    return logged
