"""One decision, in the form both sinks keep (the JSON log line and the SQL store)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
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
    latency_ms: Optional[float] = None
    text: str = field(default="", repr=False)  # the user text judged; only its digest leaves unless asked
    urls: Sequence[str] = ()  # images and media judged
    details: Dict[str, Any] = field(default_factory=dict)  # command-specific extras for the log and the store
    level: str = "info"
    created_at: datetime = field(default_factory=utc_now)

    @property
    def target(self) -> str:
        return self.group_id or self.receiver

    @cached_property  # read by both sinks; a frozen dataclass still has a __dict__ to cache in
    def content_sha256(self) -> Optional[str]:
        """The digest an operator can recompute from a user's complaint ("I only wrote ...")."""
        return logs.text_sha256(self.text) if self.text else None

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



def _loggable(reason: Dict[str, Any]) -> Dict[str, Any]:
    """CI's and IM's keywords are pieces of the user's text: the log gets their count, the
    SQL store the words. A local rule's entries are the operator's own list and stay."""
    if reason.get("source") == "rules" or not reason.get("keywords"):
        return reason
    logged = {k: v for k, v in reason.items() if k != "keywords"}
    logged["keyword_count"] = len(reason["keywords"])
    return logged
