"""The asynchronous review loop as tests drive it: IM calling im_callback and storing what it
delivers, CI posting its verdict to audio_result."""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

from tests.conftest import answer_of, im_query, load_event, scf_context, trigger_event
from imguard.local.cloud.ci import FakeCI
from imguard.local.cloud.im import FakeIM

C2C_BEFORE = "C2C.CallbackBeforeSendMsg"
GROUP_AFTER = "Group.CallbackAfterSendMsg"

SOUND_URL = "https://1234-5678187359-1253735226.cos.ap-shanghai.myqcloud.com/abc123/c9be9d32c05bfb77b3edafa4312c6c7d"
VIDEO_URL = "https://0345-1400187352-1256635546.cos.ap-shanghai.myqcloud.com/abcd/f7c6ad3c50af7d83e23efe0a208b90c9"


def send_c2c(handler: Callable, body: Dict[str, Any], im: Optional[FakeIM] = None,
             query: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """IM asking im_callback about a C2C message; with ``im``, IM then stores what it delivers."""
    answer = answer_of(handler(trigger_event(body, query or im_query(C2C_BEFORE)), scf_context()))
    if im is not None and answer["ErrorCode"] == 0:
        im.deliver_c2c(dict(body, MsgBody=answer.get("MsgBody", body["MsgBody"])))
    return answer


def send_group(handler: Callable, body: Dict[str, Any], im: Optional[FakeIM] = None) -> Dict[str, Any]:
    """A delivered group message: IM stores it (with ``im``), then tells im_callback after sending."""
    if im is not None:
        im.deliver_group(body)
    return answer_of(handler(trigger_event(body, im_query(GROUP_AFTER)), scf_context()))


def group_video(msg_seq: int = 4711, **changes: Any) -> Dict[str, Any]:
    body = dict(load_event("im/group_before_text_topic"), CallbackCommand=GROUP_AFTER, MsgSeq=msg_seq,
                MsgTime=1717000100, MsgBody=load_event("im/c2c_before_video")["MsgBody"])
    body.update(changes)
    return body


def post_result(handler: Callable, body: Dict[str, Any], time_limit_ms: int = 30000) -> Dict[str, Any]:
    """CI posting its verdict: no IM query string, no signature."""
    event = trigger_event(body, {})
    event["path"] = "/audio_result"
    return handler(event, {"request_id": "ci-cb", "time_limit_in_ms": time_limit_ms})


def submissions(ci: FakeCI, kind: str, count: int = 1, timeout: float = 5.0) -> list:
    """CI's ``kind`` submissions once ``count`` have arrived: they finish after the answer (the answer
    waits for them only so long), and an instance's first one also loads the COS SDK."""
    end = time.monotonic() + timeout
    while len(ci.calls_of(kind)) < count and time.monotonic() < end:
        time.sleep(0.02)
    return ci.calls_of(kind)


def job_for(ci: FakeCI, url: str, timeout: float = 5.0) -> str:
    """The JobId CI gave the review of ``url``; submissions finish after the answer, so wait for it."""
    end = time.monotonic() + timeout
    while True:
        jobs = [job_id for job_id, job in list(ci.jobs.items()) if job["Url"] == url]
        if jobs or time.monotonic() > end:
            [job_id] = jobs
            return job_id
        time.sleep(0.02)
