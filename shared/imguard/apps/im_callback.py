"""The im_callback function: IM's third-party callback, answered within the deadline."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

from imguard import logs
from imguard.config import ConfigError, Settings
from imguard.http import HttpRequest
from imguard.http.boundary import serve
from imguard.im import answers
from imguard.im.auth import authenticate
from imguard.im.callbacks import Command, MessageCallback
from imguard.im.messages import MessageContent, extract, rewritten
from imguard.moderation.ci import CiClient
from imguard.moderation.moderator import Judgement, Moderator
from imguard.moderation.policy import ALLOW, BLOCK, REWRITE, Decision
from imguard.review.submit import MediaSubmitter
from imguard.rules.ruleset import RulesError
from imguard.rules.source import RulesSource, load_file

Answer = Dict[str, Any]


@dataclass(frozen=True)
class Call:
    """What every handler needs to know about the request it serves."""

    request_id: str
    command: str
    started: float  # time.monotonic() when the request arrived
    deadline: float  # time.monotonic() by which the answer must leave

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)


class ImCallbackApp:
    def __init__(self, settings: Settings, ci: Optional[CiClient] = None):
        self.settings = settings
        if ci is None and settings.cos.enabled:
            # Slow calls are abandoned at the deadline anyway; this bounds the thread they hold.
            ci = CiClient(settings.cos, timeout_s=settings.deadline_ms / 1000)
        self.moderator = Moderator(settings, ci)
        self.rules = _rules_source(settings)
        self.submitter = MediaSubmitter(settings.review, ci) if settings.review.enabled and ci else None
        self._handlers: Mapping[str, Callable[[Call, Mapping[str, Any]], Answer]] = {
            Command.C2C_BEFORE_SEND: self.before_send,
            Command.GROUP_BEFORE_SEND: self.before_send,
            # Group before-send has no MsgSeq, and recall needs one: group media waits for after-send.
            Command.GROUP_AFTER_SEND: self.group_after_send,
        }

    def __call__(self, event: Any, context: Any) -> Dict[str, Any]:
        return serve(event, context, self.route)

    def route(self, request: HttpRequest):
        started = time.monotonic()
        settings = self.settings
        authenticate(request, settings.sdk_app_id, settings.callback_token, settings.max_skew_s)
        body = request.json_object()
        call = Call(
            request_id=request.request_id,
            command=request.query("CallbackCommand"),
            started=started,
            deadline=started + settings.deadline_ms / 1000,
        )
        handler = self._handlers.get(call.command)
        if handler is None:
            logs.emit("callback.acknowledged", request_id=call.request_id, command=call.command)
            return 200, answers.acknowledge()
        return 200, handler(call, body)

    def before_send(self, call: Call, body: Mapping[str, Any]) -> Answer:
        message = MessageCallback.from_body(call.command, body)
        content = extract(message.msg_body)
        if message.sender in self.settings.whitelist_users:
            judgement = Judgement(Decision(ALLOW), [])
            whitelisted = True
        else:
            judgement = self.moderator.judge(content, call.deadline, self.rules.current())
            whitelisted = False
        decision = judgement.decision
        if decision.action == BLOCK:
            answer = answers.reject(message.scene, self.settings)
        elif decision.action == REWRITE:
            answer = answers.allow(rewritten(message.msg_body, judgement.replacements))
        else:
            answer = answers.allow()
        review = None
        if message.scene == "c2c" and decision.action != BLOCK:
            review = self._submit_media(call, message, content)
        logs.emit(
            "callback.moderated",
            level="warning" if decision.degraded else "info",
            request_id=call.request_id,
            command=call.command,
            scene=message.scene,
            sender=message.sender,
            target=message.target,
            msg_key=message.msg_key or None,
            types=content.types,
            text=logs.fingerprint(content.joined_text()),
            images=len(content.images),
            action=decision.action,
            degraded=decision.degraded or None,
            fail_mode=self.settings.fail_mode if decision.degraded else None,
            whitelisted=whitelisted or None,
            error_code=answer["ErrorCode"],
            reasons=judgement.reasons(),
            checks={v.check: v.latency_ms for v in judgement.verdicts if v.latency_ms is not None},
            review=review,
            latency_ms=call.elapsed_ms(),
        )
        return answer

    def group_after_send(self, call: Call, body: Mapping[str, Any]) -> Answer:
        message = MessageCallback.from_body(call.command, body)
        content = extract(message.msg_body)
        review = self._submit_media(call, message, content)
        logs.emit(
            "callback.acknowledged",
            request_id=call.request_id,
            command=call.command,
            sender=message.sender,
            target=message.target,
            msg_seq=message.msg_seq,
            review=review,
            latency_ms=call.elapsed_ms(),
        )
        return answers.acknowledge()

    def _submit_media(self, call: Call, message: MessageCallback, content: MessageContent) -> Optional[list]:
        if self.submitter is None or not content.media or message.sender in self.settings.whitelist_users:
            return None
        if message.scene == "group" and message.msg_seq is None:
            logs.emit("review.skipped", level="warning", request_id=call.request_id, reason="no MsgSeq to recall by")
            return None
        return self.submitter.submit(message, content.media, call.request_id, call.deadline) or None


def _rules_source(settings: Settings) -> RulesSource:
    initial = None
    if settings.rules_path:
        try:
            initial = load_file(settings.rules_path)
        except OSError as exc:
            raise ConfigError("RULES_PATH", f"cannot read {settings.rules_path}: {exc.strerror}") from None
        except RulesError as exc:
            raise ConfigError("RULES_PATH", f"{settings.rules_path}: {exc}") from None
    return RulesSource(initial, settings.rules_url, settings.rules_refresh_s)


def create_handler(environ: Optional[Mapping[str, str]] = None) -> ImCallbackApp:
    """Build the function's handler once per warm instance; bad configuration fails here."""
    return ImCallbackApp(Settings.from_env(environ))
