"""The audio_result function: CI's review verdicts in, violating messages withdrawn.

The endpoint is public and CI does not sign its callbacks, so nothing in a
posted body is acted on until (1) its DataId carries our HMAC and (2) CI,
asked by JobId over a signed request, confirms the verdict for that DataId.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional

from imguard import logs
from imguard.audit.record import AuditRecord
from imguard.audit.trail import AuditTrail
from imguard.config import Settings
from imguard.http import HttpRequest, ServiceUnavailable, Unauthorized
from imguard.http.boundary import serve
from imguard.http.errors import HttpError
from imguard.im.rest import ImRestClient, RestResult
from imguard.moderation.ci import CiClient, CiError, JobResult
from imguard.moderation.verdict import Outcome
from imguard.review.ci_callback import CiCallback
from imguard.review.jobref import InvalidJobRef, JobRef

# Leave this much of the function's time limit for answering and logging.
SAFETY_MARGIN_S = 3.0
DEFAULT_TIME_LIMIT_S = 30.0


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

    def __call__(self, event: Any, context: Any) -> Dict[str, Any]:
        return serve(event, context, self.route)

    def route(self, request: HttpRequest):
        started = time.monotonic()
        limit_s = request.time_limit_s(DEFAULT_TIME_LIMIT_S)
        deadline = started + max(1.0, limit_s - SAFETY_MARGIN_S)
        callback = CiCallback.from_body(request.json_object())
        log = dict(request_id=request.request_id, version=callback.version, kind=callback.kind,
                   job_id=callback.job.job_id)
        try:
            ref = JobRef.verify(callback.job.data_id, self.settings.review.signing_key)
        except InvalidJobRef as exc:
            logs.emit("review.forged", level="warning", reason=str(exc), **log)
            raise Unauthorized(f"DataId rejected: {exc}") from None
        log.update(scene=ref.scene, sender=ref.sender, target=ref.group_id or ref.receiver)

        job = self._authoritative(callback, ref, log)
        outcome = job.outcome
        if outcome is None:
            # CI's retries (every 30 min for a day) bring the final result later.
            logs.emit("review.unfinished", level="warning", state=job.state, **log)
            raise ServiceUnavailable("review not finished", state=job.state)
        should_withdraw = outcome is Outcome.BLOCK or (
            outcome is Outcome.SUSPICIOUS and self.settings.suspicious_action == "block"
        )
        reason = {"source": "ci", "check": ref.kind, "outcome": outcome.value, "label": job.label or None,
                  "score": job.score}
        audit = dict(request_id=request.request_id, function="audio_result", command=f"CI.{ref.kind}_review",
                     scene=ref.scene, sender=ref.sender, receiver=ref.receiver, group_id=ref.group_id,
                     msg_key=ref.msg_key, msg_seq=ref.msg_seq if ref.scene == "group" else None,
                     content_types=[ref.kind], reasons=[{k: v for k, v in reason.items() if v is not None}])
        details = dict(version=callback.version, job_id=job.job_id, result=job.result)
        if not should_withdraw:
            action = "kept" if outcome is Outcome.SUSPICIOUS else "passed"
            self.trail.record(AuditRecord("review.decided", action=action, latency_ms=_ms_since(started),
                                          details=details, **audit))
            return 200, {"status": action, "job_id": job.job_id}

        result = self._withdraw(ref, deadline)
        details.update(im_error_code=result.error_code, attempts=result.attempts)
        if not result.done:
            self.trail.record(AuditRecord("review.withdraw_failed", action="withdraw_failed", level="error",
                                          latency_ms=_ms_since(started), details=dict(details, detail=result.detail),
                                          **audit))
            raise WithdrawFailed("IM did not withdraw the message", im_error_code=result.error_code)
        self.trail.record(AuditRecord("review.withdrawn", action=result.status, latency_ms=_ms_since(started),
                                      details=details, **audit))
        return 200, {"status": result.status, "job_id": job.job_id}

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

    def _withdraw(self, ref: JobRef, deadline: float) -> RestResult:
        if ref.scene == "group":
            return self.im.recall_group(ref.group_id, ref.msg_seq, ref.topic_id, deadline)
        return self.im.withdraw_c2c(ref.sender, ref.receiver, ref.msg_key, deadline)


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def create_handler(environ: Optional[Mapping[str, str]] = None) -> AudioResultApp:
    settings = Settings.from_env(environ).require("JOB_SIGNING_KEY", "IM_SECRET_KEY")
    if settings.review.verify_with_query:
        settings.require("COS_BUCKET")
    return AudioResultApp(settings)
