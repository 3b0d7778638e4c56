"""A fake COS bucket serving objects to signed GETs, as COS does.

The ``Authorization`` header is checked the way COS documents its request signature (对象存储
"请求签名": q-sign-algorithm=sha1, q-ak, q-sign-time, q-key-time, q-header-list, q-url-param-list,
q-signature): SignKey = HMAC-SHA1(SecretKey, KeyTime); HttpString = method, path, the listed
parameters and the listed headers, each line ended by a newline; StringToSign = "sha1", SignTime,
SHA1(HttpString); Signature = HMAC-SHA1(SignKey, StringToSign). A wrong one gets COS's 403
SignatureDoesNotMatch. ``If-None-Match`` with the object's ETag gets 304.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from typing import Dict, List, Optional
from urllib.parse import quote, unquote

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _error(status: int, code: str) -> Response:
    body = f"<?xml version='1.0' encoding='utf-8' ?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
    return Response(body, status=status, content_type="application/xml")


class FakeCOS:
    def __init__(self, server: HTTPServer, secret_id: str, secret_key: str, token: Optional[str] = None):
        self.server = server
        self.secret_id, self.secret_key, self.token = secret_id, secret_key, token
        self.objects: Dict[str, bytes] = {}
        self.requests: List[Dict[str, str]] = []  # the method and headers of each request
        self._lock = threading.Lock()
        for method in ("GET", "HEAD"):
            server.expect_request(re.compile("/.+"), method=method).respond_with_handler(self._handle)

    @property
    def domain(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    def put(self, key: str, body: bytes) -> str:
        with self._lock:
            self.objects[key] = body
        return self.etag(key)

    def etag(self, key: str) -> str:
        return '"' + hashlib.md5(self.objects[key]).hexdigest() + '"'

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(dict({k.lower(): v for k, v in request.headers.items()}, method=request.method))
        problem = self._check_signature(request)
        if problem is not None:
            return _error(403, problem)
        key = request.path.lstrip("/")
        if key not in self.objects:
            return _error(404, "NoSuchKey")
        etag = self.etag(key)
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        body = self.objects[key]
        return Response(b"" if request.method == "HEAD" else body, status=200,
                        headers={"ETag": etag, "Content-Length": str(len(body))}, content_type="application/x-yaml")

    def _check_signature(self, request: Request) -> Optional[str]:
        fields = dict(part.split("=", 1) for part in request.headers.get("Authorization", "").split("&") if "=" in part)
        if fields.get("q-sign-algorithm") != "sha1" or fields.get("q-ak") != self.secret_id:
            return "InvalidAccessKeyId"
        start, _, end = fields.get("q-sign-time", "").partition(";")
        if not (start.isdigit() and end.isdigit() and int(start) <= time.time() <= int(end)):
            return "RequestTimeTooSkewed"
        if self.token is not None and request.headers.get("x-cos-security-token") != self.token:
            return "InvalidAccessKeyId"
        params = [(name, request.args.get(name, "")) for name in filter(None, fields.get("q-url-param-list", "").split(";"))]
        headers = []
        for name in filter(None, fields.get("q-header-list", "").split(";")):
            # The SDK signs the host without its port (qcloud_cos.cos_auth); the port only exists here.
            value = request.host.split(":")[0] if name == "host" else request.headers.get(name, "")
            headers.append((name, _encode(value)))
        http_string = "\n".join([request.method.lower(), unquote(request.path),
                                 "&".join(f"{k}={_encode(v)}" for k, v in sorted(params)),
                                 "&".join(f"{k}={v}" for k, v in sorted(headers)), ""])
        sign_time = fields["q-sign-time"]
        string_to_sign = f"sha1\n{sign_time}\n{hashlib.sha1(http_string.encode()).hexdigest()}\n"
        sign_key = hmac.new(self.secret_key.encode(), fields.get("q-key-time", "").encode(), hashlib.sha1).hexdigest()
        expected = hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()
        if not hmac.compare_digest(expected, fields.get("q-signature", "")):
            return "SignatureDoesNotMatch"
        return None
