"""When a callback cannot be judged the normal way: a body nested deeper than the JSON reader
goes, or a fault inside moderation. IM still gets a well-formed answer that follows the
operator's policy (a 500 would let IM deliver whatever it was), and the audit trail a record."""
from __future__ import annotations

from typing import Any, Dict, Mapping

from imguard.handlers.context import Call, Services
from imguard.im import answers
from imguard.im.callbacks import Command, text
from imguard.im.fields import FriendAddCallback
from imguard.moderation.policy import BLOCK

Answer = Dict[str, Any]

_SCENES = {
    Command.C2C_BEFORE_SEND: "c2c",
    Command.GROUP_BEFORE_SEND: "group",
    Command.GROUP_AFTER_SEND: "group",
    Command.FRIEND_ADD: "friend",
    Command.CREATE_GROUP: "group_create",
    Command.GROUP_INFO_CHANGED: "group_info",
    Command.PORTRAIT_SET: "profile",
    Command.CLOUD_AUDIT_RESULT: "cloud_audit",
    Command.CREATE_TOPIC: "topic_create",
    Command.APPLY_JOIN_GROUP: "group_join",
    Command.MEMBER_FIELD_CHANGED: "group_member",
    Command.TOPIC_INFO_CHANGED: "topic_info",
}
# Requests IM asks about beforehand, refused the way a new group is.
_GROUP_REQUESTS = (Command.CREATE_GROUP, Command.CREATE_TOPIC, Command.APPLY_JOIN_GROUP)


def failsafe_answer(services: Services, call: Call, body: Mapping[str, Any], action: str, degraded: str,
                    detail: str) -> Answer:
    """The answer ``action`` (allow or block) calls for, for whatever ``call.command`` is."""
    settings = services.settings
    blocked = action == BLOCK
    scene = _SCENES.get(call.command, "other")
    if call.command in (Command.C2C_BEFORE_SEND, Command.GROUP_BEFORE_SEND):
        answer = answers.reject(scene, settings) if blocked else answers.allow()
    elif call.command == Command.FRIEND_ADD:
        requests = FriendAddCallback.from_body(body).requests
        answer = answers.friend_results([(request.to_account, blocked) for request in requests], settings)
    elif call.command in _GROUP_REQUESTS:
        answer = answers.deny_group_request(settings) if blocked else answers.acknowledge()
    else:
        answer = answers.acknowledge()  # after the fact: there is nothing left to refuse
    record = call.audit(
        "callback.failsafe",
        scene,
        action,
        level="error",
        degraded=degraded,
        sender=text(body.get("From_Account")) or text(body.get("Operator_Account")),
        group_id=text(body.get("GroupId")),
        reasons=[{"source": "imguard", "check": "callback", "outcome": degraded, "detail": detail}],
        details=dict(error_code=answer["ErrorCode"]),
    )
    services.trail.record(record, deadline=call.deadline)
    return answer
