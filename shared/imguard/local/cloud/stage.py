"""The local cloud `make run` starts: the stand-in CI and IM on loopback, wired to both functions.

What it does that the real services do, so that everything works end to end with no account:
- CI judges texts, images and media by the verdicts below (anything else passes) and, like the real
  one, POSTs its Detail callback to audio_result a moment after a review job is submitted;
- IM keeps what it delivers: after im_callback lets a C2C message through it stores it (rewritten, if
  it was), a group message when the after-send callback reports it, so that audio_result and the
  review queue find it when they read IM's history before withdrawing; mutes land in it too.

What is not real is said in `make run`'s banner. The verdicts are a fixed demo list, not CI's models.
"""
from __future__ import annotations

import json
import secrets
import threading
import urllib.request
from typing import Any, Dict, Mapping

from pytest_httpserver import HTTPServer

from imguard.im.callbacks import Command
from imguard.local.cloud.ci import FakeCI
from imguard.local.cloud.im import FakeIM

BUCKET = "imguard-local-1250000000"
ADMIN = "administrator"
CALLBACK_DELAY_S = 1.0
# Callbacks to the local server are signed with this, so that `imguard replay` (another process) can sign
# as IM does. It guards nothing: the server listens on loopback, and no deployed function ever sees it.
LOCAL_CALLBACK_TOKEN = "imguard-local-callback-token"  # real CI takes seconds to minutes; this is long enough to see the order of things

# The stand-in CI's verdicts (tests/events/demo uses them). Labels as CI spells them.
WORDS = {"代开发票": "Ads", "加我微信领红包": "Ads", "约炮": "Porn"}
IMAGES = {"https://imguard-local.example.com/demo/porn.jpg": "Porn"}
MEDIA = {"https://imguard-local.example.com/demo/violating.mp3": "Porn",
         "https://imguard-local.example.com/demo/violating.mp4": "Porn"}


class LocalCloud:
    def __init__(self, sdk_app_id: int, callback_base: str):
        self.secret_key = secrets.token_hex(16)  # the local app's IM secret: only these two processes know it
        self._ci_server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self._im_server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self._ci_server.start()
        self._im_server.start()
        self.ci = FakeCI(self._ci_server)
        self.im = FakeIM(self._im_server, sdk_app_id, self.secret_key, ADMIN)
        for word, label in WORDS.items():
            self.ci.flag_word(word, label=label)
        for url, label in IMAGES.items():
            self.ci.flag_image(url, label=label)
        for url, label in MEDIA.items():
            self.ci.flag_media(url, label=label)
        self.ci.on_submit = self._post_verdict_later
        self._callback_base = callback_base

    def environment(self) -> Dict[str, str]:
        """What both functions are given to use the stand-ins (an operator's own values win)."""
        return {
            "COS_BUCKET": BUCKET, "COS_REGION": "ap-guangzhou", "COS_SECRET_ID": "AKIDlocal",
            "COS_SECRET_KEY": "local-secret", "CI_DOMAIN": self.ci.domain, "CI_SCHEME": "http",
            "IM_API_BASE": self.im.base_url, "IM_SECRET_KEY": self.secret_key, "IM_ADMIN_IDENTIFIER": ADMIN,
            "RESULT_CALLBACK_URL": f"{self._callback_base}/audio_result",
            "JOB_SIGNING_KEY": secrets.token_hex(16), "IM_CALLBACK_TOKEN": LOCAL_CALLBACK_TOKEN,
        }

    def observe(self, function: str, event: Mapping[str, Any], result: Any) -> None:
        """The gateway's report of an answered call: IM stores what it would now deliver."""
        if function != "im_callback" or not isinstance(result, Mapping) or result.get("statusCode") != 200:
            return
        try:
            body, answer = json.loads(event.get("body") or "{}"), json.loads(result.get("body") or "{}")
        except ValueError:
            return
        command = (event.get("queryString") or {}).get("CallbackCommand")
        if not isinstance(body, dict) or not isinstance(answer, dict) or answer.get("ErrorCode") != 0:
            return
        needed = ("From_Account", "To_Account", "MsgKey", "MsgSeq", "MsgRandom", "MsgTime")
        if command == Command.C2C_BEFORE_SEND and all(key in body for key in needed):
            self.im.deliver_c2c(dict(body, MsgBody=answer.get("MsgBody", body.get("MsgBody"))))
        elif command == Command.GROUP_AFTER_SEND and "MsgSeq" in body and "GroupId" in body:
            self.im.deliver_group(body)

    def _post_verdict_later(self, job_id: str, callback_url: str) -> None:
        def post() -> None:
            payload = json.dumps(self.ci.detail_callback(job_id)).encode()
            request = urllib.request.Request(callback_url, data=payload, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=30).close()
            except OSError as exc:  # the server went away, or answered 4xx/5xx: CI would retry, we say so
                print(f"[local CI] posting the verdict of {job_id} to {callback_url}: {exc}", flush=True)

        timer = threading.Timer(CALLBACK_DELAY_S, post)
        timer.daemon = True
        timer.start()

    def stop(self) -> None:
        for server in (self._ci_server, self._im_server):
            server.clear()
            server.stop()
