"""The im_callback function: IM's third-party callbacks, answered within the deadline."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import imguard
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
from imguard.sanctions.counters import counters_for
from imguard.sanctions.enforce import Sanctions

Answer = Dict[str, Any]
Handler = Callable[[Call, Mapping[str, Any]], Answer]

# SCF kills the invocation at its time limit; answer before that whatever is still running.
TIME_LIMIT_MARGIN_S = 0.5
DEFAULT_TIME_LIMIT_S = 3.0
CI_TIMEOUT_SLACK_S = 0.5
# A first call this soon after start-up was waiting on it: IM sent it before the instance was ready. Later
# than this, the instance was started ahead (provisioned, or idle), and its start cost IM nothing.
COLD_WINDOW_S = 2.0
# However long the start took, the first answer gets at least this: enough for the local rules.
COLD_FLOOR_S = 0.2


class ImCallbackApp:
    def __init__(self, settings: Settings, ci: Optional[CiClient] = None, trail: Optional[AuditTrail] = None):
        self.settings = settings
        self._start_up: Optional[Tuple[float, float]] = None  # (began, ended), until the first call
        self._cold_lock = threading.Lock()
        if ci is None and settings.cos.enabled:
            # Slow calls are abandoned at the deadline anyway; this bounds the thread they hold. It runs a
            # little past the deadline so that a CI too slow to answer is recorded as a timeout, not as a
            # network error that raced the deadline.
            ci = CiClient(settings.cos, timeout_s=settings.deadline_ms / 1000 + CI_TIMEOUT_SLACK_S)
        trail = trail or AuditTrail.from_settings(settings.audit)
        rules = _rules_source(settings)
        self.services = Services(
            settings=settings,
            moderator=Moderator(settings, ci),
            rules=rules,
            trail=trail,
            submitter=MediaSubmitter(settings.review, ci) if settings.review.enabled and ci else None,
            im=ImRestClient.from_settings(settings) if settings.profile_remediate else None,
            sanctions=_sanctions(settings, trail, rules),
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

    def started_up(self, began: float, ended: float) -> None:
        """The instance's start-up (import and construction) ran from ``began`` to ``ended``: its first
        answer counts the deadline from ``began``, since IM's 2 s started before it."""
        self._start_up = (began, ended)

    def _cold_start(self, started: float) -> Optional[float]:
        """Seconds IM's request already waited on the start-up, for the instance's first call only."""
        with self._cold_lock:
            start_up, self._start_up = self._start_up, None
        if start_up is None or started - start_up[1] > COLD_WINDOW_S:
            return None
        return started - start_up[0]

    def route(self, request: HttpRequest):
        started = time.monotonic()
        settings = self.settings
        cold = self._cold_start(started)
        deadline = started + settings.deadline_ms / 1000
        if cold is not None:
            deadline = max(deadline - cold, started + COLD_FLOOR_S)
        authenticate(request, settings.sdk_app_id, settings.callback_token, settings.max_skew_s)
        time_limit_s = request.time_limit_s(DEFAULT_TIME_LIMIT_S)
        call = Call(
            request_id=request.request_id,
            command=request.query("CallbackCommand"),
            started=started,
            deadline=deadline,
            time_limit=started + max(time_limit_s - TIME_LIMIT_MARGIN_S, settings.deadline_ms / 1000),
            cold_start_ms=round(cold * 1000, 1) if cold is not None else None,
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
        # Which rules a new instance judges by, and whether it loaded what `make build` compiled.
        logs.emit("rules.loaded", path=settings.rules_path, version=initial.version, entries=initial.entries,
                  compiled=initial.compiled)
    if initial is not None and initial.queues_for_review and not settings.audit.dsn:
        logs.emit("review.no_store", level="warning", detail="the rules queue messages for review, but without "
                  "AUDIT_DSN there is no queue: they are delivered and only logged")
    return RulesSource(initial, settings.rules_url, settings.rules_refresh_s, cos=settings.cos)


def _sanctions(settings: Settings, trail: AuditTrail, rules: RulesSource) -> Optional[Sanctions]:
    """Flood counters and the ladder act on what a callback says about its sender, so they need callbacks
    IM has signed: unsigned, anyone holding the URL could run up a stranger's counts and get them muted."""
    book = rules.current()
    if settings.callback_token is None:
        if not (book.flood.empty and not book.sanctions.steps):
            logs.emit("sanctions.off", level="warning", detail="the rules file has flood or sanctions, which need "
                      "IM_CALLBACK_TOKEN (signed callbacks): both are off")
        return None
    im = ImRestClient.from_settings(settings) if settings.im_api.secret_key else None
    return Sanctions(counters_for(settings.redis_url, settings.redis_timeout_ms), trail, im, settings.im_api.admin,
                     settings.whitelist_users)


_first_start_up = [imguard.IMPORTED_AT]  # the process's first handler started when imguard's import did


def create_handler(environ: Optional[Mapping[str, str]] = None) -> ImCallbackApp:
    """Build the function's handler once per warm instance; bad configuration fails here.
    An SCF instance builds one, the first of its process: its start-up counts from imguard's import.
    Later ones in a process (a local server's second function, tests) are no instance's start."""
    app = ImCallbackApp(Settings.from_env(environ))
    if _first_start_up:
        app.started_up(_first_start_up.pop(), time.monotonic())
    return app
