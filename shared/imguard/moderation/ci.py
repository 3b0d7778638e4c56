"""Tencent COS content moderation (数据万象 CI) through the official cos-python-sdk-v5.

The SDK's habits (cos-ci-moderation.md §9) are absorbed here and nowhere else:
text goes in as bytes, every value comes back as a string, a singleton may or
may not be a list, and CI's XML error bodies defeat the SDK's error parser.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Iterable, List, Mapping, Optional, Tuple

from imguard.config import CosSettings
from imguard.moderation.verdict import CI_RESULTS, Outcome, Verdict

# CI rejects Content longer than 10,000 characters (cos-ci-moderation.md §6).
TEXT_LIMIT = 10_000


def as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_int(value: Any) -> Optional[int]:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


# Every JobId CI documents is two letters and 32 hex digits (sa…, av…, si…, st…). Anything else is
# refused before it reaches a URL path: a JobId is spliced into /audio/auditing/<JobId>.
_JOB_ID = re.compile(r"[A-Za-z]{2}[0-9a-fA-F]{32}")


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.fullmatch(job_id))


def text_chunks(text: str, limit: int = TEXT_LIMIT) -> List[str]:
    return [text[i : i + limit] for i in range(0, len(text), limit)] or [""]


@dataclass(frozen=True)
class JobResult:
    """An audio or video review job as CI reports it (query, or callback body)."""

    job_id: str
    data_id: str
    state: str  # Submitted, Auditing, Snapshoting, Success, Failed
    result: Optional[int]
    label: str = ""
    score: Optional[int] = None

    @property
    def finished(self) -> bool:
        return self.state == "Success"

    @property
    def outcome(self) -> Optional[Outcome]:
        return CI_RESULTS.get(self.result) if self.finished and self.result is not None else None

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> "JobResult":
        return cls(
            job_id=str(detail.get("JobId") or ""),
            data_id=str(detail.get("DataId") or ""),
            state=str(detail.get("State") or ""),
            result=as_int(detail.get("Result")),
            label=str(detail.get("Label") or ""),
            score=as_int(detail.get("Score")),
        )


class CiError(Exception):
    """A CI call failed; the message is safe to log (no message text in it)."""


class CiClient:
    """One per warm instance: the SDK client and its connection pool are reused."""

    def __init__(self, cos: CosSettings, timeout_s: float, pool_size: int = 32):
        # Imported here so that a function without CI configured never pays for the SDK.
        import requests
        from qcloud_cos import CosConfig, CosS3Client

        options = dict(
            SecretId=cos.secret_id,
            SecretKey=cos.secret_key,
            Token=cos.token,
            Scheme=cos.scheme,
            Timeout=timeout_s,
        )
        if cos.domain:
            options["Domain"] = cos.domain
        if cos.region:
            options["Region"] = cos.region
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # retry=0: the SDK sleeps 1 s, 2 s, ... between retries, and IM waits only 2 s.
        self._client = CosS3Client(CosConfig(**options), retry=0, session=session)
        self._bucket = cos.bucket
        self._biz_type = cos.biz_type

    # -- synchronous checks -------------------------------------------------

    def check_text(self, text: str, check: str = "text") -> Verdict:
        started = time.monotonic()
        try:
            response = self._client.ci_auditing_text_submit(
                Bucket=self._bucket, Content=text.encode("utf-8", "replace"), BizType=self._biz_type
            )
            return _text_verdict(response.get("JobsDetail") or {}, check, _ms_since(started))
        except Exception as exc:
            return _error_verdict(exc, check, started)

    def check_image(self, url: str, check: str = "image") -> Verdict:
        started = time.monotonic()
        try:
            response = self._client.get_object_sensitive_content_recognition(
                Bucket=self._bucket, DetectUrl=url, BizType=self._biz_type
            )
            return _image_verdict(response or {}, check, _ms_since(started))
        except Exception as exc:
            return _error_verdict(exc, check, started)

    # -- asynchronous audio / video review -----------------------------------

    def submit_media(self, kind: str, url: str, data_id: str, callback_url: str) -> str:
        """Start a review job; returns its JobId. ``kind`` is "audio" or "video"."""
        common = dict(
            Bucket=self._bucket,
            Key=None,
            Url=url,
            Callback=callback_url,
            CallbackVersion="Detail",
            BizType=self._biz_type,
            DataId=data_id,
        )
        try:
            if kind == "video":
                # DetectContent=1: the sound track of a video is reviewed too.
                response = self._client.ci_auditing_video_submit(DetectContent=1, **common)
            else:
                response = self._client.ci_auditing_audio_submit(**common)
        except Exception as exc:
            raise CiError(describe_sdk_error(exc)) from None
        job_id = (response.get("JobsDetail") or {}).get("JobId")
        if not job_id:
            raise CiError("submit answered without a JobId")
        return str(job_id)

    def query_media(self, kind: str, job_id: str) -> JobResult:
        if not valid_job_id(job_id):
            raise CiError("not a CI JobId")
        try:
            if kind == "video":
                response = self._client.ci_auditing_video_query(Bucket=self._bucket, JobID=job_id)
            else:
                response = self._client.ci_auditing_audio_query(Bucket=self._bucket, JobID=job_id)
        except Exception as exc:
            raise CiError(describe_sdk_error(exc)) from None
        detail = response.get("JobsDetail") if isinstance(response, Mapping) else None
        if not isinstance(detail, Mapping):
            raise CiError("query answered without JobsDetail")
        return JobResult.from_detail(detail)


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _scene_infos(node: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The per-scene blocks (PornInfo, AdsInfo, ...) of a result node."""
    for key, value in node.items():
        if key.endswith("Info"):
            for info in as_list(value):
                if isinstance(info, Mapping):
                    yield info


def _keywords(value: Any) -> List[str]:
    words: List[str] = []
    for item in as_list(value):
        if isinstance(item, str):
            words.extend(word.strip() for word in item.split(",") if word.strip())
    return words


def _collect(nodes: Iterable[Mapping[str, Any]]) -> Tuple[Optional[int], Tuple[str, ...]]:
    """Highest score and the keywords of the scenes that hit, across result nodes."""
    best: Optional[int] = None
    words: List[str] = []
    for node in nodes:
        for info in _scene_infos(node):
            if as_int(info.get("HitFlag")) in (1, 2):
                score = as_int(info.get("Score"))
                if score is not None and (best is None or score > best):
                    best = score
                words.extend(_keywords(info.get("Keywords")))
                for ocr in as_list(info.get("OcrResults")):
                    if isinstance(ocr, Mapping):
                        words.extend(_keywords(ocr.get("Keywords")))
    return best, tuple(dict.fromkeys(words))


def _verdict_from(node: Mapping[str, Any], sections: List[Mapping[str, Any]], check: str, latency: float) -> Verdict:
    if node.get("Code") not in (None, "0", "Success") and node.get("Result") is None:
        return Verdict(Outcome.ERROR, "ci", check, detail=f"CI job failed: {node.get('Code')}", latency_ms=latency)
    result = as_int(node.get("Result"))
    outcome = CI_RESULTS.get(result) if result is not None else None
    if outcome is None:
        return Verdict(Outcome.ERROR, "ci", check, detail=f"unexpected Result {node.get('Result')!r}", latency_ms=latency)
    score, keywords = _collect([node] + sections)
    top_score = as_int(node.get("Score"))
    return Verdict(
        outcome,
        "ci",
        check,
        label=str(node.get("Label") or ""),
        sub_label=str(node.get("SubLabel") or ""),
        score=top_score if top_score is not None else score,
        keywords=keywords,
        latency_ms=latency,
    )


def _text_verdict(detail: Mapping[str, Any], check: str, latency: float) -> Verdict:
    sections = [s for s in as_list(detail.get("Section")) if isinstance(s, Mapping)]
    return _verdict_from(detail, sections, check, latency)


def _image_verdict(result: Mapping[str, Any], check: str, latency: float) -> Verdict:
    return _verdict_from(result, [], check, latency)


def _error_verdict(exc: Exception, check: str, started: float) -> Verdict:
    return Verdict(Outcome.ERROR, "ci", check, detail=describe_sdk_error(exc), latency_ms=_ms_since(started))


_XML_FIELD = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")
_WITH_URL = re.compile(r"with url: \S+")


def describe_sdk_error(exc: Exception) -> str:
    """A short, log-safe description of a cos-python-sdk-v5 failure (CI or COS)."""
    from qcloud_cos.cos_exception import CosClientError, CosServiceError

    if isinstance(exc, CosServiceError):
        # The SDK's own parser wants a <Resource> element CI never sends; read the body ourselves.
        fields = dict(_XML_FIELD.findall(str(exc.get_origin_msg() or "")))
        code = fields.get("Code", "unknown")
        return f"HTTP {exc.get_status_code()} {code}: {fields.get('Message', '')}".strip()
    if isinstance(exc, CosClientError):
        message = str(exc.get_message() if hasattr(exc, "get_message") else exc)
        if "timed out" in message.lower() or "timeout" in message.lower():
            return "network: timed out"
        # urllib3 quotes the request path, and an image check's path carries the user's image URL,
        # presigned query string and all.
        return "network: " + _WITH_URL.sub("with url: …", message.split(": ", 1)[-1])[:160]
    if type(exc).__name__ == "ParseError":
        return "malformed response: not XML"
    return f"{type(exc).__name__}"
