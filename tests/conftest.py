"""Shared test plumbing: recorded events, fake cloud services, and the functions under test."""
from __future__ import annotations

import copy
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import pytest
from pytest_httpserver import HTTPServer

from imguard.config import VARIABLES
from imguard.im.auth import expected_sign
from imguard.local.gateway import load_handler
from imguard.local.cloud.ci import FakeCI
from imguard.local.cloud.im import FakeIM

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"
SDKAPPID = "1400000000"
JOB_SIGNING_KEY = "test-job-signing-key-0123456789"
IM_SECRET_KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
# Functions run with callback authentication on, as in production; im_query signs with it.
IM_TOKEN = "test-callback-token-4f1c"

# Every variable imguard reads: cleared before each test so the developer's shell cannot leak in.
IMGUARD_VARIABLES = list(VARIABLES) + ["TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN",
                                       "USER_CODE_ROOT"]

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

# The suite builds hundreds of handlers in one process; none is an SCF instance's first, whose start-up
# would count from when this process imported imguard (tests/test_cold_start.py sets one explicitly).
from imguard.apps import im_callback as _im_callback_app  # noqa: E402

_im_callback_app._first_start_up.clear()


def load_event(name: str) -> Dict[str, Any]:
    """A recorded event from tests/events/, e.g. ``load_event("im/c2c_before_text")``."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def trigger_event(
    body: Any,
    query: Optional[Dict[str, str]] = None,
    trigger: str = "apigw",
) -> Dict[str, Any]:
    """A recorded trigger envelope (API Gateway or Function URL) carrying ``body``."""
    event = copy.deepcopy(load_event(f"trigger/{trigger}"))
    event["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    event["queryString"] = dict(query or {})
    return event


def im_query(command: str, token: Optional[str] = IM_TOKEN, request_time: Optional[int] = None, **extra: str):
    """The query string IM appends to the callback URL (im-callback-protocol.md §1.1), signed with
    ``token`` (None: unsigned, as IM sends it when authentication is off)."""
    query = {
        "SdkAppid": SDKAPPID,
        "CallbackCommand": command,
        "contenttype": "json",
        "ClientIP": "203.0.113.7",
        "OptPlatform": "Android",
    }
    if token is not None:
        stamp = str(int(time.time()) if request_time is None else request_time)
        query.update(RequestTime=stamp, Sign=expected_sign(token, stamp))
    query.update(extra)
    return query


def scf_context(function_name: str = "im_callback") -> Dict[str, Any]:
    return {"request_id": uuid.uuid4().hex, "function_name": function_name, "time_limit_in_ms": 3000}


def answer_of(response: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON body of an integration response, after checking its envelope."""
    assert response["isBase64Encoded"] is False
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


def _session_server():
    # Threaded, so that concurrent checks really overlap at the fake; one per session,
    # since stopping a server costs half a second.
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.stop()


ci_server = pytest.fixture(scope="session", name="ci_server")(_session_server)
im_server = pytest.fixture(scope="session", name="im_server")(_session_server)
cos_server = pytest.fixture(scope="session", name="cos_server")(_session_server)
scf_server = pytest.fixture(scope="session", name="scf_server")(_session_server)


@pytest.fixture
def rules_server():
    """An HTTP server for RULES_URL tests, answering as each test tells it."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def fake_ci(ci_server) -> FakeCI:
    ci_server.clear()
    return FakeCI(ci_server, secret_id=f"AKIDtest{uuid.uuid4().hex[:12]}")


@pytest.fixture
def fake_im(im_server) -> FakeIM:
    im_server.clear()
    return FakeIM(im_server, int(SDKAPPID), IM_SECRET_KEY)


@pytest.fixture
def review_env(fake_im) -> Dict[str, str]:
    """What both functions need for asynchronous review, pointed at the fakes."""
    return {
        "RESULT_CALLBACK_URL": "https://imguard.example.com/audio_result",
        "JOB_SIGNING_KEY": JOB_SIGNING_KEY,
        "IM_SECRET_KEY": IM_SECRET_KEY,
        "IM_API_BASE": fake_im.base_url,
    }


@pytest.fixture
def im_callback(make_function, review_env):
    """im_callback configured for asynchronous review, CI and IM faked."""
    return make_function("im_callback", **review_env)


@pytest.fixture
def audio_result(make_function, review_env):
    """Makes audio_result configured like im_callback; keyword arguments change its environment."""

    def make(**env):
        return make_function("audio_result", **{**review_env, **env})

    return make


@pytest.fixture
def base_env(monkeypatch) -> Callable[..., None]:
    """Replace imguard's environment with exactly the given variables."""

    def apply(**values: str) -> None:
        for name in IMGUARD_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))

    return apply


@pytest.fixture
def make_function(base_env, fake_ci) -> Callable[..., Callable]:
    """Import a function's index.py (as SCF would) with CI pointed at the fake."""

    def make(name: str = "im_callback", ci: bool = True, **env: Any) -> Callable:
        # Tests change what the fake CI says between calls; the verdict cache has tests of its own.
        settings: Dict[str, Any] = {"IM_SDKAPPID": SDKAPPID, "VERDICT_CACHE_S": "0", "IM_CALLBACK_TOKEN": IM_TOKEN}
        if ci:
            settings.update(
                COS_BUCKET="imguard-1250000000",
                COS_REGION="ap-guangzhou",
                COS_SECRET_ID=fake_ci.secret_id,
                COS_SECRET_KEY="test-secret",
                CI_DOMAIN=fake_ci.domain,
                CI_SCHEME="http",
            )
        settings.update(env)
        base_env(**{k: v for k, v in settings.items() if v is not None})
        return load_handler(ROOT / "functions" / name / "index.py", f"test_{name}_{uuid.uuid4().hex}")

    return make


def log_lines(capsys) -> list:
    """The JSON log lines written so far."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


# The audit store runs on SQLite always, and on the PostgreSQL and MariaDB servers when they answer.
# IMGUARD_TEST_POSTGRES_DSN / IMGUARD_TEST_MYSQL_DSN point elsewhere; empty turns one off.
AUDIT_BACKENDS = {
    "postgresql": os.environ.get("IMGUARD_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("IMGUARD_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test"),
}


def _server_dsn(name: str) -> str:
    from sqlalchemy import create_engine

    from imguard.audit.store import connect_args, metadata
    from imguard.config import audit_dsn

    raw = AUDIT_BACKENDS[name]
    if not raw:
        pytest.skip(f"{name}: turned off by its IMGUARD_TEST_*_DSN")
    dsn = audit_dsn(raw)
    engine = create_engine(dsn, connect_args=connect_args(dsn))
    try:
        # A clean slate: the database is shared with whatever ran before.
        metadata.drop_all(engine)
    except Exception as exc:
        pytest.skip(f"{name} not reachable at {engine.url.render_as_string(hide_password=True)}: "
                    f"{type(exc).__name__}")
    finally:
        engine.dispose()
    return dsn


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def audit_dsn(request, tmp_path) -> str:
    """An empty audit store on each backend; skipped, with the reason, when its server does not answer."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/audit.db"
    return _server_dsn(request.param)


@pytest.fixture
def sqlite_dsn(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/audit.db"


def stored(dsn: str, count: int = 1, timeout: float = 5.0, **filters: Any) -> list:
    """The audit records at ``dsn``, newest first, once at least ``count`` are there
    (the writer stores them after the answer)."""
    from imguard.audit.store import AuditStore

    store = AuditStore(dsn)
    try:
        end = time.monotonic() + timeout
        while True:
            rows = store.recent(limit=1000, **filters)
            if len(rows) >= count or time.monotonic() > end:
                return rows
            time.sleep(0.02)
    finally:
        store.dispose()


def wait_for_log(capsys, event: str, timeout: float = 5.0) -> list:
    """The log lines written until one with ``event`` appears (background threads log late)."""
    lines: list = []
    end = time.monotonic() + timeout
    while not any(line["event"] == event for line in lines) and time.monotonic() < end:
        time.sleep(0.05)
        lines += log_lines(capsys)
    return lines
