"""Answers IM understands (im-callback-protocol.md §3)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from imguard.config import Settings

OK: Dict[str, Any] = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

REJECT_CODE = 1  # the sender sees 20006 (C2C) or 10016 (group)
SILENT_DROP_CODE = 2  # not delivered; the sender is told it was


def acknowledge() -> Dict[str, Any]:
    return dict(OK)


def allow(msg_body: Optional[List[Any]] = None) -> Dict[str, Any]:
    """Deliver; with ``msg_body``, deliver that body instead (a rewrite needs ErrorCode 0)."""
    answer = dict(OK)
    if msg_body is not None:
        answer["MsgBody"] = msg_body
    return answer


def reject(scene: str, settings: Settings) -> Dict[str, Any]:
    """Refuse a message in the way the operator configured."""
    if settings.block_action == "silent":
        return {"ActionStatus": "OK", "ErrorCode": SILENT_DROP_CODE, "ErrorInfo": ""}
    custom = settings.group_reject_error_code if scene == "group" else settings.reject_error_code
    if custom is not None:
        return {"ActionStatus": "OK", "ErrorCode": custom, "ErrorInfo": settings.reject_error_info}
    return {"ActionStatus": "OK", "ErrorCode": REJECT_CODE, "ErrorInfo": settings.reject_error_info}
