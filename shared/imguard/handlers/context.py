"""What every im_callback handler is given: the request it serves and the services it may use."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Optional, Sequence

from imguard.audit.record import AuditRecord
from imguard.audit.trail import AuditTrail
from imguard.config import Settings
from imguard.im.rest import ImRestClient
from imguard.moderation.moderator import Judgement, Moderator
from imguard.moderation.policy import ALLOW, BLOCK, REWRITE, Decision
from imguard.review.submit import MediaSubmitter
from imguard.rules.book import Defaults, Policy, Rulebook, Scene
from imguard.rules.source import RulesSource
from imguard.sanctions.enforce import Sanctions


@dataclass(frozen=True)
class Call:
    request_id: str
    command: str
    started: float  # time.monotonic() when the request arrived
    deadline: float  # time.monotonic() by which IM's answer must leave
    time_limit: float  # time.monotonic() by which all work must end: SCF kills the invocation soon after
    cold_start_ms: Optional[float] = None  # an instance's first call: how long IM had already waited on its start

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)

    def audit(self, event: str, scene: str, action: str, **fields: Any) -> AuditRecord:
        if self.cold_start_ms is not None:
            fields["details"] = dict(fields.get("details") or {}, cold_start_ms=self.cold_start_ms)
        return AuditRecord(event=event, request_id=self.request_id, function="im_callback", command=self.command,
                           scene=scene, action=action, latency_ms=self.elapsed_ms(), **fields)


@dataclass(frozen=True)
class Services:
    """Built once per warm instance and shared by every handler."""

    settings: Settings
    moderator: Moderator
    rules: RulesSource
    trail: AuditTrail
    submitter: Optional[MediaSubmitter] = None
    im: Optional[ImRestClient] = None  # only with PROFILE_REMEDIATE
    sanctions: Optional[Sanctions] = None  # floods and the ladder: only for authenticated callbacks

    def whitelisted(self, user: str) -> bool:
        return user in self.settings.whitelist_users

    @cached_property
    def defaults(self) -> Defaults:
        """The environment's settings, which the rules file's scenes override."""
        settings = self.settings
        return Defaults(settings.suspicious_action, settings.fail_mode, settings.block_action, settings.cos.biz_type)

    def policy(self, scene: Scene, book: Optional[Rulebook] = None) -> Policy:
        """The policy for ``scene`` in ``book`` (the rules in force unless the caller already holds them)."""
        return (book or self.rules.current()).policy(scene, self.defaults)

    def judge(self, call: Call, actor: str, contents: Sequence, policy: Policy) -> Sequence[Judgement]:
        """Whitelist, then local rules, then CI, for each content, under the call's deadline."""
        if self.whitelisted(actor):
            return [Judgement(Decision(ALLOW)) for _ in contents]
        return self.moderator.judge_all(contents, call.deadline, policy)


def overall(judgements: Sequence[Judgement]) -> Decision:
    """The worst of several decisions: block over rewrite over allow; degraded if any was."""
    actions = {j.decision.action for j in judgements}
    action = BLOCK if BLOCK in actions else REWRITE if REWRITE in actions else ALLOW
    degraded = next((j.decision.degraded for j in judgements if j.decision.degraded), "")
    return Decision(action, degraded)
