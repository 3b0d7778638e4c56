"""A fake IM REST API: checks every request the way IM does and records withdrawals.

The UserSig is verified by taking it apart: IM's URL-safe base64 variant
(``*`` ``-`` ``_`` for ``+`` ``/`` ``=``), zlib, then the HMAC-SHA256 over the
TLS fields with the app's secret key, and its expiry (im-callback-protocol.md §6).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import zlib
from collections import defaultdict, deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def decode_usersig(sig: str) -> Dict[str, Any]:
    raw = sig.replace("*", "+").replace("-", "/").replace("_", "=")
    return json.loads(zlib.decompress(base64.b64decode(raw)))


class FakeIM:
    WITHDRAW = "/v4/openim/admin_msgwithdraw"
    RECALL = "/v4/group_open_http_svc/group_msg_recall"
    PORTRAIT_SET = "/v4/profile/portrait_set"
    MODIFY_GROUP = "/v4/group_open_http_svc/modify_group_base_info"

    def __init__(self, server: HTTPServer, sdk_app_id: int, secret_key: str, admin: str = "administrator"):
        self.server = server
        self.sdk_app_id = sdk_app_id
        self.secret_key = secret_key
        self.admin = admin
        self.requests: List[Tuple[str, Dict[str, str], Dict[str, Any]]] = []
        self.withdrawn: List[Dict[str, Any]] = []  # what IM really removed
        self.profiles: Dict[str, Dict[str, Any]] = defaultdict(dict)  # account -> tag -> value, as overwritten
        self.groups: Dict[str, Dict[str, Any]] = defaultdict(dict)  # group -> field -> value, as overwritten
        self.usersigs: List[str] = []
        self._scripted: Dict[str, Deque[Dict[str, Any]]] = defaultdict(deque)
        self._gone: set = set()
        self._lock = threading.Lock()
        server.expect_request(re.compile("/v4/.*"), method="POST").respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def script(self, path: str, *answers: Any) -> None:
        """Answer the next requests to ``path`` with these bodies (or raw werkzeug Responses), then behave normally."""
        self._scripted[path].extend(answers)

    def _handle(self, request: Request) -> Response:
        query = dict(request.args)
        body = json.loads(request.data or b"{}")
        with self._lock:
            self.requests.append((request.path, query, body))
        problem = self._check_common(query)
        if problem is not None:
            return self._json({"ActionStatus": "FAIL", "ErrorCode": problem[0], "ErrorInfo": problem[1]})
        with self._lock:
            if self._scripted[request.path]:
                answer = self._scripted[request.path].popleft()
                return answer if isinstance(answer, Response) else self._json(answer)
        if request.path == self.WITHDRAW:
            return self._json(self._withdraw(body))
        if request.path == self.RECALL:
            return self._json(self._recall(body))
        if request.path == self.PORTRAIT_SET:
            return self._json(self._portrait_set(body))
        if request.path == self.MODIFY_GROUP:
            return self._json(self._modify_group(body))
        return self._json({"ActionStatus": "FAIL", "ErrorCode": 60003, "ErrorInfo": "unknown command"})

    def _check_common(self, query: Dict[str, str]) -> Optional[Tuple[int, str]]:
        if query.get("sdkappid") != str(self.sdk_app_id):
            return 60006, "sdkappid invalid"
        if query.get("identifier") != self.admin:
            return 60010, "admin required"
        if query.get("contenttype") != "json":
            return 60002, "contenttype must be json"
        if not query.get("random", "").isdigit() or not 0 <= int(query["random"]) <= 4294967295:
            return 60002, "random must be a 32-bit unsigned integer"
        sig = query.get("usersig", "")
        self.usersigs.append(sig)
        try:
            doc = decode_usersig(sig)
        except Exception:
            return 70003, "usersig invalid"
        content = (
            f"TLS.identifier:{doc['TLS.identifier']}\nTLS.sdkappid:{doc['TLS.sdkappid']}\n"
            f"TLS.time:{doc['TLS.time']}\nTLS.expire:{doc['TLS.expire']}\n"
        )
        expected = base64.b64encode(hmac.new(self.secret_key.encode(), content.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected.decode(), doc["TLS.sig"]):
            return 70009, "usersig key mismatch"
        if doc["TLS.identifier"] != self.admin:
            return 70013, "usersig identifier mismatch"
        if doc["TLS.sdkappid"] != self.sdk_app_id:
            return 70014, "usersig sdkappid mismatch"
        if doc["TLS.time"] + doc["TLS.expire"] < time.time():
            return 70001, "usersig expired"
        return None

    def _withdraw(self, body: Dict[str, Any]) -> Dict[str, Any]:
        key = ("c2c", body.get("From_Account"), body.get("To_Account"), body.get("MsgKey"))
        with self._lock:
            if key in self._gone:
                return {"ActionStatus": "FAIL", "ErrorCode": 20023, "ErrorInfo": "msg already withdrawn"}
            self._gone.add(key)
            self.withdrawn.append(dict(body, kind="c2c"))
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

    def _recall(self, body: Dict[str, Any]) -> Dict[str, Any]:
        results = []
        with self._lock:
            for item in body.get("MsgSeqList", []):
                key = ("group", body.get("GroupId"), body.get("TopicId"), item["MsgSeq"])
                if key in self._gone:
                    results.append({"MsgSeq": item["MsgSeq"], "RetCode": 10030})
                    continue
                self._gone.add(key)
                self.withdrawn.append({"kind": "group", "GroupId": body.get("GroupId"),
                                       "TopicId": body.get("TopicId"), "MsgSeq": item["MsgSeq"]})
                results.append({"MsgSeq": item["MsgSeq"], "RetCode": 0})
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "RecallRetList": results}

    def _portrait_set(self, body: Dict[str, Any]) -> Dict[str, Any]:
        items = body.get("ProfileItem")
        if not body.get("From_Account") or not isinstance(items, list) or not items:
            return {"ActionStatus": "FAIL", "ErrorCode": 40001, "ErrorInfo": "From_Account and ProfileItem required"}
        if any(set(item) != {"Tag", "Value"} for item in items):
            return {"ActionStatus": "FAIL", "ErrorCode": 40001, "ErrorInfo": "ProfileItem needs Tag and Value"}
        with self._lock:
            self.profiles[body["From_Account"]].update({item["Tag"]: item["Value"] for item in items})
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

    def _modify_group(self, body: Dict[str, Any]) -> Dict[str, Any]:
        if not body.get("GroupId"):
            return {"ActionStatus": "FAIL", "ErrorCode": 10004, "ErrorInfo": "GroupId required"}
        unknown = set(body) - {"GroupId", "Name", "Introduction", "Notification", "FaceUrl", "MaxMemberNum",
                               "ApplyJoinOption", "ShutUpAllMember", "AppDefinedData"}
        if unknown:
            return {"ActionStatus": "FAIL", "ErrorCode": 10004, "ErrorInfo": f"unknown fields {sorted(unknown)}"}
        with self._lock:
            self.groups[body["GroupId"]].update({k: v for k, v in body.items() if k != "GroupId"})
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

    @staticmethod
    def _json(payload: Dict[str, Any]) -> Response:
        return Response(json.dumps(payload), status=200, content_type="application/json")
