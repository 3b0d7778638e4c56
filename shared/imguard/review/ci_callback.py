"""CI's audio/video review callback, in either version (cos-ci-moderation.md §5).

Simple: ``{"code", "message", "data": {"event", "trace_id", "data_id", "result", ...}}``.
Detail: ``{"EventName", "JobsDetail": {"JobId", "DataId", "State", "Result", "Label", ...}}``.
The body is unauthenticated: only its DataId signature and CI's own query are trusted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from imguard.http import BadRequest
from imguard.moderation.ci import JobResult, as_int

_KINDS = {"ReviewAudio": "audio", "ReviewVideo": "video"}


@dataclass(frozen=True)
class CiCallback:
    version: str  # "Simple" or "Detail"
    kind: str  # "audio" or "video"
    job: JobResult

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "CiCallback":
        if isinstance(body.get("JobsDetail"), Mapping):
            kind = _KINDS.get(str(body.get("EventName")))
            if kind is None:
                raise BadRequest("EventName must be ReviewAudio or ReviewVideo")
            return cls("Detail", kind, JobResult.from_detail(body["JobsDetail"]))
        data = body.get("data")
        if isinstance(data, Mapping) and "code" in body:
            kind = _KINDS.get(str(data.get("event")))
            if kind is None:
                raise BadRequest("data.event must be ReviewAudio or ReviewVideo")
            failed = as_int(body.get("code")) != 0
            job = JobResult(
                job_id=str(data.get("trace_id") or ""),
                data_id=str(data.get("data_id") or ""),
                state="Failed" if failed else "Success",
                result=as_int(data.get("result")),
            )
            return cls("Simple", kind, job)
        raise BadRequest("not a CI review callback (expected JobsDetail or code/data)")
