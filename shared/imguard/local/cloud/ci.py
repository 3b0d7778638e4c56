"""A fake COS content-moderation (CI) service speaking the documented XML.

The real cos-python-sdk-v5 client reaches it through CI_DOMAIN / CI_SCHEME
(cos-ci-moderation.md §3); shapes follow §8 of the same file. Tests say what
CI should conclude about a word or a URL, and read back what CI was asked.

Its own answers come in one tidy shape. Real CI's do not: ``serve`` makes it answer
with a recorded one from tests/events/ci/ (see the README there), byte for byte.
"""
from __future__ import annotations

import base64
import itertools
import re
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from xml.sax.saxutils import escape

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


@dataclass
class Finding:
    """What CI says about one input."""

    result: int = 0
    label: str = "Normal"
    score: int = 0
    keywords: List[str] = field(default_factory=list)
    sub_label: str = ""
    delay_s: float = 0.0


@dataclass
class Failure:
    status: int = 500
    body: str = "<Error><Code>InternalError</Code><Message>boom</Message><RequestId>r</RequestId></Error>"
    delay_s: float = 0.0
    trickle_s: float = 0.0  # headers at once, then the body after this long


def _trickled(body: str, pause_s: float):
    yield body[:10].encode()
    time.sleep(pause_s)
    yield body[10:].encode()


@dataclass
class Call:
    kind: str  # text, image, audio, video, audio_query, video_query
    method: str
    path: str
    query: Dict[str, str]
    fields: Dict[str, str]  # the flattened request XML (Input/Content decoded)


def _xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(k, v) for k, v in value.items())
    elif isinstance(value, list):
        return "".join(_xml(tag, item) for item in value)
    else:
        inner = escape(str(value))
    return f"<{tag}>{inner}</{tag}>"


def _flatten(element: ET.Element, prefix: str = "") -> Dict[str, str]:
    out: Dict[str, str] = {}
    for child in element:
        path = f"{prefix}{child.tag}"
        if len(child):
            out.update(_flatten(child, path + "/"))
        else:
            out[path] = child.text or ""
    return out


class FakeCI:
    SCENE = {"Porn": "PornInfo", "Ads": "AdsInfo", "Illegal": "IllegalInfo", "Abuse": "AbuseInfo"}

    def __init__(self, server: HTTPServer, secret_id: Optional[str] = None):
        self.server = server
        # With a secret id, only requests signed with it are recorded (all are answered): a test's CI call that
        # an earlier test abandoned at its deadline, arriving late, is not counted as this test's.
        self.secret_id = secret_id
        self.calls: List[Call] = []
        self.words: Dict[str, Finding] = {}
        self.images: Dict[str, Finding] = {}
        self.jobs: Dict[str, Dict[str, Any]] = {}  # JobId -> what a query answers
        self.media: Dict[str, Finding] = {}  # audio/video URL -> the review's final verdict
        self.failure: Optional[Failure] = None
        self.verbatim: Dict[str, Tuple[int, bytes]] = {}  # kind -> (status, body) served as recorded
        self.text_delay_s = 0.0
        self.audio_delay_s = 0.0  # how long accepting an audio/video job takes
        # Told (JobId, Conf/Callback) of each accepted job: the local cloud posts the verdict back, as CI does.
        self.on_submit: Optional[Callable[[str, str], None]] = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    # -- what tests configure ------------------------------------------------

    @property
    def domain(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    def flag_word(self, word: str, **finding: Any) -> None:
        self.words[word] = Finding(**{"result": 1, "label": "Ads", "score": 90, **finding})

    def flag_image(self, url: str, **finding: Any) -> None:
        self.images[url] = Finding(**{"result": 1, "label": "Porn", "score": 95, **finding})

    def flag_media(self, url: str, **finding: Any) -> None:
        self.media[url] = Finding(**{"result": 1, "label": "Porn", "score": 92, **finding})

    def slow_image(self, url: str, delay_s: float) -> None:
        self.images[url] = Finding(delay_s=delay_s)

    def fail(self, status: int = 500, body: Optional[str] = None, delay_s: float = 0.0, trickle_s: float = 0.0) -> None:
        self.failure = Failure(status, body if body is not None else Failure.body, delay_s, trickle_s)

    def serve(self, kind: str, body: Union[str, bytes], status: int = 200) -> None:
        """Answer every request of ``kind`` (text, image, audio, video, audio_query, video_query) with
        ``body``, byte for byte: a recorded answer (``recorded(...)``) exactly as CI's documents give it."""
        self.verbatim[kind] = (status, body.encode("utf-8") if isinstance(body, str) else body)

    def calls_of(self, kind: str) -> List[Call]:
        return [c for c in self.calls if c.kind == kind]

    # -- the wire ------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        call = self._record(request)
        if self.failure is not None:
            failure = self.failure
            time.sleep(failure.delay_s)
            if failure.trickle_s:
                return Response(_trickled(failure.body, failure.trickle_s), status=failure.status,
                                content_type="application/xml", direct_passthrough=True)
            return Response(failure.body, status=failure.status, content_type="application/xml")
        if call.kind in self.verbatim:
            status, body = self.verbatim[call.kind]
            return Response(body, status=status, content_type="application/xml")
        answer = getattr(self, f"_answer_{call.kind}", None)
        if answer is None:
            return Response(_xml("Error", {"Code": "NoSuchRoute", "Message": call.path}), status=404)
        return Response(answer(call), status=200, content_type="application/xml")

    def _record(self, request: Request) -> Call:
        path, query = request.path, dict(request.args)
        fields: Dict[str, str] = {}
        if request.data:
            fields = _flatten(ET.fromstring(request.data))
            if "Input/Content" in fields:
                fields["Input/Content"] = base64.b64decode(fields["Input/Content"]).decode("utf-8")
        if query.get("ci-process") == "sensitive-content-recognition":
            kind = "image"
        else:
            parts = path.strip("/").split("/")  # text/auditing[/JobId]
            kind = parts[0] + ("_query" if len(parts) == 3 else "")
        call = Call(kind, request.method, path, query, fields)
        signer = re.search(r"q-ak=([^&]+)", request.headers.get("Authorization", ""))
        if self.secret_id is None or (signer is not None and signer.group(1) == self.secret_id):
            with self._lock:
                self.calls.append(call)
        return call

    def _answer_text(self, call: Call) -> str:
        time.sleep(self.text_delay_s)
        text = call.fields.get("Input/Content", "")
        hits = [(word, f) for word, f in self.words.items() if word in text]
        worst = max((f for _, f in hits), key=lambda f: (f.result == 1, f.result, f.score), default=Finding())
        section: Dict[str, Any] = {"StartByte": 0, "Label": worst.label, "Result": worst.result}
        if hits:
            section[self.SCENE.get(worst.label, "AdsInfo")] = {
                "HitFlag": 1,
                "Score": worst.score,
                "Keywords": ",".join(word for word, _ in hits),
            }
        detail = {
            "JobId": f"st{next(self._ids)}",
            "Content": base64.b64encode(text.encode()).decode(),
            "State": "Success",
            "CreationTime": "2026-11-21T12:00:00+0800",
            "SectionCount": 1,
            "Label": worst.label,
            "Result": worst.result,
            "Score": worst.score,
            "Section": section,
        }
        return _xml("Response", {"JobsDetail": detail, "RequestId": "fake-text"})

    def _answer_image(self, call: Call) -> str:
        url = call.query.get("detect-url", "")
        finding = self.images.get(url, Finding())
        time.sleep(finding.delay_s)
        result: Dict[str, Any] = {
            "JobId": f"si{next(self._ids)}",
            "Url": url,
            "Result": finding.result,
            "Label": finding.label,
            "SubLabel": finding.sub_label,
            "Score": finding.score,
        }
        if finding.result:
            result[self.SCENE.get(finding.label, "PornInfo")] = {
                "Code": 0, "Msg": "OK", "HitFlag": 1, "Score": finding.score, "Label": finding.label,
                "SubLabel": finding.sub_label,
            }
        return _xml("RecognitionResult", result)

    # -- audio / video review jobs ----------------------------------------------

    def _answer_audio(self, call: Call) -> str:
        return self._submit(call, "audio")

    def _answer_video(self, call: Call) -> str:
        return self._submit(call, "video")

    def _submit(self, call: Call, kind: str) -> str:
        time.sleep(self.audio_delay_s)
        # CI's JobIds: two letters and 32 hex digits (e.g. aab1ca9fc8a3ed11ea834c525400863904 in the API docs).
        job_id = f"{'sa' if kind == 'audio' else 'av'}{next(self._ids):032x}"
        url = call.fields.get("Input/Url", "")
        finding = self.media.get(url, Finding())
        self.jobs[job_id] = {
            "kind": kind,
            "JobId": job_id,
            "DataId": call.fields.get("Input/DataId", ""),
            "Url": url,
            "State": "Success",
            "Result": finding.result,
            "Label": finding.label,
            "Score": finding.score,
        }
        detail = {"DataId": call.fields.get("Input/DataId", ""), "JobId": job_id, "State": "Submitted",
                  "CreationTime": "2026-11-21T12:00:00+0800"}
        if self.on_submit is not None and call.fields.get("Conf/Callback"):
            self.on_submit(job_id, call.fields["Conf/Callback"])
        return _xml("Response", {"JobsDetail": detail, "RequestId": "fake-submit"})

    def _answer_audio_query(self, call: Call) -> str:
        return self._query(call)

    def _answer_video_query(self, call: Call) -> str:
        return self._query(call)

    def _query(self, call: Call) -> str:
        job = self.jobs.get(call.path.rsplit("/", 1)[-1])
        if job is None:
            return _xml("Response", {"JobsDetail": {"Code": "NotFound", "Message": "no such job", "State": "Failed"}})
        detail = {k: v for k, v in job.items() if k != "kind"}
        detail.update(Code="Success", Message="Success", CreationTime="2026-11-21T12:00:00+0800")
        return _xml("Response", {"JobsDetail": detail, "RequestId": "fake-query"})

    def detail_callback(self, job_id: str, **overrides: Any) -> Dict[str, Any]:
        """The body CI POSTs to Conf/Callback with CallbackVersion=Detail (§5.2)."""
        job = self.jobs[job_id]
        detail = {"JobId": job_id, "DataId": job["DataId"], "State": "Success", "Url": job["Url"],
                  "Label": job["Label"], "Result": job["Result"],
                  "PornInfo": {"HitFlag": int(job["Result"] != 0), "Score": job["Score"], "Label": ""}}
        detail.update(overrides)
        event = "ReviewAudio" if job["kind"] == "audio" else "ReviewVideo"
        return {"EventName": event, "JobsDetail": detail}

    def simple_callback(self, job_id: str, **overrides: Any) -> Dict[str, Any]:
        """The legacy Simple-version body (§5.1)."""
        job = self.jobs[job_id]
        data = {"event": "ReviewAudio" if job["kind"] == "audio" else "ReviewVideo", "forbidden_status": 0,
                "porn_info": {"hit_flag": int(job["Result"] != 0), "label": "", "score": job["Score"]},
                "result": job["Result"], "trace_id": job_id, "url": job["Url"], "data_id": job["DataId"]}
        data.update(overrides)
        return {"code": 0, "data": data, "message": "success"}
