"""Friend requests and profiles, and what every handler of user text outside messages shares.

Requests IM asks about beforehand (a friend request; in imguard.handlers.groups a new group, a new
topic, a request to join) can be refused. Changes reported after the fact (a profile; group info,
name cards, topics) are recorded and, with PROFILE_REMEDIATE=true, the violating field is overwritten
through the REST API, once IM's own record shows it still holds the judged text. None of the
requests can be rewritten in the answer, so there a replace rule's match refuses instead.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from imguard.audit.record import AuditRecord
from imguard.handlers.context import Call, Services, overall
from imguard.im import answers
from imguard.im.fields import IMAGE, FriendAddCallback, ProfileCallback, TextField, content_of
from imguard.im.rest import MIN_ATTEMPT_S, READ, RestResult, profile_values
from imguard.moderation.moderator import Judgement
from imguard.moderation.policy import ALLOW, BLOCK, REWRITE
from imguard.rules.book import Scene

Answer = Dict[str, Any]
Fixes = Dict[str, str]
Overwrite = Callable[[Fixes, float], RestResult]
ReadBack = Callable[[Sequence[str], float], Optional[Dict[str, Any]]]  # None: IM could not say

# IM does not wait for after-callbacks' answers in any way that matters; remediation gets this long.
REMEDIATE_BUDGET_S = 3.0


class FieldHandlers:
    def __init__(self, services: Services):
        self.services = services

    def friend_add(self, call: Call, body: Mapping[str, Any]) -> Answer:
        callback = FriendAddCallback.from_body(body)
        # Adding many friends with one wording is common: judge each distinct wording once.
        distinct = list(dict.fromkeys(request.fields for request in callback.requests))
        judged = dict(zip(distinct, self._judge(call, callback.sender, distinct, "friend")))
        results: List[Tuple[str, bool]] = []
        records = []
        for request in callback.requests:
            judgement = judged[request.fields]
            denied = judgement.decision.action != ALLOW
            results.append((request.to_account, denied))
            records.append(self._audit(call, "friend", BLOCK if denied else ALLOW,
                                       [(request.fields, judgement)], callback.sender, receiver=request.to_account,
                                       details=dict(requester=other(callback.requester, callback.sender),
                                                    result_code=self.services.settings.friend_reject_code if denied else 0)))
        self.services.trail.record(*records, deadline=call.deadline)
        return answers.friend_results(results, self.services.settings)

    def portrait_set(self, call: Call, body: Mapping[str, Any]) -> Answer:
        profile = ProfileCallback.from_body(body)
        im = self.services.im
        return self._after_change(
            call, "profile", profile.account, profile.operator, profile.fields,
            lambda tags, deadline: values(im.get_profile(profile.account, tags, deadline), profile_values,
                                           profile.account),
            lambda fixes, deadline: im.set_profile(profile.account, fixes, deadline),
            details=dict(operator=other(profile.operator, profile.account)),
        )

    def _before(self, call: Call, scene: str, actor: str, fields: Sequence[TextField], **details: Any) -> Answer:
        """A request IM asks about beforehand: refused (1 or the custom group code) when any field violates."""
        judgements = self._judge(call, actor, [(f,) for f in fields], scene)
        denied = overall(judgements).action != ALLOW
        answer = answers.deny_group_request(self.services.settings) if denied else answers.acknowledge()
        record = self._audit(call, scene, BLOCK if denied else ALLOW, [((f,), j) for f, j in zip(fields, judgements)],
                             actor, details=dict(details, error_code=answer["ErrorCode"]))
        self.services.trail.record(record, deadline=call.deadline)
        return answer

    def _after_change(self, call: Call, scene: str, actor: str, operator: str, fields: Sequence[TextField],
                      read_back: Optional[ReadBack], overwrite: Optional[Overwrite], **audit: Any) -> Answer:
        """A change IM reports after the fact cannot be refused: judge each field, overwrite
        the violating ones (PROFILE_REMEDIATE) if IM still holds what was judged, record, acknowledge.
        Without ``read_back`` and ``overwrite`` the change cannot be addressed and is only recorded."""
        judgements = self._judge(call, actor, [(f,) for f in fields], scene)
        fixes = self._fixes(fields, judgements)
        if operator == self.services.settings.im_api.admin:
            fixes = {}  # an admin's change, perhaps our own overwrite coming back: never overwrite it
        remediation = self._remediate(call, fixes, {f.name: f.text for f in fields}, read_back, overwrite)
        record = self._audit(call, scene, overall(judgements).action,
                             [((f,), j) for f, j in zip(fields, judgements)], actor, remediation=remediation, **audit)
        self.services.trail.record(record, deadline=call.deadline)
        return answers.acknowledge()

    def _judge(self, call: Call, actor: str, field_sets: Sequence[Tuple[TextField, ...]],
               scene: str) -> Sequence[Judgement]:
        # The rules file's scenes: friend requests, profiles, and everything about groups but their messages.
        policy = self.services.policy(Scene(scene if scene in ("friend", "profile") else "group_info"))
        return self.services.judge(call, actor, [content_of(fields) for fields in field_sets], policy)

    def _fixes(self, fields: Sequence[TextField], judgements: Sequence[Judgement]) -> Dict[str, str]:
        """What each violating field should become: the masked text where a replace rule
        matched, the placeholder where the field is blocked."""
        fixes = {}
        for field, judgement in zip(fields, judgements):
            if judgement.decision.degraded:
                continue  # the fail policy's guess, not a verdict: never overwrite a user's data on it
            if judgement.decision.action == BLOCK:
                # A picture has no placeholder text: it is removed.
                fixes[field.name] = "" if field.kind == IMAGE else self.services.settings.profile_placeholder
            elif judgement.decision.action == REWRITE:
                fixes[field.name] = judgement.replacements.get((field.name,), self.services.settings.profile_placeholder)
        return fixes

    def _remediate(self, call: Call, fixes: Fixes, judged: Dict[str, str], read_back: Optional[ReadBack],
                   overwrite: Optional[Overwrite]) -> Optional[Dict[str, Any]]:
        if not fixes:
            return None
        if self.services.im is None:
            return {"status": "off", "fields": sorted(fixes)}
        if read_back is None or overwrite is None:
            return {"status": "unaddressable", "fields": sorted(fixes), "detail": "IM's callback does not say which one"}
        # Done before answering: once the answer is out, SCF may freeze the instance mid-call.
        deadline = min(time.monotonic() + REMEDIATE_BUDGET_S, call.time_limit - 2 * MIN_ATTEMPT_S)
        # The callback's body is not covered by IM's Sign: only what IM itself holds now may be
        # overwritten, and only while it is still the text that was judged.
        current = read_back(sorted(fixes), deadline)
        if current is None:
            return {"status": "unconfirmed", "fields": sorted(fixes), "detail": "IM could not show the current values"}
        still = {name: fix for name, fix in fixes.items() if current.get(name) == judged[name]}
        superseded = sorted(set(fixes) - set(still)) or None
        if not still:
            return {"status": "unconfirmed", "fields": sorted(fixes), "superseded": superseded,
                    "detail": "IM holds other values than the ones judged"}
        result = overwrite(still, deadline)
        return {"status": result.status, "fields": sorted(still), "superseded": superseded,
                "im_error_code": result.error_code, "attempts": result.attempts, "detail": result.detail or None}

    def _audit(self, call: Call, scene: str, action: str, judged: Sequence[Tuple[Tuple[TextField, ...], Judgement]],
               sender: str, receiver: str = "", group_id: str = "", remediation: Optional[Dict[str, Any]] = None,
               details: Optional[Dict[str, Any]] = None) -> AuditRecord:
        fields = [f for field_set, _ in judged for f in field_set]
        degraded = overall([j for _, j in judged]).degraded
        reasons = [dict(reason, field=",".join(f.name for f in field_set))
                   for field_set, judgement in judged for reason in judgement.reasons()]
        trouble = degraded or (remediation or {}).get("status") == "failed"
        return call.audit(
            f"callback.{scene}",
            scene,
            action,
            level="warning" if trouble else "info",
            sender=sender,
            receiver=receiver,
            group_id=group_id,
            content_types=[f.name for f in fields],
            reasons=reasons,
            degraded=degraded,
            whitelisted=self.services.whitelisted(sender),
            text="\n".join(f.text for f in fields),
            details=dict(details or {}, remediation=remediation),  # both sinks drop empty (None) values
        )


def values(result: RestResult, parse: Callable[[Mapping[str, Any], str], Optional[Dict[str, Any]]],
           key: str) -> Optional[Dict[str, Any]]:
    """What IM holds now, from a read-back answer; None when it could not say."""
    return parse(result.answer, key) if result.status == READ else None


def other(who: str, actor: str) -> Optional[str]:
    """Worth recording only when someone else (an admin, over REST) acted for the user."""
    return who if who and who != actor else None
