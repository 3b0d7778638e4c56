"""Answers IM understands (im-callback-protocol.md §2.5, §3)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

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


def _refusal(code: int, settings: Settings) -> Dict[str, Any]:
    return {"ActionStatus": "OK", "ErrorCode": code, "ErrorInfo": settings.reject_error_info}


def reject(scene: str, settings: Settings, block_action: str = "") -> Dict[str, Any]:
    """Refuse a message in the way the operator configured (``block_action``: a scene's own, or a flood's)."""
    if (block_action or settings.block_action) == "silent":
        return {"ActionStatus": "OK", "ErrorCode": SILENT_DROP_CODE, "ErrorInfo": ""}
    custom = settings.group_reject_error_code if scene == "group" else settings.reject_error_code
    return _refusal(custom if custom is not None else REJECT_CODE, settings)


def deny_group_request(settings: Settings) -> Dict[str, Any]:
    """Creating a group or a topic, or asking to join one, has no silent drop: 1 (the caller sees 10016)
    or the custom group code."""
    custom = settings.group_reject_error_code
    return _refusal(custom if custom is not None else REJECT_CODE, settings)


def friend_results(results: Sequence[Tuple[str, bool]], settings: Settings) -> Dict[str, Any]:
    """One ResultItem per (To_Account, denied). A top-level error would let every request through."""
    items = [
        {
            "To_Account": account,
            "ResultCode": settings.friend_reject_code if denied else 0,
            "ResultInfo": settings.reject_error_info if denied else "",
        }
        for account, denied in results
    ]
    return dict(OK, ResultItem=items)
