"""Tencent COS content moderation (数据万象 CI) through the official cos-python-sdk-v5.

The SDK's habits (cos-ci-moderation.md §9) are absorbed here and nowhere else:
text goes in as bytes, CI's XML error bodies defeat the SDK's error parser, and
its post-processing of answers crashes on answers CI documents. The SDK signs and
sends every request; the answers that carry verdicts are read by ci_xml.py.
"""
from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from imguard.config import CosSettings
from imguard.moderation.ci_xml import CiAnswerError, Reading, as_int, as_list, parse_answer, read_result, text_of
from imguard.moderation.verdict import CI_RESULTS, Outcome, Verdict

__all__ = ["TEXT_LIMIT", "CiClient", "CiError", "JobResult", "as_int", "as_list", "describe_sdk_error",
           "text_chunks", "valid_job_id"]

# CI rejects Content longer than 10,000 characters (cos-ci-moderation.md §6).
TEXT_LIMIT = 10_000


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
    result: Optional[int]  # CI's Result, or the one its scenes and sections imply (ci_xml.read_result)
    label: str = ""
    score: Optional[int] = None
    sub_label: str = ""
    keywords: Tuple[str, ...] = ()
    detail: str = ""  # why there is no verdict: a Failed job's Code and Message, an answer without one

    @property
    def finished(self) -> bool:
        return self.state == "Success"

    @property
    def failed(self) -> bool:
        """CI gave up on the job: no verdict will ever come, however often it is asked."""
        return self.state == "Failed"

    @property
    def outcome(self) -> Optional[Outcome]:
        return CI_RESULTS.get(self.result) if self.finished and self.result is not None else None

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any], kind: str = "audio") -> "JobResult":
        """A JobsDetail: from a query's XML (through ci_xml.parse_answer) or a Detail callback's JSON."""
        # An audio scene's Label is the keyword it hit (audio docs); a video snapshot's is a composite tag.
        reading = read_result(detail, label_is_keyword=kind == "audio")
        return cls(
            job_id=text_of(detail.get("JobId")),
            data_id=text_of(detail.get("DataId")),
            state=text_of(detail.get("State")),
            result=reading.result,
            label=reading.label,
            score=reading.score,
            sub_label=reading.sub_label,
            keywords=reading.keywords,
            detail=reading.problem,
        )


class CiError(Exception):
    """A CI call failed; the message is safe to log (no message text in it)."""


class CiClient:
    """One per warm instance: the SDK client and its connection pool are reused.

    The SDK (and requests under it, ~90 ms on SCF's Python) is imported by the first CI call, not at
    cold start: that call's time counts against the deadline, which counts the start-up too, and an
    instance whose first messages are all settled by the local rules never pays it.
    """

    def __init__(self, cos: CosSettings, timeout_s: float, pool_size: int = 32):
        self._cos = cos
        self._timeout_s = timeout_s
        self._pool_size = pool_size
        self._bucket = cos.bucket
        self._biz_type = cos.biz_type
        self._built: Optional[Tuple[Any, Any, Optional[str]]] = None
        self._building = threading.Lock()

    def _sdk(self) -> Tuple[Any, Any, Optional[str]]:
        """(CosConfig, CosS3Client, CI endpoint), built once; the first CI calls of an instance run in
        parallel (text and images fan out), so one builds while the others wait for it."""
        built = self._built
        if built is None:
            with self._building:
                if self._built is None:
                    self._built = _build_sdk(self._cos, self._timeout_s, self._pool_size)
                built = self._built
        return built

    # -- synchronous checks -------------------------------------------------

    def check_text(self, text: str, check: str = "text", biz_type: Optional[str] = None) -> Verdict:
        """``biz_type``: a scene's own CI policy; CI_BIZTYPE (or CI's default policy) without one."""
        started = time.monotonic()
        try:
            # The request ci_auditing_text_submit(Content=..., BizType=...) sends, byte for byte.
            biz_type = biz_type or self._biz_type
            conf: Dict[str, Any] = {"BizType": biz_type} if biz_type else {}
            content = base64.b64encode(text.encode("utf-8", "replace")).decode("ascii")
            answer = self._request("POST", "text/auditing", ci=True, body={"Input": {"Content": content}, "Conf": conf})
            detail = answer.get("JobsDetail")
            if not isinstance(detail, Mapping):
                return _error(check, "answer without JobsDetail", started)
            return _verdict(read_result(detail), check, started)
        except Exception as exc:
            return _error_verdict(exc, check, started)

    def check_image(self, url: str, check: str = "image", biz_type: Optional[str] = None) -> Verdict:
        started = time.monotonic()
        biz_type = biz_type or self._biz_type
        try:
            # The request get_object_sensitive_content_recognition(DetectUrl=..., BizType=...) sends: a GET on
            # the COS host, the object key "/" (none), the options in the query string.
            params = {"ci-process": "sensitive-content-recognition", "detect-url": url}
            if biz_type:
                params["biz-type"] = biz_type
            answer = self._request("GET", None, ci=False, params=params)
            # A job query's shape (<Response><JobsDetail>) carries the same fields one level down.
            detail = answer.get("JobsDetail")
            return _verdict(read_result(detail if isinstance(detail, Mapping) else answer), check, started)
        except Exception as exc:
            return _error_verdict(exc, check, started)

    def _request(self, method: str, path: Optional[str], ci: bool, params: Optional[Dict[str, Any]] = None,
                 body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Send a request as the SDK's own methods do, and read CI's XML answer ourselves (ci_xml.py says why).

        Everything but the reading is the SDK's: ``CosConfig.uri`` for the URL, ``CosS3Auth`` for the
        signature, ``format_values``/``format_xml`` for the parameters and the body, and
        ``CosS3Client.send_request`` for the session, the timeout, the security token header and the
        ``CosServiceError``/``CosClientError`` raised on failure. Only the SDK's ``xml_to_dict`` and the
        ``format_dict`` calls after it, which crash on documented answers, are left out.
        """
        from qcloud_cos.cos_auth import CosS3Auth
        from qcloud_cos.cos_comm import format_values, format_xml

        query = format_values(dict(params or {}))
        headers: Dict[str, Any] = {}
        extra: Dict[str, Any] = {}
        if body is not None:
            headers["Content-Type"] = "application/xml"
            extra["data"] = format_xml(data=body, root="Request")
        conf, client, ci_endpoint = self._sdk()
        url = conf.uri(bucket=self._bucket, path=path, endpoint=ci_endpoint if ci else None)
        response = client.send_request(method=method, url=url, bucket=self._bucket,
                                       auth=CosS3Auth(conf, path, params=query), params=query,
                                       headers=headers, ci_request=ci, **extra)
        return parse_answer(response.content)[1]  # the children of the root (RecognitionResult, Response)

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
            client = self._sdk()[1]
            if kind == "video":
                # DetectContent=1: the sound track of a video is reviewed too.
                response = client.ci_auditing_video_submit(DetectContent=1, **common)
            else:
                response = client.ci_auditing_audio_submit(**common)
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
            # The request ci_auditing_{audio,video}_query sends; the answer read by ci_xml.
            answer = self._request("GET", f"{'video' if kind == 'video' else 'audio'}/auditing/{job_id}", ci=True)
        except Exception as exc:
            raise CiError(describe_sdk_error(exc)) from None
        detail = answer.get("JobsDetail")
        if not isinstance(detail, Mapping):
            raise CiError("query answered without JobsDetail")
        return JobResult.from_detail(detail, kind)


def _build_sdk(cos: CosSettings, timeout_s: float, pool_size: int) -> Tuple[Any, Any, Optional[str]]:
    import requests
    from qcloud_cos import CosConfig, CosS3Client
    from qcloud_cos.cos_comm import format_endpoint

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    conf = CosConfig(**cos.sdk_options(timeout_s))
    # retry=0: the SDK sleeps 1 s, 2 s, ... between retries, and IM waits only 2 s.
    client = CosS3Client(conf, retry=0, session=session)
    # The CI host, computed as CosConfig computes it (format_endpoint(EndpointCi, Region, 'ci.', True,
    # False)); with CI_DOMAIN set, conf.uri() uses the domain instead, as it does for the SDK's methods.
    endpoint = format_endpoint(None, cos.region, "ci.", True, False) if cos.region else None
    return conf, client, endpoint


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _verdict(reading: Reading, check: str, started: float) -> Verdict:
    if reading.result is None:
        return _error(check, reading.problem, started)
    return Verdict(CI_RESULTS[reading.result], "ci", check, label=reading.label, sub_label=reading.sub_label,
                   score=reading.score, keywords=reading.keywords, latency_ms=_ms_since(started))


def _error(check: str, detail: str, started: float) -> Verdict:
    return Verdict(Outcome.ERROR, "ci", check, detail=detail, latency_ms=_ms_since(started))


def _error_verdict(exc: Exception, check: str, started: float) -> Verdict:
    return _error(check, describe_sdk_error(exc), started)


_XML_FIELD = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")
_WITH_URL = re.compile(r"with url: \S+")


def describe_sdk_error(exc: Exception) -> str:
    """A short, log-safe description of a cos-python-sdk-v5 failure (CI or COS)."""
    from qcloud_cos.cos_exception import CosClientError, CosServiceError

    if isinstance(exc, CiAnswerError):
        return f"malformed response: {exc}"
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
