"""The im_callback function: IM's third-party callbacks, answered within the deadline."""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Mapping, Optional

from imguard import logs
from imguard.audit.trail import AuditTrail
from imguard.config import ConfigError, Settings
from imguard.handlers.cloud_audit import CloudAuditHandlers
from imguard.handlers.context import Call, Services
from imguard.handlers.failsafe import failsafe_answer
from imguard.handlers.groups import GroupHandlers
from imguard.handlers.messages import MessageHandlers
from imguard.http import HttpRequest, NestedTooDeep
from imguard.http.boundary import serve
from imguard.im import answers
from imguard.im.auth import authenticate
from imguard.im.callbacks import Command
from imguard.im.rest import ImRestClient
from imguard.moderation.ci import CiClient
from imguard.moderation.moderator import Moderator
from imguard.moderation.policy import ALLOW, BLOCK
from imguard.review.submit import MediaSubmitter
from imguard.rules.ruleset import RulesError
from imguard.rules.source import RulesSource, load_file

Answer = Dict[str, Any]
Handler = Callable[[Call, Mapping[str, Any]], Answer]

# SCF kills the invocation at its time limit; answer before that whatever is still running.
TIME_LIMIT_MARGIN_S = 0.5
DEFAULT_TIME_LIMIT_S = 3.0
CI_TIMEOUT_SLACK_S = 0.5


class ImCallbackApp:
    def __init__(self, settings: Settings, ci: Optional[CiClient] = None, trail: Optional[AuditTrail] = None):
        self.settings = settings
        if ci is None and settings.cos.enabled:
            # Slow calls are abandoned at the deadline anyway; this bounds the thread they hold. It runs a
            # little past the deadline so that a CI too slow to answer is recorded as a timeout, not as a
            # network error that raced the deadline.
            ci = CiClient(settings.cos, timeout_s=settings.deadline_ms / 1000 + CI_TIMEOUT_SLACK_S)
        self.services = Services(
            settings=settings,
            moderator=Moderator(settings, ci),
            rules=_rules_source(settings),
            trail=trail or AuditTrail.from_settings(settings.audit),
            submitter=MediaSubmitter(settings.review, ci) if settings.review.enabled and ci else None,
            im=ImRestClient.from_settings(settings) if settings.profile_remediate else None,
        )
        messages = MessageHandlers(self.services)
        groups = GroupHandlers(self.services)
        self._handlers: Mapping[str, Handler] = {
            Command.C2C_BEFORE_SEND: messages.before_send,
            Command.GROUP_BEFORE_SEND: messages.before_send,
            # Group before-send has no MsgSeq, and recall needs one: group media waits for after-send.
            Command.GROUP_AFTER_SEND: messages.group_after_send,
            Command.FRIEND_ADD: groups.friend_add,
            Command.PORTRAIT_SET: groups.portrait_set,
            Command.CREATE_GROUP: groups.create_group,
            Command.CREATE_TOPIC: groups.create_topic,
            Command.APPLY_JOIN_GROUP: groups.apply_join_group,
            Command.GROUP_INFO_CHANGED: groups.group_info_changed,
            Command.MEMBER_FIELD_CHANGED: groups.member_field_changed,
            Command.TOPIC_INFO_CHANGED: groups.topic_info_changed,
            Command.CLOUD_AUDIT_RESULT: CloudAuditHandlers(self.services).result_notify,
        }

    def __call__(self, event: Any, context: Any) -> Dict[str, Any]:
        return serve(event, context, self.route)

    def route(self, request: HttpRequest):
        started = time.monotonic()
        settings = self.settings
        authenticate(request, settings.sdk_app_id, settings.callback_token, settings.max_skew_s)
        time_limit_s = request.time_limit_s(DEFAULT_TIME_LIMIT_S)
        call = Call(
            request_id=request.request_id,
            command=request.query("CallbackCommand"),
            started=started,
            deadline=started + settings.deadline_ms / 1000,
            time_limit=started + max(time_limit_s - TIME_LIMIT_MARGIN_S, settings.deadline_ms / 1000),
        )
        handler = self._handlers.get(call.command)
        try:
            body = request.json_object()
        except NestedTooDeep as exc:
            if handler is None:
                raise
            # Only a sender's nesting makes IM send this: content nobody could read is OVERSIZE_ACTION's.
            action = BLOCK if settings.oversize_action == BLOCK else ALLOW
            return 200, failsafe_answer(self.services, call, {}, action, "oversize", f"cap: {exc.message}")
        if handler is None:
            logs.emit("callback.acknowledged", request_id=call.request_id, command=call.command)
            return 200, answers.acknowledge()
        try:
            return 200, handler(call, body)
        except Exception as exc:  # a fault in moderation is not a reason to let IM deliver unjudged
            logs.failure("callback.crashed", exc, request_id=call.request_id, command=call.command)
            action = BLOCK if settings.fail_mode == "closed" else ALLOW
            return 200, failsafe_answer(self.services, call, body, action, "error", type(exc).__name__)


def _rules_source(settings: Settings) -> RulesSource:
    initial = None
    if settings.rules_path:
        try:
            initial = load_file(settings.rules_path)
        except OSError as exc:
            raise ConfigError("RULES_PATH", f"cannot read {settings.rules_path}: {exc.strerror}") from None
        except RulesError as exc:
            raise ConfigError("RULES_PATH", f"{settings.rules_path}: {exc}") from None
    return RulesSource(initial, settings.rules_url, settings.rules_refresh_s, cos=settings.cos)


def create_handler(environ: Optional[Mapping[str, str]] = None) -> ImCallbackApp:
    """Build the function's handler once per warm instance; bad configuration fails here."""
    return ImCallbackApp(Settings.from_env(environ))
