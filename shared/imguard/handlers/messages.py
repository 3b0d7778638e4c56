"""C2C and group messages: judged before delivery, media handed to CI for review."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from imguard import logs
from imguard.handlers.context import Call, Services
from imguard.im import answers
from imguard.im.callbacks import MessageCallback
from imguard.im.messages import MessageContent, extract, rewritten
from imguard.moderation.policy import BLOCK, REWRITE

Answer = Dict[str, Any]


class MessageHandlers:
    def __init__(self, services: Services):
        self.services = services

    def before_send(self, call: Call, body: Mapping[str, Any]) -> Answer:
        settings = self.services.settings
        message = MessageCallback.from_body(call.command, body)
        content = extract(message.msg_body)
        [judgement] = self.services.judge(call, message.sender, [content])
        decision = judgement.decision
        if decision.action == BLOCK:
            answer = answers.reject(message.scene, settings)
        elif decision.action == REWRITE:
            answer = answers.allow(rewritten(message.msg_body, judgement.replacements))
        else:
            answer = answers.allow()
        review = None
        if message.scene == "c2c" and decision.action != BLOCK:
            review = self._submit_media(call, message, content)
        record = call.audit(
            "callback.moderated",
            message.scene,
            decision.action,
            level="warning" if decision.degraded else "info",
            degraded=decision.degraded,
            whitelisted=self.services.whitelisted(message.sender),
            reasons=judgement.reasons(),
            details=dict(
                error_code=answer["ErrorCode"],
                fail_mode=settings.fail_mode if decision.degraded else None,
                images=len(content.images),
                checks={v.check: v.latency_ms for v in judgement.verdicts if v.latency_ms is not None},
                review=review,
            ),
            **_message_fields(message, content),
        )
        self.services.trail.record(record, deadline=call.deadline)
        return answer

    def group_after_send(self, call: Call, body: Mapping[str, Any]) -> Answer:
        """Group media is reviewed from here: only the after-send callback carries the MsgSeq a recall needs."""
        message = MessageCallback.from_body(call.command, body)
        content = extract(message.msg_body)
        review = self._submit_media(call, message, content)
        if review:
            record = call.audit("callback.acknowledged", "group", "submitted", details=dict(review=review),
                                **_message_fields(message, content))
            self.services.trail.record(record, deadline=call.deadline)
        else:
            logs.emit("callback.acknowledged", request_id=call.request_id, command=call.command,
                      sender=message.sender, target=message.target, msg_seq=message.msg_seq,
                      latency_ms=call.elapsed_ms())
        return answers.acknowledge()

    def _submit_media(self, call: Call, message: MessageCallback, content: MessageContent) -> Optional[list]:
        submitter = self.services.submitter
        if submitter is None or not content.media or self.services.whitelisted(message.sender):
            return None
        if message.scene == "group" and message.msg_seq is None:
            logs.emit("review.skipped", level="warning", request_id=call.request_id, reason="no MsgSeq to recall by")
            return None
        return submitter.submit(message, content.media, call.request_id, call.deadline) or None


def _message_fields(message: MessageCallback, content: MessageContent) -> Dict[str, Any]:
    return dict(
        sender=message.sender,
        receiver=message.receiver,
        group_id=message.group_id,
        msg_key=message.msg_key,
        msg_seq=message.msg_seq,
        content_types=content.types,
        text=content.joined_text(),
        urls=content.images + [m.url for m in content.media],
    )
