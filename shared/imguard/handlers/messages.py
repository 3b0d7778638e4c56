"""C2C and group messages: judged before delivery, media handed to CI for review."""
from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional

from imguard import logs
from imguard.handlers.context import Call, Services
from imguard.im import answers
from imguard.im.callbacks import MessageCallback, mappings
from imguard.im.messages import MessageContent, extract, rewritten
from imguard.moderation.policy import BLOCK, REWRITE
from imguard.rules.book import Scene
from imguard.sanctions.enforce import Offence
from imguard.sanctions.flood import FloodHit, FloodPolicy, check_flood
from imguard.sanctions.ladder import Ladder

Answer = Dict[str, Any]


class MessageHandlers:
    def __init__(self, services: Services):
        self.services = services

    def before_send(self, call: Call, body: Mapping[str, Any]) -> Answer:
        services, settings = self.services, self.services.settings
        message = MessageCallback.from_body(call.command, body)
        content = extract(message.msg_body)
        rules = services.rules.current()
        scene = Scene.group(message.group_type, message.group_id) if message.scene == "group" else Scene("c2c")
        policy = services.policy(scene, rules)
        flood = self._flood(call, message, content, rules.flood)
        if flood is not None and flood.action != "count":
            answer = answers.reject(message.scene, settings, "silent" if flood.action == "silent" else policy.block_action)
            record = call.audit("callback.moderated", message.scene, BLOCK, reasons=[flood.as_reason()],
                                details=dict(error_code=answer["ErrorCode"], policy=list(policy.applied)),
                                **_message_fields(message, content))
            services.trail.record(record, deadline=call.deadline)
            if flood.counts_against_sender:
                self._count(call, message, rules.sanctions)
            return answer
        [judgement] = services.judge(call, message.sender, [content], policy)
        decision = judgement.decision
        if decision.action == BLOCK:
            answer = answers.reject(message.scene, settings, policy.block_action)
        elif decision.action == REWRITE:
            answer = answers.allow(rewritten(message.msg_body, judgement.replacements))
        else:
            answer = answers.allow()
        review = None
        if message.scene == "c2c" and decision.action != BLOCK:
            review = self._submit_media(call, message, content)
        reasons = judgement.reasons() + ([flood.as_reason()] if flood is not None else [])
        record = call.audit(
            "callback.moderated",
            message.scene,
            decision.action,
            level="warning" if decision.degraded else "info",
            degraded=decision.degraded,
            whitelisted=services.whitelisted(message.sender),
            reasons=reasons,
            review=decision.review,
            details=dict(
                error_code=answer["ErrorCode"],
                fail_mode=policy.fail_mode if decision.degraded else None,
                images=len(content.images),
                checks={v.check: v.latency_ms for v in judgement.verdicts if v.latency_ms is not None},
                review=review,
                policy=list(policy.applied) if len(policy.applied) > 1 else None,
                human_review="queued" if decision.review else None,
                msg_random=message.random,
                topic_id=message.topic_id or None,
                # A rewritten message is what IM holds: the review queue's read-back looks for that.
                delivered_sha256=(logs.text_sha256(extract(mappings(answer["MsgBody"])).joined_text())
                                  if decision.review and "MsgBody" in answer else None),
            ),
            **_message_fields(message, content),
        )
        services.trail.record(record, deadline=call.deadline)
        if (flood is not None and flood.counts_against_sender) or (decision.action == BLOCK and not decision.degraded):
            self._count(call, message, rules.sanctions)
        return answer

    def _flood(self, call: Call, message: MessageCallback, content: MessageContent,
               flood: FloodPolicy) -> Optional[FloodHit]:
        sanctions = self.services.sanctions
        if sanctions is None or flood.empty or self.services.whitelisted(message.sender):
            return None
        hit, counted = check_flood(flood, sanctions.counters, message.sender, content.joined_text(),
                                   message.mentioned, message.at_all, time.time())
        if not counted:
            logs.emit("flood.unchecked", level="warning", request_id=call.request_id,
                      detail="counters unavailable: rate and repeat checks skipped for this message")
        return hit

    def _count(self, call: Call, message: MessageCallback, ladder: Ladder) -> None:
        sanctions = self.services.sanctions
        if sanctions is not None:
            sanctions.count(ladder, Offence(message.sender, message.group_id, call.request_id, call.command),
                            call.deadline)

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
