"""A read-only view of an SCF HTTP trigger event (API Gateway or Function URL).

The raw event is wrapped here, once; nothing else in imguard reads it.
Both trigger shapes carry ``httpMethod``, ``path``, ``headers``, ``queryString``
and ``body`` (scf-serverless.md §A2.6); everything else is optional.
"""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any, Dict, Mapping

from imguard.http.errors import BadRequest, NestedTooDeep


def _str_dict(value: Any) -> Dict[str, str]:
    """Keep only string-ish pairs: trigger events are not guaranteed to be tidy."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items() if v is not None}


class HttpRequest:
    """Query values and headers are looked up case-insensitively (IM sends both
    ``SdkAppid`` and ``SdkAppId``; API Gateway lower-cases header names)."""

    def __init__(self, event: Any, context: Any = None):
        self._event: Mapping[str, Any] = event if isinstance(event, Mapping) else {}
        self._context: Mapping[str, Any] = context if isinstance(context, Mapping) else {}
        self._query = {k.lower(): v for k, v in _str_dict(self._event.get("queryString")).items()}
        self._headers = {k.lower(): v for k, v in _str_dict(self._event.get("headers")).items()}
        self.request_id = self._request_id()

    def query(self, name: str, default: str = "") -> str:
        return self._query.get(name.lower(), default)

    def header(self, name: str, default: str = "") -> str:
        return self._headers.get(name.lower(), default)

    @property
    def method(self) -> str:
        method = self._event.get("httpMethod")
        return method.upper() if isinstance(method, str) and method.isalpha() else "GET"

    @property
    def path(self) -> str:
        path = self._event.get("path")
        return path if isinstance(path, str) and path.startswith("/") else "/"

    @property
    def headers(self) -> Dict[str, str]:
        return dict(self._headers)

    @property
    def queries(self) -> Dict[str, str]:
        """Every query value, names as sent (for the console's pages; the callbacks ask by name)."""
        return _str_dict(self._event.get("queryString"))

    def _request_id(self) -> str:
        """SCF's invocation id, else the gateway's, else a fresh one: every log line needs one."""
        for candidate in (
            self._context.get("request_id"),
            self.header("x-api-requestid"),
            self.header("x-scf-request-id"),
        ):
            if isinstance(candidate, str) and candidate:
                return candidate
        return uuid.uuid4().hex

    def time_limit_s(self, default_s: float) -> float:
        """The invocation's time limit from SCF's context, in seconds; ``default_s`` when it gives none."""
        limit = self._context.get("time_limit_in_ms")
        return limit / 1000 if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else default_s

    @property
    def raw_body(self) -> bytes:
        body = self._event.get("body")
        if body is None:
            return b""
        if not isinstance(body, str):
            raise BadRequest("body must be a string")
        if self._event.get("isBase64Encoded") is True:
            try:
                return base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest("body is marked base64 but is not valid base64") from None
        return body.encode("utf-8", "surrogatepass")

    def json_object(self) -> Dict[str, Any]:
        """The body as a JSON object, or BadRequest saying why not."""
        raw = self.raw_body
        if not raw.strip():
            raise BadRequest("empty body: expected a JSON object")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest("body is not valid UTF-8") from None
        except RecursionError:
            raise NestedTooDeep("body is nested too deeply to read") from None
        except ValueError:
            raise BadRequest("body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data
