"""The audio_result function: CI's review verdicts in, violating messages withdrawn.

The endpoint is public and CI does not sign its callbacks. Nothing in a posted
body is acted on until (1) its DataId carries our HMAC, (2) CI, asked by JobId
over a signed request, confirms the verdict for that DataId, and (3) IM's own
history shows the message, from that sender, carrying that file.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional, Tuple

from imguard import logs
from imguard.audit.record import AuditRecord
from imguard.audit.trail import AuditTrail
from imguard.config import Settings
from imguard.http import BadRequest, HttpRequest, ServiceUnavailable, Unauthorized
from imguard.http.boundary import serve
from imguard.http.errors import HttpError
from imguard.im.rest import ImRestClient
from imguard.moderation.ci import CiClient, CiError, JobResult, valid_job_id
from imguard.moderation.verdict import Outcome
from imguard.review.ci_callback import CiCallback
from imguard.review.confirm import ALREADY_WITHDRAWN, UNAVAILABLE, confirm, withdraw
from imguard.review.handled import HandledJobs
from imguard.review.jobref import InvalidJobRef, JobRef

# Leave this much of the function's time limit for answering and logging.
SAFETY_MARGIN_S = 3.0
DEFAULT_TIME_LIMIT_S = 30.0

Answer = Tuple[int, Dict[str, Any]]


class WithdrawFailed(HttpError):
    """IM did not withdraw the message; CI may call again and we will try again."""

    status = 500
    code = "WithdrawFailed"


class AudioResultApp:
    def __init__(self, settings: Settings, ci: Optional[CiClient] = None, im: Optional[ImRestClient] = None,
                 trail: Optional[AuditTrail] = None):
        self.settings = settings
        if ci is None and settings.cos.enabled:
            ci = CiClient(settings.cos, timeout_s=5.0)
        self.ci = ci
        self.im = im or ImRestClient.from_settings(settings)
        self.trail = trail or AuditTrail.from_settings(settings.audit)
        self.handled = HandledJobs()

    def __call__(self, event: Any, context: Any) -> Dict[str, Any]:
        return serve(event, context, self.route)

    def route(self, request: HttpRequest) -> Answer:
        started = time.monotonic()
        deadline = started + max(1.0, request.time_limit_s(DEFAULT_TIME_LIMIT_S) - SAFETY_MARGIN_S)
        callback = CiCallback.from_body(request.json_object())
        if callback.test:
            # CI's console testing the callback URL: it wants a 2xx. There is no job in it to verify or act on,
            # so nothing else happens (no CI query, no IM call, no audit record), and no job is marked settled.
            logs.emit("review.test_callback", request_id=request.request_id, version=callback.version,
                      kind=callback.kind or None)
            return 200, {"status": "test", "message": "CI test callback received; nothing to do"}
        job_id, data_id = callback.job.job_id, callback.job.data_id
        log = dict(request_id=request.request_id, version=callback.version, kind=callback.kind,
                   job_id=job_id if valid_job_id(job_id) else None)
        try:
            ref = JobRef.verify(data_id, self.settings.review.verification_keys)
        except InvalidJobRef as exc:
            logs.emit("review.forged", level="warning", reason=str(exc), **log)
            raise Unauthorized(f"DataId rejected: {exc}") from None
        if job_id and not valid_job_id(job_id):
            logs.emit("review.forged", level="warning", reason="JobId is not in CI's format", **log)
            raise BadRequest("JobId is not a CI job id")
        log.update(scene=ref.scene, sender=ref.sender, target=ref.group_id or ref.receiver)

        key = (job_id, data_id)
        mine, settled = self.handled.begin(key)
        if not mine:
            logs.emit("review.replayed", settled=settled is not None, **log)
            if settled is None:
                raise ServiceUnavailable("this job is being handled now")
            return settled
        answer: Optional[Answer] = None
        try:
            answer = self._handle(request, callback, ref, log, started, deadline)
            return answer
        finally:
            self.handled.settle(key, answer)  # an error (raised) is not settled: CI's next call tries again

    def _handle(self, request: HttpRequest, callback: CiCallback, ref: JobRef, log: Mapping[str, Any],
                started: float, deadline: float) -> Answer:
        job = self._authoritative(callback, ref, log)
        if job.failed or (job.finished and job.outcome is None):
            return self._review_failed(request, callback, ref, job, started)
        outcome = job.outcome
        if outcome is None:
            # CI's retries (every 30 min for a day) bring the final result later.
            logs.emit("review.unfinished", level="warning", state=job.state, **log)
            raise ServiceUnavailable("review not finished", state=job.state)
        should_withdraw = outcome is Outcome.BLOCK or (
            outcome is Outcome.SUSPICIOUS and self.settings.suspicious_action == "block"
        )
        reason = {"source": "ci", "check": ref.kind, "outcome": outcome.value, "label": job.label or None,
                  "sub_label": job.sub_label or None, "score": job.score, "keywords": list(job.keywords) or None}
        record = _Recorder(self.trail, request, ref, reason, started,
                           dict(version=callback.version, job_id=job.job_id, result=job.result))
        if not should_withdraw:
            return record("review.decided", "kept" if outcome is Outcome.SUSPICIOUS else "passed")

        confirmation = confirm(self.im, ref, deadline)
        if confirmation.status == UNAVAILABLE:
            logs.emit("review.confirm_failed", level="error", reason=confirmation.reason,
                      im_error_code=confirmation.im_error_code, **log)
            raise ServiceUnavailable("could not read the message back from IM")
        if confirmation.status == ALREADY_WITHDRAWN:
            return record("review.withdrawn", ALREADY_WITHDRAWN, confirmation=confirmation.reason)
        if not confirmation.confirmed:
            return record("review.unconfirmed", "unconfirmed", level="warning", confirmation=confirmation.reason,
                          im_error_code=confirmation.im_error_code)

        result = withdraw(self.im, ref, deadline)
        if not result.done:
            record("review.withdraw_failed", "withdraw_failed", level="error", im_error_code=result.error_code,
                   attempts=result.attempts, detail=result.detail)
            raise WithdrawFailed("IM did not withdraw the message", im_error_code=result.error_code)
        return record("review.withdrawn", result.status, im_error_code=result.error_code, attempts=result.attempts)

    def _review_failed(self, request: HttpRequest, callback: CiCallback, ref: JobRef, job: JobResult,
                       started: float) -> Answer:
        """CI gave up on the job (State Failed), or finished it without a verdict anyone can read.

        Terminal: asking again brings the same answer, so CI gets 200 and stops calling (a 503 here would be
        retried every 30 minutes for a day, to no end), the job is settled (a second delivery is answered
        from memory), and the audit trail says ``review_failed``. FAIL_MODE does not decide this: it
        chooses for a message still waiting to be delivered, while this one was delivered long ago, and
        withdrawing it is destructive on a verdict nobody has. So a failed review never withdraws, whether
        FAIL_MODE is open or closed; the record is there for a human to look at.
        """
        reason = {"source": "ci", "check": ref.kind, "outcome": Outcome.ERROR.value,
                  "detail": job.detail or f"CI job {job.state or 'without a state'}"}
        record = _Recorder(self.trail, request, ref, reason, started,
                           dict(version=callback.version, job_id=job.job_id, state=job.state))
        return record("review.failed", "review_failed", level="warning")  # the record is the log line too

    def _authoritative(self, callback: CiCallback, ref: JobRef, log: Mapping[str, Any]) -> JobResult:
        """The verdict to act on: CI's answer to a signed query, not the posted body."""
        if not self.settings.review.verify_with_query:
            return callback.job
        if not callback.job.job_id:
            raise Unauthorized("no JobId to verify")
        try:
            queried = self.ci.query_media(ref.kind, callback.job.job_id)
        except CiError as exc:
            logs.emit("review.query_failed", level="error", detail=str(exc), **log)
            raise ServiceUnavailable("could not confirm the result with CI") from None
        if queried.data_id != callback.job.data_id:
            logs.emit("review.forged", level="warning", reason="JobId belongs to another DataId", **log)
            raise Unauthorized("JobId and DataId do not belong together")
        return queried


class _Recorder:
    """One audit record per settled job, and the answer CI gets for it."""

    def __init__(self, trail: AuditTrail, request: HttpRequest, ref: JobRef, reason: Dict[str, Any],
                 started: float, details: Dict[str, Any]):
        self._trail, self._started, self._details = trail, started, details
        self._fields = dict(request_id=request.request_id, function="audio_result", command=f"CI.{ref.kind}_review",
                            scene=ref.scene, sender=ref.sender, receiver=ref.receiver, group_id=ref.group_id,
                            msg_key=ref.msg_key, msg_seq=ref.msg_seq if ref.scene == "group" else None,
                            content_types=[ref.kind], reasons=[{k: v for k, v in reason.items() if v is not None}])

    def __call__(self, event: str, action: str, level: str = "info", **details: Any) -> Answer:
        latency_ms = round((time.monotonic() - self._started) * 1000, 1)
        self._trail.record(AuditRecord(event, action=action, level=level, latency_ms=latency_ms,
                                       details=dict(self._details, **details), **self._fields))
        answer: Dict[str, Any] = {"status": action, "job_id": self._details["job_id"]}
        if details.get("confirmation"):
            answer["reason"] = details["confirmation"]
        return 200, answer


def create_handler(environ: Optional[Mapping[str, str]] = None) -> AudioResultApp:
    settings = Settings.from_env(environ).require("JOB_SIGNING_KEY", "IM_SECRET_KEY")
    if settings.review.verify_with_query:
        settings.require("COS_BUCKET")
    return AudioResultApp(settings)
