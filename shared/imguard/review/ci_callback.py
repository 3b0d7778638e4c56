"""CI's audio/video review callback, in either version (cos-ci-moderation.md §5).

Simple: ``{"code", "message", "data": {"event", "trace_id", "data_id", "result", ...}}``.
Detail: ``{"EventName", "JobsDetail": {"JobId", "DataId", "State", "Result", "Label", ...}}``.
The body is unauthenticated: only its DataId signature and CI's own query are trusted.

A third body is no verdict at all: the Simple "test" CI posts when the callback URL is set or tested in its
console (音频审核回调内容 / 视频审核回调内容, "Test request when setting callback url", trace_id
``test_trace_id``, and for audio no ``data.event``). It is recognised and acknowledged, nothing more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping

from imguard.http import BadRequest
from imguard.moderation.ci import JobResult, as_int
from imguard.moderation.ci_xml import text_of

_KINDS = {"ReviewAudio": "audio", "ReviewVideo": "video"}

# The documented test callback (tests/events/ci/cb_audio_simple_test.json, cb_video_simple_test.json).
TEST_MESSAGE = "Test request when setting callback url"
TEST_TRACE_ID = "test_trace_id"


@dataclass(frozen=True)
class CiCallback:
    version: str  # "Simple" or "Detail"
    kind: str  # "audio" or "video" ("" for a test ping that names no event)
    job: JobResult
    test: bool = False  # CI's console testing the URL: acknowledge, act on nothing

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "CiCallback":
        if isinstance(body.get("JobsDetail"), Mapping):
            kind = _KINDS.get(str(body.get("EventName")))
            if kind is None:
                raise BadRequest("EventName must be ReviewAudio or ReviewVideo")
            return cls("Detail", kind, JobResult.from_detail(body["JobsDetail"], kind))
        data = body.get("data")
        if isinstance(data, Mapping) and "code" in body:
            kind = _KINDS.get(str(data.get("event")))
            if _is_test(body, data):
                # A test carries no DataId, so nothing in it could be verified or acted on anyway; a body that
                # names a DataId is a verdict, whatever its message says, and goes through every check.
                return cls("Simple", kind or "", JobResult(job_id="", data_id="", state="", result=None), test=True)
            if kind is None:
                raise BadRequest("data.event must be ReviewAudio or ReviewVideo")
            return cls("Simple", kind, _simple_job(body, data, kind))
        raise BadRequest("not a CI review callback (expected JobsDetail or code/data)")


def _is_test(body: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    return "data_id" not in data and (body.get("message") == TEST_MESSAGE or data.get("trace_id") == TEST_TRACE_ID)


def _simple_job(body: Mapping[str, Any], data: Mapping[str, Any], kind: str) -> JobResult:
    """A Simple body as a JobsDetail would say it: ``porn_info: {hit_flag, score, label}`` is
    ``PornInfo: {HitFlag, Score, Label}``, so one reader (ci_xml.read_result) serves both versions."""
    failed = as_int(body.get("code")) != 0
    if failed:
        message = text_of(body.get("message"))[:120]
        return JobResult(job_id=text_of(data.get("trace_id")), data_id=text_of(data.get("data_id")), state="Failed",
                         result=None, detail=f"CI job failed: code {text_of(body.get('code'))[:20]}"
                                             + (f" ({message})" if message else ""))
    detail: Dict[str, Any] = {"JobId": data.get("trace_id"), "DataId": data.get("data_id"), "State": "Success",
                              "Result": data.get("result")}
    for key, value in data.items():
        if isinstance(key, str) and key.endswith("_info") and isinstance(value, Mapping):
            scene = key[: -len("_info")].capitalize() + "Info"
            detail[scene] = {"HitFlag": value.get("hit_flag"), "Score": value.get("score"), "Label": value.get("label")}
    return JobResult.from_detail(detail, kind)

