"""A local stand-in for API Gateway in front of SCF.

It turns each HTTP request into the event API Gateway would send (with
integrated response on), calls the function's ``index.main_handler`` exactly
as SCF would, and turns the returned integration response back into HTTP.
Handlers run unchanged; nothing here is imported by the deployed functions.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

from imguard.config import ConfigError
from imguard.http.response import json_response

Handler = Callable[[Dict[str, Any], Dict[str, Any]], Any]

# SCF caps a synchronous response at 6 MB (scf-serverless.md §A1).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# The timeouts serverless.yml gives each function.
TIME_LIMITS_MS = {"im_callback": 3000, "audio_result": 30000}
# Callback bodies are a few KB (an IM message is at most 12 KB); anything far larger is refused unread.
MAX_REQUEST_BYTES = 1024 * 1024
# A client silent this long (before or inside a request) is dropped, so it cannot hold a thread for ever.
CLIENT_TIMEOUT_S = 10.0


Observer = Callable[[str, Dict[str, Any], Any], None]
REQUEST_ID_HEADER = "X-Scf-Request-Id"


def load_handler(index_py: Path, module_name: str) -> Handler:
    """Import a function's index.py the way SCF does: as a top-level module of its folder."""
    spec = importlib.util.spec_from_file_location(module_name, index_py)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {index_py}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main_handler


def api_gateway_event(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes, client_ip: str
) -> Dict[str, Any]:
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    return {
        "requestContext": {
            "serviceId": "service-local",
            "path": path,
            "httpMethod": "ANY",
            "requestId": uuid.uuid4().hex,
            "identity": {},
            "sourceIp": client_ip,
            "stage": "release",
        },
        # Real API Gateway traffic carries lower-case header names.
        "headers": {k.lower(): v for k, v in headers.items()},
        "body": text,
        "isBase64Encoded": is_base64,
        "path": path,
        "httpMethod": method,
        "queryString": dict(query),
        "queryStringParameters": {},
        "pathParameters": {},
        "headerParameters": {},
        "stageVariables": {"stage": "release"},
    }


def scf_context(function_name: str) -> Dict[str, Any]:
    """SCF passes the context as a plain dict (scf-serverless.md §A1)."""
    return {
        "request_id": uuid.uuid4().hex,
        "function_name": function_name,
        "function_version": "$LATEST",
        "namespace": "default",
        "time_limit_in_ms": TIME_LIMITS_MS.get(function_name, 3000),
        "memory_limit_in_mb": 128,
        "tencentcloud_region": "local",
    }


def integration_response(result: Any) -> Tuple[int, Dict[str, str], bytes]:
    """What API Gateway makes of a function's return value."""
    if not isinstance(result, Mapping) or not isinstance(result.get("statusCode"), int):
        body = json.dumps({"error": 502, "message": "Invalid scf response. expected scf response valid JSON."})
        return 502, {"Content-Type": "application/json"}, body.encode()
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8", "surrogatepass")
    headers = {str(k): ", ".join(v) if isinstance(v, list) else str(v) for k, v in (result.get("headers") or {}).items()}
    if len(raw) > MAX_RESPONSE_BYTES:
        return 502, {"Content-Type": "application/json"}, b'{"error":502,"message":"response over 6 MB"}'
    return result["statusCode"], headers, raw


class LocalGateway(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: Tuple[str, int], routes: Mapping[str, Tuple[str, Handler]],
        client_timeout_s: float = CLIENT_TIMEOUT_S, observer: Optional[Observer] = None,
    ):
        super().__init__(address, _RequestHandler)
        self.routes = dict(routes)
        self.client_timeout_s = client_timeout_s
        # Told of every answered call (function, event, result): the local IM stores what it would deliver.
        self.observer = observer


class _Refused(Exception):
    """A request refused before it reaches a function; carries the status and the reason."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalGateway
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, a keep-alive client's delayed ACK
    # would add ~40 ms to every answer and make local latency figures meaningless.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        # StreamRequestHandler.setup() applies ``timeout`` to the socket: every read and write
        # then fails after that long instead of waiting on a silent client.
        self.timeout = self.server.client_timeout_s
        super().setup()

    def do_POST(self) -> None:
        try:
            body = self._body()
        except _Refused as refused:
            # The unread body would be taken for the next request: this connection is done.
            self.close_connection = True
            payload = json.dumps({"error": refused.error, "message": refused.message}).encode()
            self._send(refused.status, {"Content-Type": "application/json", "Connection": "close"}, payload)
            return
        self._dispatch(body)

    do_GET = do_PUT = do_DELETE = do_POST

    def _body(self) -> bytes:
        declared = (self.headers.get("Content-Length") or "0").strip()
        # RFC 9110: 1*DIGIT, ASCII only (int() alone would take "-5" and "١٢").
        if not (declared.isascii() and declared.isdigit()):
            raise _Refused(400, "BadRequest", f"Content-Length must be a number of bytes, got {declared[:40]!r}")
        length = int(declared)
        if length > MAX_REQUEST_BYTES:
            raise _Refused(413, "PayloadTooLarge", f"body of {length} bytes: at most {MAX_REQUEST_BYTES}")
        return self.rfile.read(length) if length else b""

    def _dispatch(self, body: bytes) -> None:
        url = urlsplit(self.path)
        route = self.server.routes.get(url.path.rstrip("/") or "/")
        if route is None:
            self._send(404, {"Content-Type": "application/json"}, b'{"error":"NotFound","message":"no such route"}')
            return
        function_name, handler = route
        event = api_gateway_event(
            self.command, url.path, dict(parse_qsl(url.query, keep_blank_values=True)), dict(self.headers.items()),
            body, self.client_address[0],
        )
        context = scf_context(function_name)
        try:
            result = handler(event, context)
        except Exception as exc:  # SCF reports a crashed invocation as an error body
            print(f"[gateway] {function_name} raised {type(exc).__name__}", file=sys.stderr)
            result = None
        if self.server.observer is not None and result is not None:
            self.server.observer(function_name, event, result)
        status, headers, payload = integration_response(result)
        # The invocation's request id, as API Gateway returns its own: `imguard replay` finds the decision by it.
        self._send(status, dict(headers, **{REQUEST_ID_HEADER: context["request_id"]}), payload)

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the functions log for themselves
        return


def unconfigured(name: str, error: ConfigError) -> Handler:
    """Stands in for a function whose cold start failed, as SCF would keep failing it. It carries every
    bad variable (``config_problems``) for the banner to name."""

    def handler(event: Dict[str, Any], context: Dict[str, Any]) -> Dict[str, Any]:
        return json_response(503, {"error": "NotConfigured", "message": f"{name}: {error}"})

    handler.config_problems = dict(error.problems)  # type: ignore[attr-defined]
    return handler


def build_routes(functions_dir: Path) -> Dict[str, Tuple[str, Handler]]:
    """One route per function folder. A function whose configuration is incomplete is still
    routed, answering 503 with the configuration error, so the other one can be tried."""
    routes = {}
    for index_py in sorted(functions_dir.glob("*/index.py")):
        name = index_py.parent.name
        if name == "console":  # `imguard console` serves it, with its own sign-in; not a callback
            continue
        try:
            handler = load_handler(index_py, f"scf_function_{name}")
        except ConfigError as exc:
            handler = unconfigured(name, exc)
        routes[f"/{name}"] = (name, handler)
    return routes
